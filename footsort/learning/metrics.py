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


@dataclass(frozen=True)
class ThresholdRow:
    """What one confidence threshold does: the share sorted automatically and the accuracy of those."""

    threshold: float
    sorted_share: float
    sorted_accuracy: float | None  # None when nothing reaches the threshold
    n_sorted: int


def risk_coverage(confidences: Sequence[float], right: Sequence[bool]) -> list[tuple[float, float, float]]:
    """(coverage, accuracy of the covered, lowest confidence covered) for every prefix, most confident first."""
    order = sorted(range(len(confidences)), key=lambda i: -confidences[i])
    out: list[tuple[float, float, float]] = []
    hits = 0
    n = len(order)
    for k, i in enumerate(order, 1):
        hits += bool(right[i])
        # only where the next photo is less confident can a threshold stop here
        if k == n or confidences[order[k]] < confidences[i]:
            out.append((k / n, hits / k, confidences[i]))
    return out


def threshold_table(confidences: Sequence[float], right: Sequence[bool], thresholds: Sequence[float]) -> list[ThresholdRow]:
    """Share sorted and accuracy of the sorted at each threshold."""
    n = len(confidences)
    rows = []
    for th in thresholds:
        picked = [r for c, r in zip(confidences, right) if c >= th]
        rows.append(ThresholdRow(th, len(picked) / n if n else 0.0,
                                 sum(picked) / len(picked) if picked else None, len(picked)))
    return rows


def lowest_threshold_for(confidences: Sequence[float], right: Sequence[bool], target: float) -> float | None:
    """The lowest confidence threshold whose sorted photos are right at least `target` of the time (None: none is)."""
    best = None
    for coverage, accuracy, lowest in risk_coverage(confidences, right):
        if accuracy >= target:
            best = lowest
    return best


def expected_calibration_error(confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    n = len(confidences)
    return sum(count / n * abs(conf - acc) for conf, acc, count in reliability_bins(confidences, right, bins)) if n else 0.0


def reliability_bins(confidences: Sequence[float], right: Sequence[bool], bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per non-empty equal-width confidence bin."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidences) if lo < c <= hi or (b == 0 and c == 0)]
        if idx:
            out.append((sum(confidences[i] for i in idx) / len(idx), sum(bool(right[i]) for i in idx) / len(idx), len(idx)))
    return out
