"""Content hashes of image files, remembered by (path, size, mtime) so a library is hashed once, not per scan."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from footsort import paths
from footsort.sorter import file_hash


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
            except (OSError, ValueError, TypeError, IndexError):
                self._known = {}

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
        digest = file_hash(Path(path))
        self._known[key] = (st.st_size, st.st_mtime_ns, digest)
        self._dirty = True
        return digest

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(alive), encoding="utf-8")
        os.replace(tmp, self.path)
        self._dirty = False
