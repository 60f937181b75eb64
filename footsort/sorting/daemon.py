"""The watch daemon: one watcher per inbox, startup scan, watch loop, retries, clean stop.

The model is asked for per batch. A move that fails for a reason that may go away (a read-only
folder, a full or missing disk, a journal that cannot be written) is tried again with a growing
delay, and journal rows such a failure left pending are settled once the journal can be written again.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections import Counter
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from loguru import logger

from footsort.errors import FootsortError
from footsort.plugins import events
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import (
    Item,
    Layout,
    Outcome,
    Pipeline,
    as_provider,
    layout_for,
    policy_for,
    summary,
)
from footsort.sorting.sorter import Sorter, settle
from footsort.sorting.watcher import Watcher
from footsort.system import paths
from footsort.system.config import Config

RETRY_FIRST, RETRY_MAX = 2.0, 300.0  # seconds: a failed move is tried again after 2, 4, 8 ... 300 s


def lock_path(inbox: Path) -> Path:
    """The lock file of one inbox, in the data folder beside the journal the watchers would share."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(inbox))).hexdigest()[:16]
    return paths.data_dir() / "watching" / f"{key}.lock"


@contextmanager
def watch_lock(inbox: Path) -> Iterator[None]:
    """Hold the inbox's lock file (this PID written in it) while watching; another holder is an error."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        yield
        return
    path = lock_path(inbox)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:  # the journal beside it cannot be written either: that error says what to do
        logger.warning(f"cannot create {path} ({exc.strerror or exc}); not checking for another watcher of {inbox}")
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").split("\n")[0].strip() or "unknown"
            raise FootsortError(f"another footsort watch (PID {holder}) is already watching {inbox}; one watcher per "
                                "inbox: leave that one running, or stop it first (`footsort service status` says "
                                "whether it is the service)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, os.fsencode(f"{os.getpid()}\n{inbox}\n"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would race with a starting watcher)


class Backoff:
    """Growing delays per file: RETRY_FIRST, twice that, ... up to RETRY_MAX."""

    def __init__(self) -> None:
        self._attempts: dict[Path, int] = {}

    def next(self, path: Path) -> float:
        """The delay before the next try of `path` (each call doubles it)."""
        n = self._attempts.get(path, 0)
        self._attempts[path] = n + 1
        return min(RETRY_MAX, RETRY_FIRST * 2 ** n)

    def forget(self, path: Path) -> None:
        """`path` was handled: start over next time."""
        self._attempts.pop(path, None)

    def __len__(self) -> int:
        return len(self._attempts)


def settle_own_rows(journal: Journal) -> int:
    """Settle this run's moves left pending by a failed journal write (the disk says how each ended)."""
    pending = [e for e in journal.recent(500) if e.run == journal.run and e.state == "pending"]
    for entry in pending:
        state, what = settle(entry)
        journal.finish(entry.id, state, f"settled after a failed journal write: {what}")  # type: ignore[arg-type]
        logger.info(f"journal #{entry.id}: {what}")
    return len(pending)


def layout_of(path: Path, layouts: dict[Path, Layout]) -> Layout:
    """The layout of the inbox that holds `path` (the deepest one when inboxes nest)."""
    owners = [inbox for inbox in layouts if inbox in path.parents]
    return layouts[max(owners, key=lambda p: len(p.parts))]


def run(inboxes: Sequence[Path], cfg: Config, classifier: object, *, host: object, journal: Journal | None,
        stop: threading.Event, dry_run: bool = False, watcher: Watcher | None = None,
        alongside: Sequence[AbstractContextManager[object]] = ()) -> Counter[str]:
    """Sort what is in the inboxes, then follow them until `stop` is set; counts of outcomes.

    The journal should already be repaired (sorter.recover) by whoever opened it. Raises
    FootsortError when another watcher holds one of the inboxes. `alongside` (the review page of
    `footsort watch --ui`) is entered once the inboxes are this daemon's, and left after it stopped.
    """
    inboxes = [Path(os.path.abspath(p)) for p in inboxes]
    with ExitStack() as locks:
        if not dry_run:  # a dry run writes nothing, so it cannot make false duplicates either
            for inbox in inboxes:
                locks.enter_context(watch_lock(inbox))
        for companion in alongside:
            locks.enter_context(companion)
        return _run(inboxes, cfg, classifier, host=host, journal=journal, stop=stop, dry_run=dry_run, watcher=watcher)


def _run(inboxes: list[Path], cfg: Config, classifier: object, *, host: object, journal: Journal | None,
         stop: threading.Event, dry_run: bool, watcher: Watcher | None) -> Counter[str]:
    provider = as_provider(classifier)
    clf = provider()
    layouts = {inbox: layout_for(inbox, cfg, clf.classes) for inbox in inboxes}
    outputs = frozenset().union(*(lay.outputs() for lay in layouts.values()))
    if watcher is None:
        watcher = Watcher(inboxes, outputs=outputs, settle=cfg.watch.settle_seconds, poll=cfg.watch.poll,
                          rescan=cfg.watch.rescan_seconds, recursive=cfg.sort.recursive)
    retry_delay = max(cfg.watch.settle_seconds, 1.0)
    counts: Counter[str] = Counter()  # every outcome, retries included
    final: Counter[str] = Counter()  # what happened to each file, for the summary
    labels: Counter[str] = Counter()
    waiting: set[Path] = set()  # files left in the inbox to be tried again
    backoff = Backoff()
    unsettled = False  # a journal write failed: this run may have left rows pending
    pipeline = Pipeline(provider, Sorter(journal, dry_run=dry_run), journal, host, policy_for(cfg, clf.classes),
                        batch_size=cfg.sort.batch_size, incomplete_seconds=cfg.watch.incomplete_seconds,
                        honour_undo=True, max_pixels=cfg.sort.max_pixels)

    def follow_up(o: Outcome) -> None:
        nonlocal unsettled
        counts[o.action] += 1
        if o.action == "retry":  # does not decode yet: maybe still being written
            watcher.retry(o.source, retry_delay)
            waiting.add(o.source)
            return
        if o.action == "error" and o.transient and not dry_run:
            delay = backoff.next(o.source)
            logger.warning(f"{o.source.name}: trying again in {delay:g} s")
            watcher.retry(o.source, delay)
            waiting.add(o.source)
            unsettled = True
            return
        backoff.forget(o.source)
        waiting.discard(o.source)
        final[o.action] += 1
        if o.action == "sort":
            labels[o.label] += 1
        if o.left_in_place or dry_run:
            watcher.leave(o.source)

    host.emit(events.DaemonStarted(tuple(inboxes), getattr(clf, "version", "")))  # type: ignore[attr-defined]
    mode = "polling" if watcher.polling else "watching"
    logger.info(f"{mode} {', '.join(map(str, inboxes))} (threshold {cfg.sort.threshold:.3g}"
                f"{', dry run' if dry_run else ''}); stop with Ctrl+C")
    try:
        with pipeline:
            for batch in watcher.batches(stop):
                handled: set[Path] = set()
                try:
                    for outcome in pipeline.run(Item(p, layout_of(p, layouts)) for p in batch):
                        handled.add(outcome.source)
                        follow_up(outcome)
                        if stop.is_set():
                            break  # the rest of the batch stays in the inbox for next time
                    if unsettled and journal is not None and not dry_run:
                        settle_own_rows(journal)
                        unsettled = False
                except FootsortError as exc:  # the journal cannot be written: nothing is moved unrecorded
                    unsettled = True
                    rest = [p for p in batch if p not in handled]
                    delays = [backoff.next(p) for p in rest]
                    for path, delay in zip(rest, delays):
                        watcher.retry(path, delay)
                        waiting.add(path)
                    logger.error(f"{exc}; trying again in {min(delays, default=RETRY_FIRST):g} s")
    finally:
        watcher.stop()
        host.emit(events.DaemonStopped(tuple(inboxes)))  # type: ignore[attr-defined]
        still = sum(1 for p in waiting if os.path.lexists(p))  # not those deleted meanwhile
        logger.info(f"stopped; {summary(final, labels, waiting=still)}")
    return counts


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGINT/SIGTERM (a second Ctrl+C interrupts at once); restore handlers after."""
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logger.info(f"{signal.Signals(signum).name}: finishing the current file, then stopping")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
