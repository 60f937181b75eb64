"""What a classifier says about one image, and the interface the pipeline needs (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol, Sequence

from PIL import Image


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image: top label, its calibrated probability, all probabilities."""

    label: str
    confidence: float
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    path: Path | None = None


class ImageClassifier(Protocol):
    """Anything that labels decoded images; the real one is footsort.model.classifier.Classifier."""

    classes: tuple[str, ...]
    version: str
    input_size: int

    def predict_images(self, images: Sequence[Image.Image]) -> list[Prediction]:
        """Label already-decoded RGB images, in order."""
        ...
