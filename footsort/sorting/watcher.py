"""Watchdog events -> settled paths: filters, a settle timer, periodic rescans, a self-healing observer.

`Watcher.batches(stop)` is a generator of lists of files that are complete: their size, mtime and
inode held still for `settle` seconds. Temporary names, hidden files, footsort's own output folders
and non-image names never come out of it (they are logged once). Native events (inotify, FSEvents)
are used unless `poll` is set; when native watching cannot start (inotify limits), the message names
the sysctl to raise and watching falls back to polling. A periodic rescan catches dropped events and
a dead observer thread is replaced.
"""

from __future__ import annotations

import errno
import os
import queue
import stat as statmod
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from loguru import logger

from footsort.model.imaging import is_image_name

TEMP_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".opdownload", ".tmp", ".temp",
                 ".swp", ".swx", ".filepart", "~")
FALLBACK_POLL_SECONDS = 2.0
INOTIFY_HINTS = {
    errno.ENOSPC: ("the inotify watch limit is reached", "fs.inotify.max_user_watches", 524288),
    errno.EMFILE: ("the inotify instance limit is reached", "fs.inotify.max_user_instances", 512),
}


HIDDEN, TEMPORARY, OWN_OUTPUT = "a hidden file", "a temporary name (still being written)", "footsort's own output"
NOT_IMAGE = "not an image name"
QUIET_REASONS = frozenset({HIDDEN, TEMPORARY, OWN_OUTPUT})  # expected all the time: not worth a log line


def ignore_reason(path: Path, root: Path, outputs: frozenset[Path]) -> str | None:
    """Why a file name is left alone (None: a candidate image); pure, looks only at the path."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return "outside the watched folders"
    if any(part.startswith(".") for part in rel.parts):
        return HIDDEN
    name = path.name.lower()
    if name.endswith(TEMP_SUFFIXES) or name.startswith("~$"):
        return TEMPORARY
    if path in outputs or any(parent in outputs for parent in path.parents):
        return OWN_OUTPUT
    if not is_image_name(path):
        return NOT_IMAGE
    return None


@dataclass(frozen=True)
class Stamp:
    """What says a file changed: size, mtime, inode."""

    size: int
    mtime_ns: int
    ino: int


def stamp(path: Path) -> Stamp | None:
    """The file's stamp; None when it is gone or is not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not statmod.S_ISREG(st.st_mode):
        return None
    return Stamp(st.st_size, st.st_mtime_ns, st.st_ino)


def kind_reason(path: Path) -> str | None:
    """Why something that looks like an image is not a file to sort (symlink, folder, device ...)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    if statmod.S_ISLNK(st.st_mode):
        return "a symbolic link (footsort moves real files only, not links to files elsewhere)"
    if statmod.S_ISDIR(st.st_mode):
        return "a folder"
    if not statmod.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def why_not(path: Path, root: Path, outputs: frozenset[Path]) -> str | None:
    """Why `path` is not a file to sort (None: sort it); what it is on disk beats its suffix."""
    reason = ignore_reason(path, root, outputs)
    if reason is None or reason == NOT_IMAGE:
        return kind_reason(path) or reason
    return reason


def walk(root: Path, outputs: frozenset[Path], recursive: bool) -> Iterator[Path]:
    """Every entry in `root` (and its subfolders when recursive, never hidden or output ones), sorted."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        logger.warning(f"cannot list {root}: {exc.strerror}")
        return
    for entry in entries:
        path = Path(entry.path)
        if recursive and entry.is_dir(follow_symlinks=False):
            if not entry.name.startswith(".") and path not in outputs:
                yield from walk(path, outputs, recursive)
        else:
            yield path


class Settler:
    """Holds candidate files until their stamp has not changed for `settle` seconds."""

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic,
                 stat: Callable[[Path], Stamp | None] = stamp) -> None:
        self.settle = settle
        self._clock = clock
        self._stat = stat
        self._pending: dict[Path, tuple[Stamp | None, float, float]] = {}  # stamp, unchanged since, not before

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def touch(self, path: Path, delay: float = 0.0) -> None:
        """Note that `path` may have changed; it comes out `settle` seconds after it last changes."""
        now = self._clock()
        old = self._pending.get(path)
        not_before = max(now + delay, old[2] if old else 0.0)
        self._pending[path] = (self._stat(path), now, not_before)

    def forget(self, path: Path) -> None:
        """Stop tracking `path` (deleted or moved away)."""
        self._pending.pop(path, None)

    def ready(self) -> list[Path]:
        """Files whose stamp held still long enough, in arrival order; they stop being tracked."""
        now = self._clock()
        out = []
        for path, (old, since, not_before) in list(self._pending.items()):
            new = self._stat(path)
            if new is None:
                self._pending.pop(path)  # gone, or no longer a regular file
            elif new != old:
                self._pending[path] = (new, now, not_before)
            elif now - since >= self.settle and now >= not_before:
                self._pending.pop(path)
                out.append(path)
        return out


class _Handler:
    """Turns watchdog events into ('touch' | 'forget' | 'scan', path) items on a queue."""

    def __init__(self, sink: "queue.Queue[tuple[str, Path]]") -> None:
        self.sink = sink

    def dispatch(self, event) -> None:  # watchdog's handler interface
        kind = event.event_type
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if getattr(event, "dest_path", "") else None
        if event.is_directory:
            if kind in ("created", "moved"):
                self.sink.put(("scan", dest or src))
            return
        if kind == "moved":
            self.sink.put(("forget", src))
            if dest is not None:
                self.sink.put(("touch", dest))
        elif kind == "deleted":
            self.sink.put(("forget", src))
        elif kind in ("created", "modified", "closed"):
            self.sink.put(("touch", src))


def _native_observer():
    from watchdog.observers import Observer

    return Observer()


def _polling_observer(interval: float):
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=interval)


def inotify_advice(exc: OSError) -> str | None:
    """A message naming the sysctl to raise when native watching hit a kernel limit."""
    hint = INOTIFY_HINTS.get(exc.errno or 0)
    if hint is None:
        return None
    what, key, value = hint
    return (f"native file watching failed: {what} ({errno.errorcode[exc.errno]}). Raise it with "
            f"`sudo sysctl {key}={value}` (keep it: `echo {key}={value} | sudo tee /etc/sysctl.d/90-footsort.conf`), "
            f"or run with --poll SECONDS. Falling back to polling every {FALLBACK_POLL_SECONDS:g} s for now.")


class Watcher:
    """Follows inboxes and yields batches of settled candidate files."""

    def __init__(self, roots: Sequence[Path], *, outputs: Iterable[Path] = (), settle: float = 1.0,
                 poll: float = 0.0, rescan: float = 60.0, recursive: bool = False, tick: float = 0.1,
                 native_factory: Callable[[], object] = _native_observer,
                 polling_factory: Callable[[float], object] = _polling_observer,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.roots = tuple(Path(r) for r in roots)
        self.outputs = frozenset(Path(o) for o in outputs)
        self.recursive = recursive
        self.poll = poll
        self.rescan_seconds = rescan
        self.tick = tick
        self._native_factory = native_factory
        self._polling_factory = polling_factory
        self._clock = clock
        self._settler = Settler(settle, clock=clock)
        # queue.Queue, not SimpleQueue: in CPython 3.11, SimpleQueue.get(timeout=...) interrupted by a signal
        # handler slower than the timeout (SIGTERM logging a line under load) can block forever, so the
        # daemon would never see its stop flag (tests/test_watcher.py reproduces it in a subprocess)
        self._events: queue.Queue[tuple[str, Path]] = queue.Queue()
        self._left: dict[Path, Stamp | None] = {}  # files handled but left where they are, as they were then
        self._told: set[Path] = set()  # files already logged as ignored
        self._observer = None
        self.polling = poll > 0

    # -- observer ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the observer (native, or polling when asked or when native watching fails)."""
        if self.polling:
            self._observer = self._start(self._polling_factory(self.poll or FALLBACK_POLL_SECONDS))
            return
        try:
            self._observer = self._start(self._native_factory())
        except OSError as exc:
            advice = inotify_advice(exc)
            if advice is None:
                advice = f"native file watching failed ({exc}); falling back to polling every {FALLBACK_POLL_SECONDS:g} s"
            logger.warning(advice)
            self.polling = True
            self._observer = self._start(self._polling_factory(FALLBACK_POLL_SECONDS))

    def _start(self, observer):
        handler = _Handler(self._events)
        for root in self.roots:
            observer.schedule(handler, str(root), recursive=self.recursive)
        try:
            observer.start()
        except BaseException:
            _stop_quietly(observer)
            raise
        return observer

    def stop(self) -> None:
        """Stop the observer thread."""
        if self._observer is not None:
            _stop_quietly(self._observer)
            self._observer = None

    def healthy(self) -> bool:
        """Whether the observer and all its emitter threads are alive."""
        obs = self._observer
        if obs is None or not obs.is_alive():
            return False
        return all(e.is_alive() for e in getattr(obs, "emitters", ()))

    def _heal(self) -> None:
        """Replace a dead observer (a deleted inbox, a crashed thread) and rescan for missed files."""
        missing = [r for r in self.roots if not r.is_dir()]
        if missing:
            if self._observer is not None:
                logger.warning(f"inbox {missing[0]} is gone; waiting for it to come back")
                self.stop()
            return
        logger.warning("the file watcher stopped; restarting it and rescanning the inboxes")
        self.stop()
        self.start()
        self.scan()

    # -- feeding -------------------------------------------------------------------------------

    def _tell_once(self, path: Path, reason: str) -> None:
        if path not in self._told:
            self._told.add(path)
            logger.info(f"leaving {path} alone: {reason}")

    def consider(self, path: Path, delay: float = 0.0) -> None:
        """Track `path` if it is a candidate; log once why not otherwise."""
        root = next((r for r in self.roots if r in path.parents), None)
        if root is None:
            return
        reason = why_not(path, root, self.outputs)
        if reason is not None:
            if reason not in QUIET_REASONS and (reason != "a folder" or not self.recursive):
                self._tell_once(path, reason)
            return
        if path in self._left and self._left[path] == stamp(path):
            return
        self._left.pop(path, None)
        self._settler.touch(path, delay)

    def scan(self, folder: Path | None = None) -> None:
        """Look at every file in the inboxes, or in one new folder (catches events the OS dropped)."""
        for root in self.roots if folder is None else (folder,):
            for path in walk(root, self.outputs, self.recursive):
                self.consider(path)

    def retry(self, path: Path, delay: float) -> None:
        """Look at `path` again after `delay` seconds (it did not decode yet)."""
        self._settler.touch(path, delay)

    def leave(self, path: Path) -> None:
        """`path` was handled and stays where it is: ignore it until it changes."""
        self._left[path] = stamp(path)

    # -- the loop ------------------------------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            kind, path = item
            if kind == "touch":
                self.consider(path)
            elif kind == "forget":
                self._settler.forget(path)
                self._left.pop(path, None)
            elif kind == "scan" and self.recursive and path.is_dir():
                self.scan(path)
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return

    def batches(self, stop: threading.Event) -> Iterator[list[Path]]:
        """Yield lists of settled files until `stop` is set; starts with a scan of every inbox."""
        if self._observer is None:
            self.start()
        self.scan()
        next_rescan = self._clock() + self.rescan_seconds
        while not stop.is_set():
            if not self.healthy():
                self._heal()
            self._drain(self.tick)
            if self.rescan_seconds and self._clock() >= next_rescan:
                self.scan()
                next_rescan = self._clock() + self.rescan_seconds
            ready = self._settler.ready()
            if ready:
                yield ready


def _stop_quietly(observer) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
    except Exception as exc:  # pragma: no cover - a broken observer must not stop footsort
        logger.debug(f"stopping the observer: {exc}")
