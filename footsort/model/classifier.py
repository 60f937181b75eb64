"""Classifier: a loaded model version ready to label images fast (batched, fused on CPU)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Literal, Sequence

import torch
from PIL import Image

from footsort.model import registry
from footsort.model.checkpoint import ModelVersion, load
from footsort.model.device import resolve_device
from footsort.model.engine import PathLabeller
from footsort.model.hybrid import fuse_for_cpu
from footsort.model.prediction import Prediction
from footsort.model.presets import Preprocess, eval_transform, fit_image

Fuse = Literal["now", "background", "never"]


class Classifier(PathLabeller):
    """A model version loaded for inference; `predict_images` is what the pipeline calls."""

    engine = "torch"

    def __init__(self, model: torch.nn.Module, meta: ModelVersion, path: Path | None = None,
                 device: str = "auto", fuse: Fuse = "now") -> None:
        self.meta = meta
        self.path = path
        self.classes: tuple[str, ...] = tuple(meta.classes)
        self.version: str = meta.version
        self.preprocess = Preprocess.from_dict(meta.preprocess)
        self.input_size: int = self.preprocess.size
        self.device = resolve_device(device)
        self.tta_flip = bool(meta.recipe.get("tta_flip", False))
        model = model.eval().to(self.device)
        self._temperature = float(meta.temperature)
        if self.device.type != "cpu":
            fuse = "never"
        self._eager = model.to(memory_format=torch.channels_last) if self.device.type == "cpu" else model
        self._net: torch.nn.Module = fuse_for_cpu(model, self.input_size) if fuse == "now" else self._eager
        self.fused = threading.Event()
        self._fusing: threading.Thread | None = None
        if fuse == "now":
            self.fused.set()
        elif fuse == "background":
            self.fuse_in_background()
        self._transform = eval_transform(self.preprocess)

    def fuse_in_background(self) -> None:
        """Keep labelling with the eager graph and switch to the fused one when it is ready (CPU only)."""
        if self.fused.is_set() or self._fusing is not None or self.device.type != "cpu":
            return
        # not a daemon thread: the interpreter waits for it at exit instead of killing it inside TorchScript
        self._fusing = threading.Thread(target=self._fuse_later, name="footsort-fuse")
        self._fusing.start()

    def _fuse_later(self) -> None:
        fused = fuse_for_cpu(copy.deepcopy(self._eager).to(memory_format=torch.contiguous_format), self.input_size)
        self._net = fused  # one reference swap: a batch in flight keeps the module it started with
        self.fused.set()

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "auto", fuse: Fuse = "now") -> "Classifier":
        """Load a model file; None means the model in use (else the shipped default)."""
        chosen = Path(path).expanduser() if path else registry.in_use_path()
        model, meta = load(chosen)
        return cls(model, meta, chosen, device=device, fuse=fuse)

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities for a normalised batch (N, 3, S, S)."""
        net = self._net
        with torch.inference_mode():
            batch = batch.to(self.device)
            if net is self._eager and self.device.type == "cpu":
                batch = batch.contiguous(memory_format=torch.channels_last)
            logits = net(batch)
            if self.tta_flip:
                logits = (logits + net(torch.flip(batch, dims=[3]))) / 2
            return torch.softmax(logits.float() / self._temperature, dim=1).cpu()

    def prepare(self, image: Image.Image) -> Image.Image:
        """The decoded image resized the way the model sees it (the costly part of to_tensor; thread-safe)."""
        return fit_image(image, self.input_size, self.preprocess.fit)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        """The eval transform for one decoded image."""
        return self._transform(image)

    def predict_images(self, images: Sequence[Image.Image], paths: Sequence[Path | None] | None = None) -> list[Prediction]:
        """Label decoded RGB images, in order."""
        if not images:
            return []
        probs = self.probabilities(torch.stack([self.to_tensor(im) for im in images]))
        paths = paths or [None] * len(images)
        return [self._prediction(row, p) for row, p in zip(probs.tolist(), paths)]
