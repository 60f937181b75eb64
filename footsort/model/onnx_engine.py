"""The light engine: a model version's ONNX export run by ONNX Runtime, preprocessing in numpy; no torch.

Same surface as footsort.model.classifier.Classifier (classes, version, meta, prepare, predict_images,
iter_paths, predict_paths): the metadata (classes, preprocessing, temperature, test-time flip) is read
from the model file's header, the weights from its export (see footsort.model.onnx_export).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from loguru import logger
from PIL import Image

from footsort.errors import FootsortError
from footsort.model import checkpoint
from footsort.model.engine import PathLabeller, resolve_model_path
from footsort.model.onnx_export import INPUT, OUTPUT, SOURCE_KEY, candidates
from footsort.model.prediction import Prediction
from footsort.model.presets import Preprocess, eval_array, fit_image
from footsort.sorting.hashes import file_hash

CPU = ("CPUExecutionProvider",)
PIXELS = "_footsort_pixels"  # attribute of a prepared image: (Preprocess, its float32 model input)


class NoExport(FootsortError):
    """The model file has no usable ONNX export (none, stale, unreadable or of another shape)."""


def cpu_cores() -> int:
    """The cores this process may run on (taskset and cgroup CPU sets included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def session(path: Path, providers: Sequence[str] = CPU) -> Any:
    """An ONNX Runtime session for an export (all graph optimisations; quiet unless something fails).

    On the CPU each run is single-threaded: OnnxClassifier runs a batch's parts side by side instead (see
    `probabilities`), and no worker threads spin-wait on the cores the photos decode on.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if tuple(providers) == CPU:
        options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))


_runners: ThreadPoolExecutor | None = None
_runners_lock = threading.Lock()


def _runner_pool() -> ThreadPoolExecutor:
    """The threads that run parts of a batch side by side (one per core, shared by every classifier)."""
    global _runners
    with _runners_lock:
        if _runners is None:
            _runners = ThreadPoolExecutor(max_workers=cpu_cores(), thread_name_prefix="footsort-onnx")
        return _runners


def open_export(model_path: Path, providers: Sequence[str] = CPU) -> tuple[Path, Any]:
    """The export of this exact model file and a session on it; NoExport when there is none."""
    sha = file_hash(model_path)
    for candidate in candidates(model_path, sha):
        if not candidate.is_file():
            continue
        try:
            opened = session(candidate, providers)
        except Exception as exc:
            logger.warning(f"ignored the unreadable ONNX export {candidate} ({str(exc).splitlines()[0]})")
            continue
        if opened.get_modelmeta().custom_metadata_map.get(SOURCE_KEY) != sha:
            logger.info(f"ignored {candidate}: it is the export of another version of {model_path.name}")
            continue
        return candidate, opened
    raise NoExport(f"model {model_path.name} has no ONNX export yet")


class OnnxClassifier(PathLabeller):
    """A model version's export loaded for inference; `predict_images` is what the pipeline calls."""

    engine = "onnx"

    def __init__(self, opened: Any, meta: checkpoint.ModelVersion, path: Path | None = None,
                 onnx_path: Path | None = None) -> None:
        self.meta = meta
        self.path = path
        self.onnx_path = onnx_path
        self.classes: tuple[str, ...] = tuple(meta.classes)
        self.version: str = meta.version
        self.preprocess = Preprocess.from_dict(meta.preprocess)
        self.input_size: int = self.preprocess.size
        self.tta_flip = bool(meta.recipe.get("tta_flip", False))
        self.device = "cuda" if "CUDAExecutionProvider" in opened.get_providers() else "cpu"
        self._temperature = float(meta.temperature)
        self._session = opened
        self._to_array = eval_array(self.preprocess)
        (inp,), (out,) = opened.get_inputs(), opened.get_outputs()
        size = self.input_size
        if (inp.name, out.name) != (INPUT, OUTPUT) or list(inp.shape[1:]) != [3, size, size] \
                or out.shape[-1] != len(self.classes):
            raise NoExport(f"the ONNX export {onnx_path} does not fit model {meta.version} "
                           f"(input {inp.shape}, output {out.shape}); delete it and it is made again")
        self.fused = threading.Event()  # nothing to fuse: onnxruntime optimised the graph when it loaded it
        self.fused.set()

    @classmethod
    def load(cls, path: str | Path | None = None, providers: Sequence[str] = CPU) -> "OnnxClassifier":
        """Load a model file's export; None means the model in use (else the shipped default)."""
        model_path = resolve_model_path(path)
        meta = checkpoint.read_metadata(model_path)
        onnx_path, opened = open_export(model_path, providers)
        return cls(opened, meta, model_path, onnx_path)

    def fuse_in_background(self) -> None:
        """Nothing to do (the torch engine's graph fusion has no counterpart here)."""

    def prepare(self, image: Image.Image) -> Image.Image:
        """The decoded image resized the way the model sees it, carrying its model input (thread-safe).

        The pipeline calls this in its loading threads: normalising there too takes it off the thread
        that runs the model."""
        fitted = fit_image(image, self.input_size, self.preprocess.fit)
        setattr(fitted, PIXELS, (self.preprocess, self._to_array(fitted)))
        return fitted

    def to_array(self, image: Image.Image) -> Any:
        """The eval transform for one decoded image: float32 (3, S, S) (the one `prepare` made, if it fits)."""
        made = getattr(image, PIXELS, None)
        if made is not None and made[0] == self.preprocess:
            return made[1]
        return self._to_array(image)

    def _logits(self, batch: Any) -> Any:
        """One run of the graph (two with test-time flip) on a normalised batch."""
        import numpy as np

        run = lambda x: self._session.run([OUTPUT], {INPUT: x})[0]  # noqa: E731
        logits = run(batch)
        if self.tta_flip:
            logits = (logits + run(np.ascontiguousarray(batch[..., ::-1]))) / 2
        return logits

    def probabilities(self, batch: Any) -> Any:
        """Calibrated class probabilities (N, classes) for a normalised float32 batch (N, 3, S, S).

        On the CPU the batch is cut into one part per core, each run single-threaded and side by side: unlike
        one run spread over the cores, no operator waits for a thread the photo decoding took the core from
        (on 2 busy cores `sort` used about 10 % less CPU). Each photo's logits are bit for bit the same
        whatever the batch or part it is in.
        """
        import numpy as np

        parts = min(len(batch), cpu_cores()) if self.device == "cpu" else 1
        if parts > 1:
            logits = np.concatenate(list(_runner_pool().map(self._logits, np.array_split(batch, parts))))
        else:
            logits = self._logits(batch)
        z = logits.astype(np.float32) / np.float32(self._temperature)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_images(self, images: Sequence[Image.Image], paths: Sequence[Path | None] | None = None) -> list[Prediction]:
        """Label decoded RGB images, in order."""
        if not images:
            return []
        import numpy as np

        probs = self.probabilities(np.stack([self.to_array(im) for im in images]))
        paths = paths or [None] * len(images)
        return [self._prediction(row, p) for row, p in zip(probs.tolist(), paths)]
