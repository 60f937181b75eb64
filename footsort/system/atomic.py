"""Write a file in one step: a temporary file in the same folder, fsync, os.replace, fsync of the folder.

Every file footsort owns (model files, in_use.json, caches, thumbnails, sidecars, results and copy plans,
service units) is written through this module, so a crash leaves the old file or the new one, never half
of one. `write_with` (and `write_bytes`/`write_text`) suit a write done in one call; `replacing` yields a
temporary path for writers that want one (safetensors, PIL); `Replacement` serves a writer that streams
into the file over many calls (Parquet results, CSV copy plans) and decides at the end to keep it or not.

The temporary file is named `.<target>.<8 random [a-z0-9]>.tmp` and is locked (flock) while its writer
lives. A process killed mid-write leaves one behind; `clean_stale` removes such leftovers (only files of
exactly that pattern, old and no longer locked), so a long streaming write is never taken for one.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import string
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, age alone decides
    fcntl = None  # type: ignore[assignment]

STALE_AFTER_S = 3600.0  # an unlocked temp file this old belongs to a dead writer
_ALPHABET = string.ascii_lowercase + string.digits
_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")  # tempfile.mkstemp's names of older versions too


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_temp_name(name: str) -> bool:
    """True for names this module gives its temporary files."""
    return _TEMP.match(name) is not None


def fsync_dir(folder: Path) -> None:
    """Make a directory's entries durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(fd: int) -> bool:
    """Take the advisory lock on an open temp file without waiting; False when a live writer holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class Replacement:
    """A temporary file beside `path` (created and locked now) that `commit` makes `path`, or `discard` removes.

    `mode` (e.g. 0o600 for a file holding a secret) is the new file's permissions; by default an existing
    file's are kept, else the umask's. The temporary file is 0600 until then, so a secret is never readable.
    """

    def __init__(self, path: Path, mode: int | None = None) -> None:
        self.path = Path(path)
        self.mode = mode
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            tmp = self.path.with_name(f".{self.path.name}.{''.join(secrets.choice(_ALPHABET) for _ in range(8))}.tmp")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            self.tmp, self._open = tmp, True
            self._lock_fd: int | None = fd if fcntl is not None and _lock(fd) else None
            if self._lock_fd is None:
                os.close(fd)  # no advisory locks here (Windows): an open file could not be replaced
            return
        raise FileExistsError(f"no free temporary name beside {self.path}")  # pragma: no cover

    def commit(self) -> Path:
        """Make the written temporary file `path` durably (keeping an existing file's mode); removed on failure."""
        if not self._open:
            raise ValueError(f"the temporary file for {self.path} was already committed or discarded")
        try:
            fd = os.open(self.tmp, os.O_RDONLY)  # the file as the writer left it, whatever it opened
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            if self.mode is not None:
                os.chmod(self.tmp, self.mode)
            else:
                try:
                    os.chmod(self.tmp, self.path.stat().st_mode & 0o7777)
                except FileNotFoundError:
                    os.chmod(self.tmp, 0o666 & ~_umask())
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        self._close()
        fsync_dir(self.path.parent)
        clean_stale(self.path.parent)
        return self.path

    def close(self, keep: bool) -> None:
        """`commit` when `keep`, else `discard`."""
        if keep:
            self.commit()
        else:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file; `path` stays as it was."""
        if self._open:
            self.tmp.unlink(missing_ok=True)
            self._close()

    def _close(self) -> None:
        self._open = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


@contextmanager
def replacing(path: Path, mode: int | None = None) -> Iterator[Path]:
    """A temporary path beside `path` to write; it becomes `path` when the block ends, and is removed if it raises."""
    target = Replacement(path, mode)
    try:
        yield target.tmp
    except BaseException:
        target.discard()
        raise
    target.commit()


def write_with(path: Path, write: Callable[[Path], None], mode: int | None = None) -> Path:
    """Let `write` fill a temporary file beside `path`, then make it `path` durably; keeps an existing file's mode
    unless `mode` is given.

    Readers see the old file or the new one, never half; on any failure the temporary file is removed.
    """
    with replacing(path, mode) as tmp:
        write(tmp)
    return Path(path)


def write_bytes(path: Path, data: bytes, mode: int | None = None) -> Path:
    """Replace `path` with `data` atomically and durably (`mode`: the new file's permissions, e.g. 0o600)."""
    return write_with(path, lambda tmp: tmp.write_bytes(data), mode)


def write_text(path: Path, text: str, mode: int | None = None) -> Path:
    """write_bytes for UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"), mode)


def _remove_if_dead(p: Path) -> bool:
    """Remove a temp file unless a live writer holds its lock; whether it was removed."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not _lock(fd):
            return False
        p.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def clean_stale(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove this module's temporary files in `folder` older than `older_than_s` whose writer is gone; the removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not is_temp_name(name):
            continue
        p = Path(folder) / name
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s and _remove_if_dead(p):
            removed.append(p)
    if removed:
        from loguru import logger

        logger.info(f"removed {len(removed)} temporary file(s) left by an interrupted write in {folder}")
    return removed
