"""Which engine labels photos: ONNX Runtime (light, no torch) for sorting, torch for learning and GPUs.

`load_classifier` is the one loader: `auto` picks ONNX Runtime when it is installed and the model has a
checked export (shipped beside the default model, written by `train`/`retrain`, or made once by a first
`--engine onnx`), torch otherwise and on a machine with an NVIDIA GPU (unless onnxruntime-gpu is there).
Nothing here imports torch; the torch engine is imported only when it is the one chosen.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

from loguru import logger
from PIL import Image

from footsort.errors import TORCH_INSTALL, FootsortError, TorchMissing, UnreadableImage
from footsort.model.imaging import load_rgb
from footsort.model.prediction import Prediction

Engine = Literal["auto", "onnx", "torch"]
ENGINES: tuple[str, ...] = ("auto", "onnx", "torch")
ONNX_EXTRA = "pip install 'footsort[onnx]' (onnxruntime and onnx)"


class PathLabeller:
    """What both engines share above `predict_images`: batches of files in, predictions (or errors) out."""

    classes: tuple[str, ...]
    version: str
    input_size: int

    def predict_images(self, images: Sequence[Image.Image], paths: Sequence[Path | None] | None = None) -> list[Prediction]:
        raise NotImplementedError

    def _prediction(self, row: Sequence[float], path: Path | None) -> Prediction:
        best = max(range(len(row)), key=row.__getitem__)
        return Prediction(label=self.classes[best], confidence=float(row[best]),
                          probabilities=dict(zip(self.classes, (float(x) for x in row))),
                          model_version=self.version, path=path)

    def iter_paths(self, paths: Sequence[Path], batch_size: int = 16) -> Iterator[tuple[Path, Prediction | UnreadableImage]]:
        """Decode and label files in batches; unreadable files come back as their error."""
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            decoded: list[tuple[Path, Image.Image]] = []
            results: dict[Path, Prediction | UnreadableImage] = {}
            for p in chunk:
                try:
                    decoded.append((p, load_rgb(p, min_side=self.input_size)))
                except UnreadableImage as exc:
                    results[p] = exc
            preds = self.predict_images([im for _, im in decoded], [p for p, _ in decoded])
            results.update({p: pred for (p, _), pred in zip(decoded, preds)})
            for p in chunk:
                yield p, results[p]

    def predict_paths(self, paths: Sequence[Path]) -> list[Prediction]:
        """Label image files; the first unreadable one raises UnreadableImage."""
        out = []
        for _, result in self.iter_paths(list(paths)):
            if isinstance(result, UnreadableImage):
                raise result
            out.append(result)
        return out


# -- choosing --------------------------------------------------------------------------------------

def onnxruntime_installed() -> bool:
    """onnxruntime can be imported (found; not imported here)."""
    return importlib.util.find_spec("onnxruntime") is not None


def torch_installed() -> bool:
    """torch and torchvision can be imported (found; not imported here)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))


def onnxruntime_cuda() -> bool:
    """onnxruntime-gpu with its CUDA provider is installed."""
    if not onnxruntime_installed():
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def nvidia_gpu_present() -> bool:
    """An NVIDIA GPU with its driver loaded, seen without importing torch (Linux: /proc or /dev; else nvidia-smi)."""
    if sys.platform.startswith("linux"):
        try:
            return any(Path("/proc/driver/nvidia/gpus").iterdir())
        except OSError:
            return Path("/dev/nvidia0").exists()  # a container may have the device without the driver's /proc
    import shutil

    return sys.platform == "win32" and shutil.which("nvidia-smi") is not None


@dataclass(frozen=True)
class Choice:
    """The engine that will run and why (what `doctor` prints)."""

    engine: Literal["onnx", "torch"]
    reason: str
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


def choose(requested: str = "auto", device: str = "auto") -> Choice:
    """The engine for `model.engine` and `model.device`, before looking at the model file."""
    if requested not in ENGINES:
        raise FootsortError(f"unknown engine {requested!r}: use auto, onnx or torch")
    cuda_ort = device in ("auto", "cuda") and nvidia_gpu_present() and onnxruntime_cuda()
    gpu = (("CUDAExecutionProvider", "CPUExecutionProvider"),) if cuda_ort else ()
    if requested == "torch":
        return Choice("torch", "model.engine = 'torch'")
    if requested == "onnx":
        if not onnxruntime_installed():
            raise FootsortError(f"--engine onnx asked for, but onnxruntime is not installed; {ONNX_EXTRA}, "
                                "or use --engine auto")
        if device == "mps":
            raise FootsortError("--device mps runs on torch only; use --engine torch (or auto), or --device cpu")
        if device == "cuda" and not cuda_ort:
            raise FootsortError("--engine onnx runs on the CPU here (no onnxruntime-gpu); use --engine torch "
                                "for CUDA, or --device auto")
        return Choice("onnx", "model.engine = 'onnx'", *gpu)
    if device in ("cuda", "mps") and not (device == "cuda" and cuda_ort):
        return Choice("torch", f"model.device = {device!r} runs on torch")
    if not onnxruntime_installed():
        return Choice("torch", f"onnxruntime is not installed ({ONNX_EXTRA} for a lighter, faster sort)")
    if device == "auto" and nvidia_gpu_present() and not cuda_ort:
        return Choice("torch", "an NVIDIA GPU is present: torch runs on CUDA (onnxruntime here is CPU-only)")
    return Choice("onnx", "onnxruntime is installed" + (" with CUDA" if gpu else ""), *gpu)


def resolve_model_path(path: str | Path | None) -> Path:
    """The model file: the one given, else the model in use (else the shipped default)."""
    if path:
        return Path(path).expanduser()
    from footsort.model import registry

    return registry.in_use_path()


def load_classifier(path: str | Path | None = None, engine: str = "auto", device: str = "auto",
                    fuse: str = "now") -> Any:
    """A classifier for the model file (None: the model in use) on the engine `engine` picks.

    onnx and auto need an ONNX export of that file. auto without one runs torch (it never exports on its
    own: that takes torch and 10-60 s); onnx asked for by name makes the export once (checked against torch).
    """
    choice = choose(engine, device)
    model_path = resolve_model_path(path)
    if choice.engine == "onnx":
        from footsort.model import onnx_engine, onnx_export

        try:
            return onnx_engine.OnnxClassifier.load(model_path, providers=choice.providers)
        except onnx_engine.NoExport as exc:
            why = str(exc)
        if engine == "onnx":
            if not onnx_export.can_export():
                raise FootsortError(f"--engine onnx: {why}, and making one needs torch, onnx and onnxruntime "
                                    f"({ONNX_EXTRA}); or use --engine torch")
            onnx_export.export_once(model_path)
            return onnx_engine.OnnxClassifier.load(model_path, providers=choice.providers)
        if not torch_installed():
            raise TorchMissing(f"{why} and torch, which would run it, is not installed; {TORCH_INSTALL}")
        logger.info(f"sorting with torch: {why} (one run with --engine onnx makes it)")
    elif engine != "torch" and not torch_installed():  # asked for by name: the command says it needs torch
        raise TorchMissing(f"the model runs on torch here ({choice.reason}), but torch is not installed; {TORCH_INSTALL}")
    from footsort.model.classifier import Classifier

    return Classifier.load(model_path, device=device, fuse=fuse)  # type: ignore[arg-type]


def describe(path: str | Path | None = None, engine: str = "auto", device: str = "auto") -> Choice:
    """The engine `load_classifier` would run for this model, and why, without loading it (for doctor)."""
    choice = choose(engine, device)
    if choice.engine == "torch":
        return choice
    from footsort.model import onnx_export

    model_path = resolve_model_path(path)
    found = onnx_export.find_export(model_path)
    if found is not None:
        return Choice("onnx", f"{choice.reason}; export {found}", choice.providers)
    if onnx_export.can_export():
        if engine == "onnx":
            return Choice("onnx", f"{choice.reason}; {model_path.name} has no export yet: the next command makes it "
                          "once (10-60 s)", choice.providers)
        return Choice("torch", f"{choice.reason}, but {model_path.name} has no ONNX export yet; one run with "
                      "--engine onnx (e.g. `footsort classify --engine onnx PHOTO`) makes it")
    missing = f"{model_path.name} has no ONNX export and onnx (with torch) is not installed to make one"
    if engine == "onnx":
        raise FootsortError(f"model.engine = 'onnx' but {missing} ({ONNX_EXTRA})")
    return Choice("torch", f"{choice.reason}, but {missing} ({ONNX_EXTRA})")


def engine_name(classifier: Any) -> str:
    """'onnx' or 'torch' for a loaded classifier."""
    return getattr(classifier, "engine", "torch")

