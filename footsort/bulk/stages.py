"""The stages both engines run: decode one photo (CPU), then predict + decide a batch (the model).

Decoding is `footsort.sorting.pipeline.load` (hash, size check, decode at reduced scale, resize for the model),
deciding is `footsort.sorting.decide.decide`: a bulk run labels a photo exactly as `footsort sort` would.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Protocol, Sequence

from PIL import Image

from footsort.bulk.manifest import readable, resolve
from footsort.sorting.decide import Policy, Review, decide

if TYPE_CHECKING:
    from footsort.model.prediction import ClassifierFactory, Prediction
    from footsort.system.config import Config

Action = Literal["sort", "review", "failed", "error"]  # error: the model failed on the batch (file left alone)
COLUMNS = ("uri", "label", "confidence", "action", "reason", "error", "model_version", "content_hash",
           "probabilities")


@dataclass(frozen=True)
class DecodeSpec:
    """How a photo is decoded for a model: the short side it needs and how it is fitted to a square."""

    min_side: int | None = None
    size: int | None = None  # with `fit`: resize to size x size while decoding (as Classifier.prepare)
    fit: str | None = None
    max_pixels: int | None = None
    root: str = ""  # relative manifest paths are under this folder

    @classmethod
    def of(cls, classifier: object, max_pixels: int | None = None, root: str = "") -> "DecodeSpec":
        """The spec a classifier needs (a model file's preprocess settings travel with it)."""
        preprocess = getattr(classifier, "preprocess", None)
        return cls(getattr(classifier, "input_size", None), getattr(preprocess, "size", None),
                   getattr(preprocess, "fit", None), max_pixels, root)

    def prepare(self, image: Image.Image) -> Image.Image:
        """The decoded image resized the way the model sees it."""
        from footsort.model.presets import fit_image

        return fit_image(image, self.size, self.fit) if self.size and self.fit else image  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decoded:
    """Stage 1's output for one photo: its content hash and model-ready image, or why there is none."""

    uri: str
    content_hash: str | None = None
    image: Image.Image | None = None
    error: str = ""


def decode(uri: str, spec: DecodeSpec) -> Decoded:
    """Stage 1 (CPU): hash and decode one photo, local or remote; never raises."""
    from footsort.sorting.pipeline import Item, Layout, load

    uri = resolve(uri or "", spec.root)
    if not uri:
        return Decoded(uri, error="empty uri in the manifest")
    try:
        with readable(uri) as path:
            loaded = load(Item(path, Layout(path.parent, ())), spec.min_side,
                          spec.prepare if spec.size and spec.fit else None, spec.max_pixels)
            local = str(path)
    except FileNotFoundError:  # an object-store key that is not there: worded as a missing local file
        return Decoded(uri, error=f"{uri}: file not found")
    except Exception as exc:  # a store that refuses, a network error: a row with an error, not a failed job
        return Decoded(uri, error=f"{uri}: cannot be read ({type(exc).__name__}: {exc})")
    if loaded.vanished:
        return Decoded(uri, loaded.hash, error=f"{uri}: file not found")
    if loaded.error:
        return Decoded(uri, loaded.hash, error=loaded.error.replace(local, uri))
    return Decoded(uri, loaded.hash, loaded.image)


@dataclass(frozen=True)
class Row:
    """One line of the results file: what the model said about one photo and what would be done with it."""

    uri: str
    action: Action
    label: str = ""
    confidence: float | None = None
    reason: str = ""
    error: str = ""
    model_version: str = ""
    content_hash: str | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)

    @property
    def prediction(self) -> "Prediction | None":
        """What the model said, as the pipeline's record (None for a photo the model never saw)."""
        from footsort.model.prediction import Prediction

        if not self.label or self.confidence is None:
            return None
        return Prediction(self.label, self.confidence, dict(self.probabilities), self.model_version)

    def as_record(self) -> dict[str, Any]:
        """The row as the results file stores it (probabilities as a JSON object)."""
        return {"uri": self.uri, "label": self.label, "confidence": self.confidence, "action": self.action,
                "reason": self.reason, "error": self.error, "model_version": self.model_version,
                "content_hash": self.content_hash, "probabilities": json.dumps(dict(self.probabilities))}

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> "Row":
        """Back from a results file's record."""
        probs = rec.get("probabilities") or "{}"
        return cls(uri=rec["uri"], action=rec["action"], label=rec.get("label") or "",
                   confidence=rec.get("confidence"), reason=rec.get("reason") or "", error=rec.get("error") or "",
                   model_version=rec.get("model_version") or "", content_hash=rec.get("content_hash"),
                   probabilities=json.loads(probs) if isinstance(probs, str) else dict(probs))


def columns(rows: Sequence[Row]) -> dict[str, list[Any]]:
    """Rows as columns (a batch for Ray Data or pyarrow)."""
    records = [r.as_record() for r in rows]
    return {c: [rec[c] for rec in records] for c in COLUMNS}


class Predict:
    """Stage 2: label a batch of decoded photos and decide sort / review; failures become rows.

    Holds one classifier: in the local engine the one already loaded, on Ray one per actor.
    """

    def __init__(self, classifier: object, policy: Policy) -> None:
        self.classifier = classifier
        self.policy = policy

    def __call__(self, batch: Sequence[Decoded]) -> list[Row]:
        """One row per decoded photo, in order."""
        todo = [i for i, d in enumerate(batch) if d.image is not None]
        preds: dict[int, Any] = {}
        failure = ""
        if todo:
            try:
                got = self.classifier.predict_images([batch[i].image for i in todo])  # type: ignore[attr-defined]
                if len(got) != len(todo):
                    raise RuntimeError(f"{len(got)} predictions for {len(todo)} images")
                preds = dict(zip(todo, got))
            except Exception as exc:  # the job goes on; these photos are rows with an error
                failure = f"classifier failed: {type(exc).__name__}: {exc}"
        return [self._row(d, preds.get(i), failure) for i, d in enumerate(batch)]

    def _row(self, d: Decoded, prediction: Any, failure: str) -> Row:
        if d.image is None:
            return Row(d.uri, "failed", reason=d.error, error=d.error, content_hash=d.content_hash)
        if prediction is None:
            return Row(d.uri, "error", error=failure, content_hash=d.content_hash)
        decision = decide(prediction, self.policy)
        action: Action = "review" if isinstance(decision, Review) else "sort"
        return Row(d.uri, action, prediction.label, float(prediction.confidence),
                   decision.reason if isinstance(decision, Review) else "", "", prediction.model_version,
                   d.content_hash, dict(prediction.probabilities))


class ModelSource(Protocol):
    """What a Ray actor builds its classifier from (picklable: it travels to every actor)."""

    def load(self, device: str = "auto", fuse: str = "now") -> object: ...


@dataclass(frozen=True)
class ModelFile:
    """A model file's bytes, shipped to Ray actors (workers need not see the driver's disk)."""

    name: str
    data: bytes

    @classmethod
    def read(cls, path: Path) -> "ModelFile":
        return cls(Path(path).name, Path(path).read_bytes())

    def load(self, device: str = "auto", fuse: str = "now") -> object:
        """A Classifier from these bytes (written to a temporary file only while it loads)."""
        from footsort.model.classifier import Classifier

        with tempfile.TemporaryDirectory(prefix="footsort-model-") as tmp:
            path = Path(tmp) / self.name
            path.write_bytes(self.data)
            return Classifier.load(path, device=device, fuse=fuse)  # type: ignore[arg-type]


@dataclass(frozen=True)
class FactorySource:
    """A caller's classifier factory, shipped to Ray actors, each of which calls it (it must pickle and import there)."""

    factory: ClassifierFactory
    cfg: Config
    model_path: Path | None = None

    def load(self, device: str = "auto", fuse: str = "now") -> object:
        """The factory's classifier, on `device`."""
        cfg = replace(self.cfg, model=replace(self.cfg.model, device=device))  # type: ignore[arg-type]
        return self.factory(cfg, self.model_path, fuse)
