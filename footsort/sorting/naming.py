"""Pure collision naming: `photo.jpg`, then `photo (1).jpg`, `photo (2).jpg`, ... within the name-length limit."""

from __future__ import annotations

import itertools
import os
import re
from typing import Container, Iterator

NAME_MAX = 255  # bytes per file name on ext4, APFS, NTFS (in UTF-16 units there), most filesystems
_COUNTER = re.compile(r"^(?P<base>.*) \((?P<n>\d+)\)$")


def split_name(name: str) -> tuple[str, str]:
    """Split into stem and suffix; a leading dot is part of the stem (`.profile` has no suffix)."""
    dot = name.rfind(".")
    if dot <= 0 or dot == len(name) - 1:
        return name, ""
    return name[:dot], name[dot:]


def _fit(stem: str, tail: str, limit: int) -> str:
    """Shorten `stem` (by whole characters) so that stem + tail fits in `limit` bytes on disk.

    os.fsencode counts a name's undecodable bytes (kept as surrogateescape text) as the single bytes they are."""
    room = max(limit - len(os.fsencode(tail)), 1)
    while len(os.fsencode(stem)) > room:
        stem = stem[: -max(1, (len(os.fsencode(stem)) - room) // 4)]  # a character is at most 4 bytes
    return stem + tail


def candidates(name: str, limit: int = NAME_MAX) -> Iterator[str]:
    """Yield `name` (shortened to fit) and then `name (1)`, `name (2)`, ... for ever."""
    stem, suffix = split_name(name)
    yield _fit(stem, suffix, limit)
    match = _COUNTER.match(stem)  # `photo (3).jpg` taken: go on with `photo (4).jpg`, not `photo (3) (1).jpg`
    base, start = (match["base"], int(match["n"]) + 1) if match else (stem, 1)
    for n in itertools.count(start):
        yield _fit(base, f" ({n}){suffix}", limit)


def free_name(name: str, taken: Container[str], limit: int = NAME_MAX) -> str:
    """The first candidate for `name` that is not in `taken`."""
    return next(c for c in candidates(name, limit) if c not in taken)
