"""Thumbnails for the review page: EXIF-oriented, HEIC too, made once and cached by content hash.

`cache_dir()/thumbs/ab/abcdef....jpg`; a photo that cannot be decoded leaves an empty `.bad` marker so it
is not decoded again, and the page shows a placeholder. Deleting the folder only costs regenerating.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from footsort.system import atomic, paths

THUMB_SIDE = 256  # longest side, pixels (shown at about 160 CSS px: sharp on 1.5x screens)
LARGE_SIDE = 1600


def thumbs_dir() -> Path:
    """Where thumbnails are cached."""
    return paths.cache_dir() / "thumbs"


def _target(content: str, folder: Path | None = None) -> Path:
    return (folder or thumbs_dir()) / content[:2] / f"{content}.jpg"


def render(path: Path, side: int) -> bytes | None:
    """The photo, upright, at most `side` pixels on its longest side, as JPEG bytes; None if it cannot be decoded."""
    from PIL import Image

    from footsort.errors import UnreadableImage
    from footsort.model.imaging import load_rgb

    try:
        im = load_rgb(path, min_side=side // 2)
    except (UnreadableImage, OSError):
        return None
    im.thumbnail((side, side), Image.Resampling.LANCZOS if side <= THUMB_SIDE else Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=82 if side <= THUMB_SIDE else 88)
    return buf.getvalue()


class Thumbnails:
    """Cached thumbnails (on disk, and the recent ones in memory), made on demand or by a background thread."""

    def __init__(self, workers: int = 1, memory_mb: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="footsort-thumbs")
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._memory_limit = memory_mb << 20
        self.folder = thumbs_dir()

    def in_memory(self, content: str) -> bytes | None:
        """The thumbnail's bytes without touching the disk when it was served or made lately."""
        with self._lock:
            data = self._memory.get(content)
            if data is not None:
                self._memory.move_to_end(content)
            return data

    def read(self, content: str) -> bytes | None:
        """The cached thumbnail's bytes (memory, else disk), or None when it is not made yet."""
        data = self.in_memory(content)
        if data is None:
            try:
                data = _target(content, self.folder).read_bytes()
            except OSError:
                return None
            self._remember(content, data)
        return data

    def _remember(self, content: str, data: bytes) -> None:
        with self._lock:
            if content in self._memory:
                return
            self._memory[content] = data
            self._memory_bytes += len(data)
            while self._memory_bytes > self._memory_limit and self._memory:
                _, old = self._memory.popitem(last=False)
                self._memory_bytes -= len(old)

    def cached(self, content: str) -> Path | None:
        """The cached thumbnail of this content, or None (not made yet, or undecodable: see `known_bad`)."""
        target = _target(content, self.folder)
        return target if target.exists() else None

    def known_bad(self, content: str) -> bool:
        """True when this content was tried and could not be decoded."""
        return _target(content, self.folder).with_suffix(".bad").exists()

    def get(self, path: Path, content: str) -> Path | None:
        """The thumbnail file for a photo, made now if needed; None when the photo cannot be decoded."""
        target = _target(content, self.folder)
        if target.exists():
            return target
        if self.known_bad(content):
            return None
        data = render(path, THUMB_SIDE)
        target.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            if os.path.exists(path):  # undecodable, not merely gone: remember
                target.with_suffix(".bad").touch()
            return None
        atomic.write_bytes(target, data)
        self._remember(content, data)
        return target

    def prefetch(self, photos: Iterable[tuple[Path, str]]) -> None:
        """Make missing thumbnails in the background, in the order given."""
        for path, content in photos:
            if content in self._memory or self.cached(content) or self.known_bad(content):
                continue
            with self._lock:
                if content in self._queued:
                    continue
                self._queued.add(content)
            self._pool.submit(self._make, path, content)

    def _make(self, path: Path, content: str) -> None:
        try:
            self.get(path, content)
        except OSError:
            pass
        finally:
            with self._lock:
                self._queued.discard(content)

    def close(self) -> None:
        """Stop making thumbnails (those queued are dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
