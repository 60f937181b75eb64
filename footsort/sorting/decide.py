"""Pure decisions: what to do with one file, given what the model said and what the journal knows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from footsort.model.prediction import Prediction
from footsort.system.config import DuplicatePolicy


@dataclass(frozen=True)
class Sort:
    """Move the file into the folder of `label`."""

    label: str


@dataclass(frozen=True)
class Review:
    """Move the file into the review folder; `label` is the model's best guess (may be empty)."""

    reason: str
    label: str = ""


@dataclass(frozen=True)
class Skip:
    """Leave the file where it is."""

    reason: str


Decision = Union[Sort, Review, Skip]


@dataclass(frozen=True)
class Policy:
    """The knobs that turn a prediction into a decision."""

    threshold: float = 0.885
    classes: tuple[str, ...] = ()  # labels allowed to get a folder; empty: any label
    duplicates: DuplicatePolicy = "skip"


def decide(prediction: Prediction, policy: Policy) -> Decision:
    """Sort when the top-class probability reaches the threshold, else send to review."""
    conf = prediction.confidence
    if policy.classes and prediction.label not in policy.classes:
        return Review(f"label {prediction.label!r} is not one of {', '.join(policy.classes)}", prediction.label)
    if not isinstance(conf, (int, float)) or math.isnan(conf):
        return Review(f"confidence {conf!r} is not a number", prediction.label)
    if conf >= policy.threshold:
        return Sort(prediction.label)
    return Review(f"confidence {conf:.2f} is below the threshold {policy.threshold:.3g}", prediction.label)


def decide_duplicate(original: str, policy: Policy) -> Decision | None:
    """What to do with content already sorted to `original`; None: sort it like a new file."""
    if policy.duplicates == "skip":
        return Skip(f"duplicate of {original}; left where it is (sort.duplicates = skip)")
    if policy.duplicates == "review":
        return Review(f"duplicate of {original} (sort.duplicates = review)")
    return None
