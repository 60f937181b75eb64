"""The shared data sources as honest train/validation splits: near-duplicates never straddle a split.

footwear-dev and footwear-street keep their stratified 80/20 splits (seed 0); footwear-web is split by
near-duplicate group (its own train/validation folders hold the same products on both sides). A photo
that repeats across sources is left out everywhere, and a training photo that nearly repeats a
validation photo of its source leaves training. The default model was built from these splits, so
tests and benchmarks that call `split_sources` score it only on photos it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from footsort.learning.datasets import (
    LabelledSet,
    scan,
    split_by_group,
    stratified_split,
)
from footsort.learning.dedupe import dhash, groups, near_pairs

SOURCES = {"dev": "footwear-dev", "street": "footwear-street", "web": "footwear-web"}
GROUP_SPLIT = ("web",)  # sources split by near-duplicate group rather than photo by photo


@dataclass(frozen=True)
class SourceSplit:
    """One source's training and validation photos."""

    train: LabelledSet
    val: LabelledSet


@dataclass(frozen=True)
class Splits:
    """Every source's split, and what the duplicate checks found."""

    sources: dict[str, SourceSplit]
    near_pairs_within: int
    repeated_across: int


def split_sources(data_root: Path, classes: Sequence[str], fraction: float = 0.2,
                  folders: Mapping[str, str] = SOURCES) -> Splits:
    """Scan each source under `data_root` and split it as the module says."""
    data = {name: scan(Path(data_root) / folder, classes) for name, folder in folders.items()}
    every = [(name, s) for name, d in data.items() for s in d.samples]
    pairs = near_pairs([dhash(s.path) for _, s in every])
    cross = {i for a, b in pairs if every[a][0] != every[b][0] for i in (a, b)}
    within = [(a, b) for a, b in pairs if every[a][0] == every[b][0]]
    gid = groups(len(every), within)
    group_of = {every[i][1].path: gid[i] for i in range(len(every))}
    dropped = {every[i][1].path for i in cross}
    out: dict[str, SourceSplit] = {}
    for name, d in data.items():
        if name in GROUP_SPLIT:
            tr, va = split_by_group(d, fraction, group_of, seed=0)
        else:
            tr, va = stratified_split(d, fraction, seed=0)
        val_groups = {group_of[s.path] for s in va.samples}
        tr = tr.subset([s for s in tr.samples if s.path not in dropped and group_of[s.path] not in val_groups])
        va = va.subset([s for s in va.samples if s.path not in dropped])
        out[name] = SourceSplit(tr, va)
    return Splits(out, len(within), len(cross))
