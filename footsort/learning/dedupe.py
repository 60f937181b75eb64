"""Near-duplicate photos across and within data sources (difference hash), so no check scores a photo it trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

SIDE = 16  # a 16 x 16 grid of left-right gradients: 256 bits (64 bits call every white-background shoe alike)
NEAR = 12  # bits of 256 that may differ for two photos to count as the same picture


def dhash(path: Path) -> np.ndarray:
    """256-bit difference hash of a photo as 32 bytes (robust to re-encoding and resizing)."""
    with Image.open(path) as im:
        im.draft("L", (8 * SIDE, 8 * SIDE))
        small = np.asarray(im.convert("L").resize((SIDE + 1, SIDE), Image.BILINEAR), dtype=np.int16)
    return np.packbits((small[:, 1:] > small[:, :-1]).ravel())


def near_pairs(hashes: Sequence[np.ndarray], max_distance: int = NEAR, chunk: int = 2048) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose hashes differ in at most `max_distance` bits."""
    if len(hashes) < 2:
        return []
    bits = np.unpackbits(np.stack(hashes), axis=1).astype(np.float32)
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(bits), chunk):
        block = bits[start:start + chunk]
        dist = block @ (1 - bits).T + (1 - block) @ bits.T  # Hamming distances by matrix products
        rows, cols = np.nonzero(dist <= max_distance)
        pairs += [(start + int(r), int(c)) for r, c in zip(rows, cols) if start + r < c]
    return pairs


def groups(n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Group id per item: items linked by a chain of near pairs share one (union-find)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(n)]
