"""Crash-safe, collision-safe moves; the repair of moves a crash interrupted; undo.

Same filesystem: one atomic rename that refuses to replace (renameat2 RENAME_NOREPLACE on Linux,
renamex_np RENAME_EXCL on macOS, plain rename on Windows), else a hard link plus unlink. Across
filesystems: copy to a hidden temporary name beside the destination, fsync, check the hash, rename
without replacing, and only then remove the source. Each move is announced in the journal before it
starts and settled after; `recover` settles what a crash left pending by looking at the disk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from loguru import logger

from footsort.sorting.hashes import file_hash
from footsort.sorting.journal import Action, Details, Entry, Journal
from footsort.sorting.naming import candidates
from footsort.system.atomic import fsync_dir as _fsync_dir

TEMP_PREFIX = ".footsort-"  # temporary copies; hidden and suffixed .part, so no watcher reacts to them


class Vanished(Exception):
    """The source disappeared before it could be moved (deleted or moved by someone else)."""


class UnsafeFolder(OSError):
    """An output folder is a symbolic link (or not a folder): footsort will not move a file through it."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ELOOP, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def check_output_folder(folder: Path) -> None:
    """Raise UnsafeFolder when `folder` exists as a link or as something other than a folder; a missing one is fine."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            target = f" (to {os.readlink(folder)})"
        except OSError:
            target = ""
        raise UnsafeFolder(f"{folder} is a symbolic link{target}; footsort does not follow links for the folders "
                           "it sorts into: replace it with a real folder")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{folder} is not a folder; move it away so footsort can make the folder")


# -- renaming without replacing ----------------------------------------------------------------

_libc = None
_NOREPLACE_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP))


def _native_noreplace(src: Path, dst: Path) -> bool:
    """rename(src, dst) failing with FileExistsError if dst exists; False when the OS/filesystem cannot."""
    global _libc
    if os.name == "nt":  # os.rename never replaces on Windows
        os.rename(src, dst)
        return True
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if sys.platform.startswith("linux") and hasattr(_libc, "renameat2"):
        res = _libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), 1)  # AT_FDCWD, RENAME_NOREPLACE
    elif sys.platform == "darwin" and hasattr(_libc, "renamex_np"):
        res = _libc.renamex_np(os.fsencode(src), os.fsencode(dst), 4)  # RENAME_EXCL
    else:  # pragma: no cover - other platforms
        return False
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in _NOREPLACE_UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def rename_noreplace(src: Path, dst: Path) -> None:
    """Atomically rename, raising FileExistsError instead of replacing an existing `dst`."""
    if _native_noreplace(src, dst):
        return
    try:  # a second name for the same inode, then drop the first: a crash in between leaves two names, repaired
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:  # no hard links here (FAT, some network shares): check-then-rename, a tiny race
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst)) from None
        os.rename(src, dst)
        return
    try:
        os.unlink(src)
    except OSError:  # gone (someone else moved it) or not removable: undo the second name
        os.unlink(dst)
        raise


def _copy_verified(src: Path, tmp: Path, expected: str | None) -> None:
    """Copy src to a new file tmp (never replacing), fsync it, and check the copy's hash."""
    import shutil

    with open(tmp, "xb") as fout:
        copied = file_hash(src, copy_to=fout)
        fout.flush()
        os.fsync(fout.fileno())
    if expected is not None and copied != expected:
        raise OSError(errno.EIO, "the file changed while it was being copied", str(src))
    if file_hash(tmp) != copied:
        raise OSError(errno.EIO, "the copy does not match the original", str(tmp))
    try:
        shutil.copystat(src, tmp)
    except OSError:
        pass


# -- moving --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Move:
    """One move to make: which file, which folder, why."""

    source: Path
    folder: Path
    action: Action
    hash: str | None = None
    size: int | None = None
    details: Details = Details()
    name: str | None = None  # wanted file name; default: the source's name
    undo_of: int | None = None


class Sorter:
    """Makes moves, journaled; with dry_run it only says where files would go."""

    def __init__(self, journal: Journal | None, dry_run: bool = False) -> None:
        self.journal = journal
        self.dry_run = dry_run
        self._planned: set[Path] = set()  # dry run: names already promised to earlier files

    def move(self, move: Move) -> Path:
        """Move a file into `move.folder` under a free name; the final path (raises Vanished, OSError)."""
        name = move.name or move.source.name
        if move.action != "undo":  # undo goes back where the file came from, wherever the user put it
            check_output_folder(move.folder)
        if self.dry_run:
            dest = next(move.folder / c for c in candidates(name)
                        if not os.path.lexists(move.folder / c) and move.folder / c not in self._planned)
            self._planned.add(dest)
            return dest
        if not os.path.lexists(move.source):
            raise Vanished(f"{move.source}: gone before it could be moved")
        move.folder.mkdir(parents=True, exist_ok=True)
        if move.action != "undo":
            check_output_folder(move.folder)  # again: made (or swapped for a link) since the first look
        same_fs = os.lstat(move.source).st_dev == os.stat(move.folder).st_dev
        try:
            return self._journaled(move, name, copy=not same_fs)
        except OSError as exc:
            if exc.errno != errno.EXDEV or not same_fs:
                raise
            return self._journaled(move, name, copy=True)  # same device, different mounts (bind mounts)

    def _journaled(self, move: Move, name: str, copy: bool) -> Path:
        names = (move.folder / c for c in candidates(name))
        dest = next(d for d in names if not os.path.lexists(d))
        tmp = move.folder / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}.part" if copy else None
        journal = self.journal
        entry_id = journal.begin(move.action, move.source, dest, method="copy" if copy else "rename",
                                 hash=move.hash, size=move.size, temp=tmp, details=move.details,
                                 undo_of=move.undo_of) if journal else 0
        finish = journal.finish if journal else lambda *a: None
        try:
            if tmp is not None:
                _copy_verified(move.source, tmp, move.hash)
            while True:
                try:
                    rename_noreplace(tmp or move.source, dest)
                    break
                except FileExistsError:  # someone took the name since we looked: take the next free one
                    dest = next(d for d in names if not os.path.lexists(d))
                    if journal:
                        journal.redirect(entry_id, dest)
            if tmp is not None:
                # the copy's name must be on disk before the original goes; a same-filesystem rename
                # needs no fsync: whether or not it reached the disk, recovery sees which it was
                _fsync_dir(move.folder)
                try:
                    os.unlink(move.source)
                except OSError:  # gone (someone else took it) or not removable (read-only share): drop our copy
                    os.unlink(dest)
                    raise
                _fsync_dir(move.source.parent)
        except Exception as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, FileNotFoundError) and not os.path.lexists(move.source):
                finish(entry_id, "vanished", "the file disappeared before it was moved")
                raise Vanished(f"{move.source}: gone before it could be moved") from None
            finish(entry_id, "aborted", f"move failed: {exc}")
            raise
        finish(entry_id, "done")
        return dest


def earlier_copy(journal: Journal | None, content: str, path: Path) -> Path | None:
    """Where this content already sits after an earlier sort, other than `path` (None if nowhere any more)."""
    entry = journal.sorted_copy(content) if journal is not None else None
    if entry is None or entry.destination is None or entry.destination == path:
        return None
    try:
        same_size = entry.size is None or os.lstat(entry.destination).st_size == entry.size
    except OSError:
        return None  # the earlier copy was deleted or moved away: this one is not a duplicate
    return entry.destination if same_size else None


# -- repairing after a crash ------------------------------------------------------------------------

def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _holds(path: Path, entry: Entry) -> bool:
    """Whether `path` holds the content the entry was moving (same hash; size when no hash was known)."""
    try:
        if entry.hash:
            return file_hash(path) == entry.hash
        return entry.size is None or os.lstat(path).st_size == entry.size
    except OSError:
        return False


def settle(entry: Entry) -> tuple[str, str]:
    """Bring the disk to one consistent state for an interrupted move; (state, what was done)."""
    src, dst = entry.source, entry.destination
    if entry.temp is not None and os.path.lexists(entry.temp):
        # a temporary copy exists only before the final rename, when the source is still intact
        entry.temp.unlink()
    src_there = os.path.lexists(src)
    dst_there = dst is not None and os.path.lexists(dst)
    if dst is not None and dst_there and ((src_there and _same_file(src, dst)) or _holds(dst, entry)):
        if src_there and (_same_file(src, dst) or (entry.method == "copy" and _holds(src, entry))):
            os.unlink(src)  # the move had made its copy or second name but not yet removed the original
            _fsync_dir(src.parent)
            return "done", f"finished moving {src} -> {dst}"
        return "done", f"{src} had already been moved to {dst}"
    if src_there:
        return "aborted", f"{src} had not been moved yet; it stays where it is"
    return "vanished", f"{src} disappeared (deleted or moved by someone else)"


def recover(journal: Journal) -> list[Entry]:
    """Settle every move a dead process left pending; the entries repaired."""
    repaired = []
    for entry in journal.claim_orphans():
        try:
            state, what = settle(entry)
        except OSError as exc:
            logger.error(f"could not repair interrupted move #{entry.id} ({entry.source}): {exc}; will retry on next start")
            continue
        journal.finish(entry.id, state, f"recovered after a crash: {what}")  # type: ignore[arg-type]
        logger.warning(f"recovered an interrupted move: {what}")
        repaired.append(entry)
    return repaired


# -- undo ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Undone:
    """The result of undoing one journal entry."""

    entry: Entry
    restored: Path | None
    problem: str = ""


def undo(entries: Iterable[Entry], sorter: Sorter) -> list[Undone]:
    """Put moved files back where they came from (a free name if that is taken), newest first."""
    out = []
    for entry in sorted(entries, key=lambda e: e.id, reverse=True):
        current = entry.destination
        if current is None or not os.path.lexists(current):
            out.append(Undone(entry, None, f"{current} is no longer there"))
            continue
        if entry.hash and not _holds(current, entry):
            out.append(Undone(entry, None, f"{current} has changed since it was sorted; left alone"))
            continue
        move = Move(current, entry.source.parent, "undo", hash=entry.hash, size=entry.size,
                    details=entry.details, name=entry.source.name, undo_of=entry.id)
        try:
            out.append(Undone(entry, sorter.move(move)))
        except (OSError, Vanished) as exc:
            out.append(Undone(entry, None, str(exc)))
    return out
