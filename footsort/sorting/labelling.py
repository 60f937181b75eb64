"""A person's label for a photo: a journaled move into that class folder, which `retrain` sees as a correction.

`footsort review` (the terminal) and the review page (`footsort ui`) decide the same way: the move goes
through the sorter (collision-safe, crash-safe, undoable with `footsort undo`), is journaled as a `sort`
with an empty model version (a person's decision, corrections.HUMAN), and is announced to plugins once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from footsort.learning import corrections
from footsort.sorting.journal import Details
from footsort.sorting.sorter import Move, Sorter

if TYPE_CHECKING:
    from footsort.model.prediction import ClassifierFactory
    from footsort.system.config import Config


@dataclass(frozen=True)
class Relabel:
    """One photo a person put into a class: where it was, what the model had said, where it went."""

    path: Path
    root: Path  # the library holding the class folders
    label: str  # the class the person chose
    previous: str  # the folder it came from: "review" or a class name
    content: str  # SHA-256 of the file (the journal's hash)
    probabilities: Mapping[str, float] = field(default_factory=dict)

    def guess(self) -> tuple[str, float | None]:
        """The model's best guess and its probability ("", None when nothing is known)."""
        probs = self.probabilities
        if not probs:
            return "", None
        label = max(probs, key=lambda k: probs[k])
        return label, probs[label]


def model_classes(cfg: Config, load: ClassifierFactory | None = None) -> tuple[str, ...]:
    """The classes of the model in use: from its file's metadata (no torch), or from `load`'s classifier when given."""
    if load is not None:
        return tuple(load(cfg).classes)
    from footsort.model import registry
    from footsort.model.checkpoint import read_metadata

    return tuple(read_metadata(registry.in_use_path()).classes)


def class_keys(classes: Sequence[str]) -> dict[str, str]:
    """One key per class: 1, 2, ... up to 9."""
    return {str(i + 1): c for i, c in enumerate(classes[:9])}


def details_for(r: Relabel, where: str) -> Details:
    """The journal details of a person's decision: their label, the model's probabilities, no model version."""
    guess, p = r.guess()
    said = f"{guess} {p:.2f}" if guess and p is not None else "nothing"
    return Details(label=r.label, probabilities=dict(r.probabilities), model_version=corrections.HUMAN,
                   reason=f"labelled by hand in {where} (the model said {said})")


def relabel(sorter: Sorter, r: Relabel, where: str = "the review page") -> Path:
    """Move the photo into `root/label` under a free name, journaled; the new path (raises Vanished, OSError)."""
    folder = r.root / r.label
    if r.path.parent == folder:
        return r.path
    return sorter.move(Move(r.path, folder, "sort", r.content, os.lstat(r.path).st_size, details_for(r, where)))


def announce(done: Sequence[tuple[Relabel, Path]], host: object) -> None:
    """Tell plugins about each correction once (CorrectionSeen), as `footsort corrections` does."""
    found = [corrections.Correction(dest, r.content, r.previous, r.label, r.guess()[0]) for r, dest in done
             if r.previous != r.label]
    if found:
        corrections.announce(found, host)
