"""ONNX export of a model version: the whole hybrid in fp32, checked against torch, written atomically.

Where an export lives: beside a stored version (`X.safetensors` -> `X.onnx`, written by `train` and
`retrain`), or, for the shipped model and any file footsort does not own, in the cache as
`onnx/<SHA-256 of the model file>.onnx` (written once, on first use). Every export records the SHA-256 of
the model file it came from, so an export beside a model file that was replaced is never used.
The graph maps normalised pixels (N, 3, S, S) to logits (N, classes); preprocessing and the temperature
stay in the model file's metadata, read by both engines.
"""

from __future__ import annotations

import importlib.util
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from loguru import logger

from footsort.errors import FootsortError, UnreadableImage
from footsort.sorting.hashes import file_hash
from footsort.system import atomic, paths

OPSET = 17  # onnxruntime >= 1.14 runs it; the TorchScript-based exporter writes it without onnxscript
INPUT, OUTPUT = "pixels", "logits"
SOURCE_KEY = "footsort_source_sha256"
VERSION_KEY = "footsort_model_version"
# parity: every logit within ATOL + RTOL * |torch's logit| (fp32 on both sides; BatchNorm folding and
# kernel order give differences around 1e-5)
ATOL, RTOL = 1e-3, 1e-3
SYNTHETIC = 4  # inputs made up when no photos are given


class ExportRefused(FootsortError):
    """The ONNX graph does not give torch's answers (or cannot be made); nothing was written."""


@dataclass(frozen=True)
class ExportReport:
    """Where the export went and how close it came to torch."""

    path: Path
    inputs: int
    max_abs_diff: float
    seconds: float


def can_export() -> bool:
    """torch, onnx and onnxruntime can all be imported (found; nothing is imported here)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx", "onnxruntime"))


def beside(model_path: Path) -> Path:
    """`X.safetensors` -> `X.onnx`."""
    return Path(model_path).with_suffix(".onnx")


def cached(sha: str) -> Path:
    """The cache's export of the model file with this SHA-256."""
    return paths.cache_dir() / "onnx" / f"{sha[:32]}.onnx"


def candidates(model_path: Path, sha: str) -> list[Path]:
    """Where an export of `model_path` may be, in the order they are tried."""
    return [beside(model_path), cached(sha)]


def find_export(model_path: Path) -> Path | None:
    """The export of this exact model file, if there is one (its recorded SHA-256 matches)."""
    from footsort.model.onnx_engine import NoExport, open_export

    try:
        return open_export(Path(model_path))[0]
    except NoExport:
        return None


def parity_inputs(spec: Any, photos: Sequence[Path] = (), synthetic: int = SYNTHETIC) -> Any:
    """A float32 batch (N, 3, S, S): the photos that decode, plus `synthetic` made-up images (noise, ramps)."""
    import numpy as np
    from PIL import Image

    from footsort.model.imaging import load_rgb
    from footsort.model.presets import eval_array

    to_array = eval_array(spec)
    rng = np.random.default_rng(0)
    images = []
    for p in photos:
        try:
            images.append(load_rgb(Path(p), min_side=spec.size))
        except UnreadableImage:
            continue
    for i in range(synthetic):
        h, w = spec.size + 17 * i, spec.size + 31 * i
        if i % 2:
            ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * rng.uniform(0.2, 1.0, 3)
            pixels = np.broadcast_to(ramp, (h, w, 3))
        else:
            pixels = rng.integers(0, 256, (h, w, 3))
        images.append(Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB"))
    return np.stack([to_array(im) for im in images])


def _store_half(proto: Any) -> int:
    """Store every fp32 weight that fp16 holds exactly as fp16, read back through a Cast to fp32.

    The model file keeps its weights in fp16, so (with BatchNorm left unfolded) each weight fits exactly:
    the export weighs what the model file weighs instead of twice that, and the numbers are unchanged.
    onnxruntime folds the Casts when it loads the graph, so it still computes in fp32. Returns how many.
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph, casts, kept, count = proto.graph, [], [], 0
    for init in graph.initializer:
        values = numpy_helper.to_array(init) if init.data_type == TensorProto.FLOAT else None
        half = values.astype(np.float16) if values is not None and values.size > 1 else None
        if half is None or not np.array_equal(half.astype(np.float32), values):
            kept.append(init)
            continue
        stored = init.name + "__fp16"
        kept.append(numpy_helper.from_array(half, stored))
        casts.append(helper.make_node("Cast", [stored], [init.name], to=TensorProto.FLOAT, name=stored + "_cast"))
        count += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return count


def _onnx_bytes(model: Any, example: Any, sha: str, version: str) -> bytes:
    """The traced graph with a dynamic batch axis, fp16-stored weights, tagged with the model file it came from."""
    import onnx
    import torch

    from footsort import __version__

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # no constant folding: folded BatchNorm weights would no longer fit fp16 exactly (see _store_half)
        torch.onnx.export(model, (example,), buf, dynamo=False, opset_version=OPSET, do_constant_folding=False,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    proto = onnx.load_model_from_string(buf.getvalue())
    _store_half(proto)
    onnx.checker.check_model(proto)
    for key, value in ((SOURCE_KEY, sha), (VERSION_KEY, version), ("footsort_version", __version__)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export(model_path: Path, target: Path | None = None, photos: Sequence[Path] = (),
           atol: float = ATOL, rtol: float = RTOL) -> ExportReport:
    """Export the model file to ONNX (default: beside it) if its logits match torch's; else ExportRefused."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from footsort.model import checkpoint
    from footsort.model.presets import Preprocess

    started = time.perf_counter()
    model_path = Path(model_path)
    target = Path(target) if target else beside(model_path)
    sha = file_hash(model_path)
    model, meta = checkpoint.load(model_path)  # the weights as saved (fp16 in the file): what torch sorts with
    x = parity_inputs(Preprocess.from_dict(meta.preprocess), photos)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small one-off convolutions: on a busy CPU more threads only wait on each other (5x slower)
    try:
        data = _onnx_bytes(model, torch.from_numpy(x[:2]), sha, meta.version)
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT], {INPUT: x})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(x)).numpy()
    except Exception as exc:
        raise ExportRefused(f"cannot export {model_path} to ONNX: {type(exc).__name__}: {exc}") from None
    finally:
        torch.set_num_threads(threads)
    diff = np.abs(got - want)
    worst = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    if got.shape != want.shape or not np.all(diff <= atol + rtol * np.abs(want)):
        raise ExportRefused(f"the ONNX export of {model_path} was refused: its logits differ from torch's by up to "
                            f"{worst:.3g} (allowed {atol:g} + {rtol:g} x |logit|) on {len(x)} input(s); "
                            "sorting with this model uses torch")
    atomic.write_bytes(target, data)
    return ExportReport(target, len(x), worst, time.perf_counter() - started)


def _refused_marker(sha: str) -> Path:
    return cached(sha).with_suffix(".refused")


def export_once(model_path: Path) -> ExportReport:
    """First use: export a model file that has none (stored versions beside, others into the cache), once.

    A refused export is remembered (a `.refused` note in the cache) so it is not tried on every run.
    """
    model_path = Path(model_path)
    sha = file_hash(model_path)
    marker = _refused_marker(sha)
    if marker.is_file():
        raise ExportRefused(marker.read_text(encoding="utf-8", errors="replace").strip())
    own = model_path.parent.resolve() == paths.models_dir().resolve()
    target = beside(model_path) if own else cached(sha)
    logger.info(f"writing the ONNX export of {model_path.name} once ({target}); later runs start without torch")
    try:
        report = export(model_path, target)
    except ExportRefused as exc:
        atomic.write_text(marker, str(exc))
        raise
    logger.info(f"ONNX export checked against torch on {report.inputs} inputs (max logit difference "
                f"{report.max_abs_diff:.2g}) in {report.seconds:.0f} s")
    return report


def export_if_available(model_path: Path, photos: Sequence[Path] = ()) -> Path | None:
    """The hook `train` and `retrain` call after saving a version: its export beside it, when onnx and
    onnxruntime are installed; a failed or refused export is logged and never fails the save."""
    if not can_export():
        return None
    try:
        report = export(Path(model_path), photos=photos)
    except Exception as exc:
        logger.warning(f"no ONNX export for {model_path}: {exc}")
        return None
    logger.info(f"ONNX export {report.path} (max logit difference to torch {report.max_abs_diff:.2g} "
                f"on {report.inputs} inputs, {report.seconds:.0f} s)")
    return report.path
