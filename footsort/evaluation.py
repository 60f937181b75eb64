"""Score a classifier on a labelled folder: metrics plus the misclassified files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from footsort.datasets import LabelledSet
from footsort.errors import UnreadableImage
from footsort.metrics import Scores, score
from footsort.prediction import ImageClassifier, Prediction


@dataclass(frozen=True)
class Evaluation:
    """Scores, every prediction, and the files that could not be read."""

    scores: Scores
    predictions: tuple[tuple[Path, str, Prediction], ...]  # (path, true label, prediction)
    unreadable: tuple[tuple[Path, str], ...]

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
