"""Write a file in one step: a temporary file in the same folder, fsync, os.replace, fsync of the folder.

Every file footsort owns (model files, in_use.json, caches, service units) is written through
`write_with`, so a crash leaves the old file or the new one, never half of one. The temporary file is
named `.<target>.<8 random [a-z0-9]>.tmp`; a process killed mid-write leaves one behind, and
`clean_stale` removes such leftovers (and only files of exactly that pattern) once they are old.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import string
import time
from pathlib import Path
from typing import Callable

STALE_AFTER_S = 3600.0  # a temp file this old belongs to a dead writer (the biggest write takes seconds)
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


def _new_temp(path: Path) -> Path:
    """Create (exclusively) an empty temporary file beside `path`."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{''.join(secrets.choice(_ALPHABET) for _ in range(8))}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")  # pragma: no cover


def write_with(path: Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a temporary file beside `path`, then make it `path` durably; keeps an existing file's mode.

    Readers see the old file or the new one, never half; on any failure the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    clean_stale(path.parent)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically and durably."""
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> Path:
    """write_bytes for UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def clean_stale(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove this module's temporary files in `folder` older than `older_than_s` (a killed writer's); the removed."""
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
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < older_than_s:
                continue
            p.unlink()
        except OSError:
            continue
        removed.append(p)
    if removed:
        from loguru import logger

        logger.info(f"removed {len(removed)} temporary file(s) left by an interrupted write in {folder}")
    return removed
