"""Score a classifier on a labelled folder: metrics plus the misclassified files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from footsort.errors import UnreadableImage
from footsort.learning.datasets import LabelledSet
from footsort.learning.metrics import (
    Scores,
    expected_calibration_error,
    lowest_threshold_for,
    score,
    threshold_table,
)
from footsort.model.prediction import Prediction

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


@dataclass(frozen=True)
class Evaluation:
    """Scores, every prediction, and the files that could not be read."""

    scores: Scores
    predictions: tuple[tuple[Path, str, Prediction], ...]  # (path, true label, prediction)
    unreadable: tuple[tuple[Path, str], ...]

    def confidences(self) -> tuple[list[float], list[bool]]:
        """Per readable photo: the top-class confidence and whether the prediction was right."""
        return [pr.confidence for _, _, pr in self.predictions], [pr.label == t for _, t, pr in self.predictions]

    def confidence_json(self, target: float) -> dict[str, Any]:
        """The trade-off keys of `--json`: thresholds, ECE, the threshold reaching the target precision."""
        conf, right = self.confidences()
        low = lowest_threshold_for(conf, right, target)
        covered = [c for c in conf if low is not None and c >= low]
        return {
            "thresholds": [{"threshold": r.threshold, "sorted": r.sorted_share, "sorted_accuracy": r.sorted_accuracy,
                            "n_sorted": r.n_sorted} for r in threshold_table(conf, right, THRESHOLDS)],
            "ece": expected_calibration_error(conf, right),
            "target_precision": target,
            "threshold_for_target": low,
            "sorted_at_target": len(covered) / len(conf) if conf else 0.0,
        }

    def errors(self) -> list[dict[str, Any]]:
        """Misclassified files, most confident first."""
        wrong = [(p, t, pr) for p, t, pr in self.predictions if pr.label != t]
        wrong.sort(key=lambda x: -x[2].confidence)
        return [{"path": str(p), "true": t, "pred": pr.label, "confidence": round(pr.confidence, 4)} for p, t, pr in wrong]

    def to_json(self) -> dict[str, Any]:
        """The documented `footsort evaluate --json` object."""
        s = self.scores
        return {
            "accuracy": s.accuracy,
            "n": s.n,
            "classes": list(s.classes),
            "per_class": {k: {"precision": v.precision, "recall": v.recall, "f1": v.f1, "support": v.support}
                          for k, v in s.per_class.items()},
            "confusion": s.confusion,
            "errors": self.errors(),
        }


def evaluate(clf: Any, data: LabelledSet, batch_size: int = 16,
             tick: Callable[[int], None] = lambda n: None) -> Evaluation:
    """Predict every image of `data` (classes must be the model's) and score the result."""
    classes = tuple(clf.classes)
    index = {name: i for i, name in enumerate(classes)}
    true, pred, rows, bad = [], [], [], []
    paths = [s.path for s in data.samples]
    truth = {s.path: data.classes[s.label] for s in data.samples}
    for path, result in clf.iter_paths(paths, batch_size=batch_size):
        tick(1)
        if isinstance(result, UnreadableImage):
            bad.append((path, str(result)))
            continue
        true.append(index[truth[path]])
        pred.append(index[result.label])
        rows.append((path, truth[path], result))
    return Evaluation(score(true, pred, classes), tuple(rows), tuple(bad))


def held_out_text(metrics: dict[str, Any]) -> str:
    """A model version's held-out accuracy with its sample size, e.g. '0.9712 (n=1453)'; '-' when unmeasured."""
    acc = metrics.get("val_accuracy", (metrics.get("validation") or {}).get("accuracy"))
    if not isinstance(acc, (int, float)):
        return "-"
    n = metrics.get("n_val", metrics.get("validation_n", (metrics.get("validation") or {}).get("n")))
    return f"{acc:.4f} (n={n})" if isinstance(n, int) else f"{acc:.4f} (n unknown)"
