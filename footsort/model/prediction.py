"""What a classifier says about one image, and the interface the pipeline needs (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

from PIL import Image

if TYPE_CHECKING:
    from footsort.system.config import Config


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image: top label, its calibrated probability, all probabilities."""

    label: str
    confidence: float
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    path: Path | None = None

    @classmethod
    def from_probabilities(cls, probabilities: Mapping[str, float], model_version: str = "") -> "Prediction | None":
        """The prediction these probabilities make (the most likely class first); None when there are none."""
        if not probabilities:
            return None
        label = max(probabilities, key=lambda k: probabilities[k])
        return cls(label, probabilities[label], dict(probabilities), model_version)

    def ranked(self) -> list[tuple[str, float]]:
        """(class, probability) pairs, most likely first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])


class ImageClassifier(Protocol):
    """Anything that labels decoded images; the real one is footsort.model.classifier.Classifier."""

    classes: tuple[str, ...]
    version: str
    input_size: int

    def predict_images(self, images: Sequence[Image.Image]) -> list[Prediction]:
        """Label already-decoded RGB images, in order."""
        ...


class ClassifierFactory(Protocol):
    """Builds a classifier from the settings: footsort.sorting.pipeline.load_classifier, or a caller's own (a test's fake)."""

    def __call__(self, cfg: "Config", model_path: Path | None = None, fuse: str = "now") -> ImageClassifier:
        """The classifier for `cfg` (`model_path` wins over [model] path; `fuse` as in load_classifier)."""
        ...
