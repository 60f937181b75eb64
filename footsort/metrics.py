"""Pure classification metrics: accuracy, confusion matrix, per-class precision/recall/F1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class ClassStats:
    """Precision, recall, F1 and support of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    """Everything `footsort evaluate` reports, computed from true and predicted labels."""

    accuracy: float
    balanced_accuracy: float
    n: int
    classes: tuple[str, ...]
    per_class: dict[str, ClassStats]
    confusion: list[list[int]]  # rows: true class, columns: predicted class


def confusion_matrix(true: Sequence[int], pred: Sequence[int], n_classes: int) -> list[list[int]]:
    """Counts of (true, predicted) pairs."""
    m = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(true, pred):
        m[t][p] += 1
    return m


def score(true: Sequence[int], pred: Sequence[int], classes: Sequence[str]) -> Scores:
    """Accuracy, balanced accuracy, per-class stats and the confusion matrix."""
    if len(true) != len(pred):
        raise ValueError("true and predicted labels differ in length")
    k = len(classes)
    cm = confusion_matrix(true, pred, k)
    n = len(true)
    per_class = {}
    recalls = []
    for i, name in enumerate(classes):
        tp = cm[i][i]
        predicted = sum(cm[r][i] for r in range(k))
        support = sum(cm[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = ClassStats(precision, recall, f1, support)
        if support:
            recalls.append(recall)
    accuracy = sum(cm[i][i] for i in range(k)) / n if n else 0.0
    balanced = sum(recalls) / len(recalls) if recalls else 0.0
    return Scores(accuracy, balanced, n, tuple(classes), per_class, cm)
