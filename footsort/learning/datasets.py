"""ImageFolder data (`root/<class>/<images>`): scanning, stratified splits, class checks."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Mapping, Sequence, TypeVar

from footsort.errors import DataError
from footsort.system.images_on_disk import image_files

T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """One labelled image."""

    path: Path
    label: int


@dataclass(frozen=True)
class LabelledSet:
    """Images with labels and the class names they index."""

    samples: tuple[Sample, ...]
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.samples)

    def counts(self) -> dict[str, int]:
        """Images per class name."""
        c = Counter(s.label for s in self.samples)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    def subset(self, samples: Sequence[Sample]) -> "LabelledSet":
        """The same classes, other samples."""
        return LabelledSet(tuple(samples), self.classes)


def scan(root: str | Path, classes: Sequence[str] | None = None) -> LabelledSet:
    """Read `root/<class>/*`; with `classes`, every folder must be one of them (their order is kept)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; expected {root}/<class>/<images>")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class folders; expected {root}/<class>/<images> (e.g. {root}/tsinelas/a.jpg)")
    if classes is None:
        names = tuple(f.name for f in folders)
    else:
        names = tuple(classes)
        unknown = [f.name for f in folders if f.name not in names]
        if unknown:
            raise DataError(f"class folder(s) {', '.join(unknown)} in {root} are not classes of the model "
                            f"({', '.join(names)}); rename or remove them")
    samples = [Sample(f, names.index(folder.name)) for folder in folders
               for f in image_files(folder, hidden_folders=True)]
    if not samples:
        raise DataError(f"no images found under {root}/<class>/ (looked for .jpg, .png, .webp, .heic, ...)")
    return LabelledSet(tuple(samples), names)


def stratified_split(data: LabelledSet, fraction: float, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """Split into (train, validation) with `fraction` of each class in validation, reproducibly."""
    if not 0 < fraction < 1:
        raise DataError(f"--val-split {fraction} must be between 0 and 1 (e.g. 0.2)")
    train, val = split_by_key(data.samples, fraction, random.Random(seed), key=lambda s: s.label)
    return data.subset(sorted(train, key=lambda s: str(s.path))), data.subset(sorted(val, key=lambda s: str(s.path)))


def split_by_key(items: Sequence[T], fraction: float, rng: random.Random,
                 key: Callable[[T], Hashable]) -> tuple[list[T], list[T]]:
    """(train, held out): `fraction` of every `key` group held out (at least one of a group of 2+, never all).

    Groups go in sorted key order, each in the order given, shuffled by `rng`; a fraction of 0 holds out nothing.
    """
    groups: dict[Hashable, list[T]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    train: list[T] = []
    held: list[T] = []
    for k in sorted(groups):  # type: ignore[type-var]
        group = groups[k]
        rng.shuffle(group)
        n = round(len(group) * fraction) if fraction > 0 else 0
        if fraction > 0 and len(group) >= 2:
            n = min(max(n, 1), len(group) - 1)
        held.extend(group[:n])
        train.extend(group[n:])
    return train, held


def split_by_group(data: LabelledSet, fraction: float, group_of: Mapping[Path, Hashable],
                   seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """Stratified (train, validation) split that keeps every group (e.g. near-duplicates) on one side."""
    rng = random.Random(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in range(len(data.classes)):
        by_group: dict[Hashable, list[Sample]] = {}
        for s in data.samples:
            if s.label == label:
                by_group.setdefault(group_of[s.path], []).append(s)
        keys = sorted(by_group)  # type: ignore[type-var]
        rng.shuffle(keys)
        want = round(sum(len(v) for v in by_group.values()) * fraction)
        taken = 0
        for k in keys:
            if taken < want:
                val.extend(by_group[k])
                taken += len(by_group[k])
            else:
                train.extend(by_group[k])
    return data.subset(sorted(train, key=lambda s: str(s.path))), data.subset(sorted(val, key=lambda s: str(s.path)))
