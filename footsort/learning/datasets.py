"""ImageFolder data (`root/<class>/<images>`): scanning, stratified splits, class checks."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Hashable, Mapping, Sequence

from footsort.errors import DataError
from footsort.model.imaging import is_image_name


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
    samples = []
    for folder in folders:
        label = names.index(folder.name)
        for f in sorted(folder.rglob("*")):
            if f.is_file() and is_image_name(f) and not f.name.startswith("."):
                samples.append(Sample(f, label))
    if not samples:
        raise DataError(f"no images found under {root}/<class>/ (looked for .jpg, .png, .webp, .heic, ...)")
    return LabelledSet(tuple(samples), names)


def stratified_split(data: LabelledSet, fraction: float, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """Split into (train, validation) with `fraction` of each class in validation, reproducibly."""
    if not 0 < fraction < 1:
        raise DataError(f"--val-split {fraction} must be between 0 and 1 (e.g. 0.2)")
    rng = random.Random(seed)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in range(len(data.classes)):
        group = [s for s in data.samples if s.label == label]
        rng.shuffle(group)
        k = round(len(group) * fraction)
        if len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)
        val.extend(group[:k])
        train.extend(group[k:])
    return data.subset(sorted(train, key=lambda s: str(s.path))), data.subset(sorted(val, key=lambda s: str(s.path)))


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
