"""Content hashes: the one SHA-256 of a file footsort uses everywhere (the journal's, the caches' and the
model files' hash), and a memo by (path, size, mtime) so a library is hashed once, not per scan."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from loguru import logger

from footsort.system import atomic, paths

CHUNK = 1 << 20


def digest(blocks: Iterable[bytes]) -> str:
    """SHA-256, hex, of the blocks one after another."""
    h = hashlib.sha256()
    for block in blocks:
        h.update(block)
    return h.hexdigest()


def file_hash(path: Path, copy_to: BinaryIO | None = None) -> str:
    """SHA-256, hex, of a file's content; every block read is also written to `copy_to` when given."""

    def blocks() -> Iterable[bytes]:
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                if copy_to is not None:
                    copy_to.write(block)
                yield block

    return digest(blocks())


def memo_file() -> Path:
    """Where remembered hashes live (a cache: deleting it only costs re-hashing)."""
    return paths.cache_dir() / "content-hashes.json"


class ContentHashes:
    """SHA-256 of files (the journal's hash), re-read only when a file's size or mtime changed."""

    def __init__(self, memo: Path | None = None) -> None:
        self.path = memo
        self._known: dict[str, tuple[int, int, str]] = {}
        self._dirty = False
        if memo is not None:
            try:
                raw = json.loads(memo.read_text(encoding="utf-8"))
                self._known = {k: (int(v[0]), int(v[1]), str(v[2])) for k, v in raw.items()}
            except FileNotFoundError:
                self._known = {}
            except (OSError, ValueError, TypeError, IndexError, AttributeError) as exc:
                self._known = {}
                self._dirty = True  # rewritten whole at the next save
                logger.warning(f"the content-hash cache {memo} is unreadable ({type(exc).__name__}); "
                               "hashing files again (slower this once, nothing else is lost)")

    @classmethod
    def open(cls) -> "ContentHashes":
        """The memo in the cache dir."""
        return cls(memo_file())

    def of(self, path: Path) -> str:
        """The content hash of `path` (raises OSError when it cannot be read)."""
        st = os.stat(path)
        key = os.path.abspath(path)
        known = self._known.get(key)
        if known is not None and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return known[2]
        content = file_hash(Path(path))
        self._known[key] = (st.st_size, st.st_mtime_ns, content)
        self._dirty = True
        return content

    def many(self, files: Iterable[Path], tick: Callable[[int], None] = lambda n: None) -> dict[Path, str]:
        """Hashes of the files that can be read; unreadable or vanished ones are left out."""
        out: dict[Path, str] = {}
        for f in files:
            tick(1)
            try:
                out[f] = self.of(f)
            except OSError:
                continue
        return out

    def save(self) -> None:
        """Write the memo atomically (dropping entries for files that no longer exist)."""
        if self.path is None or not self._dirty:
            return
        alive = {k: v for k, v in self._known.items() if os.path.exists(k)}
        atomic.write_text(self.path, json.dumps(alive))
        self._dirty = False
