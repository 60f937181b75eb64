"""footsort: a watch-folder daemon that sorts footwear photos with a MobileNetV2-ResNet hybrid.

Public API (torch is imported only when these are called, and not at all on the onnx engine):
    footsort.classify(paths) -> list[Prediction]
    footsort.load_model(path=None, device="auto", engine="auto") -> Classifier (or OnnxClassifier)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

__version__ = "0.1.0"

if TYPE_CHECKING:
    from footsort.model.classifier import Classifier
    from footsort.model.prediction import Prediction

__all__ = ["classify", "load_model", "__version__"]


def load_model(path: str | Path | None = None, device: str = "auto", engine: str = "auto") -> "Classifier":
    """Load a model file (default: the model in use, else the shipped default) ready to predict.

    engine: auto (ONNX Runtime when installed and the model has an export, else torch), onnx or torch.
    """
    from footsort.model.engine import load_classifier

    return load_classifier(path, engine=engine, device=device)


def classify(paths: Iterable[str | Path], model: "Classifier | None" = None) -> "list[Prediction]":
    """Label image files; unreadable files raise UnreadableImage (use Classifier.predict_paths to collect errors)."""
    clf = model or _default_classifier()
    return clf.predict_paths([Path(p) for p in paths])


_cached: "Classifier | None" = None


def _default_classifier() -> "Classifier":
    global _cached
    if _cached is None:
        _cached = load_model()
    return _cached
