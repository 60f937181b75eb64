"""Near-duplicate detection and group-aware splits: what keeps a check from scoring photos it trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from footsort.learning.datasets import LabelledSet, Sample, split_by_group
from footsort.learning.dedupe import dhash, groups, near_pairs


def photo(path: Path, seed: int, size: tuple[int, int] = (160, 120), quality: int = 90) -> Path:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)  # smooth random shapes, like a real scene
    Image.fromarray(small).resize(size, Image.BICUBIC).save(path, quality=quality)
    return path


def test_a_resized_reencoded_copy_is_a_near_duplicate_and_other_photos_are_not(tmp_path: Path) -> None:
    a = photo(tmp_path / "a.jpg", 1)
    with Image.open(a) as im:
        im.resize((96, 72)).save(tmp_path / "a_small.jpg", quality=60)
    others = [photo(tmp_path / f"o{i}.jpg", 10 + i) for i in range(5)]
    hashes = [dhash(p) for p in (a, tmp_path / "a_small.jpg", *others)]
    assert near_pairs(hashes) == [(0, 1)]


def test_groups_follow_chains_of_near_pairs() -> None:
    assert groups(5, [(0, 1), (1, 3)]) == [0, 0, 2, 0, 4]


def test_a_group_never_straddles_the_split() -> None:
    samples = tuple(Sample(Path(f"{label}_{i}.jpg"), label) for label in (0, 1) for i in range(20))
    group_of = {s.path: (s.label, int(s.path.stem.split("_")[1]) // 4) for s in samples}  # groups of 4 photos
    train, val = split_by_group(LabelledSet(samples, ("a", "b")), 0.2, group_of, seed=0)
    assert len(train) + len(val) == 40 and val.counts() == {"a": 4, "b": 4}
    assert not {group_of[s.path] for s in train.samples} & {group_of[s.path] for s in val.samples}
