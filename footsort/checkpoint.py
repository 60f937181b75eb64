"""Model files: every weight plus JSON metadata in one safetensors file, written atomically, read safely."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from footsort.errors import ModelFileError

FORMAT = "footsort-model"
FORMAT_VERSION = 1
_META_KEY = "footsort"


@dataclass(frozen=True)
class ModelVersion:
    """The metadata of one model file: what it is, how it was made, how well it did."""

    version: str
    classes: tuple[str, ...]
    arch: dict[str, Any]
    preprocess: dict[str, Any]
    temperature: float = 1.0
    recipe: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: str = ""
    created: str = ""
    footsort_version: str = ""
    backbone_origin: str = ""

    def to_json(self) -> str:
        """Serialise for the file header."""
        d = asdict(self)
        d["format"], d["format_version"] = FORMAT, FORMAT_VERSION
        return json.dumps(d, sort_keys=True)


def new_version_id(now: datetime | None = None) -> str:
    """A sortable, unique version name like 20261123-193000-1a2b3c."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def now_iso() -> str:
    """UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(model: Any, meta: ModelVersion, path: Path, half: bool = True) -> Path:
    """Write weights (fp16 when `half`, to keep the file small) and metadata atomically to `path`."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if half and t.is_floating_point() and name != "temperature":
            t = t.to(torch.float16)
        tensors[name] = t.contiguous()
    _atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={_META_KEY: meta.to_json()}))
    return Path(path)


def _refuse_reason(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head[:2] == b"PK":
        return "it is a torch zip/pickle file; footsort only loads safetensors model files and never unpickles"
    if head[:1] == b"\x80":
        return "it is a pickle file; footsort never unpickles model files (unsafe)"
    if len(head) < 8:
        return "it is empty or truncated"
    return None


def read_metadata(path: str | Path) -> ModelVersion:
    """Read only the metadata of a model file (fast; no weights)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; check the path or run `footsort models list`")
    reason = _refuse_reason(path)
    if reason:
        raise ModelFileError(f"cannot load model file {path}: {reason}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
    except Exception as exc:
        raise ModelFileError(f"model file {path} is truncated or corrupted ({exc}); re-download or retrain it") from None
    raw = header.get(_META_KEY)
    if raw is None:
        raise ModelFileError(f"{path} is a safetensors file but not a footsort model (no footsort metadata)")
    try:
        data = json.loads(raw)
        if data.pop("format", None) != FORMAT:
            raise ValueError("wrong format tag")
        fv = data.pop("format_version", None)
        if fv != FORMAT_VERSION:
            raise ModelFileError(f"model file {path} has format version {fv}; this footsort reads {FORMAT_VERSION}: upgrade footsort")
        data["classes"] = tuple(data["classes"])
        return ModelVersion(**data)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"model file {path} has unreadable footsort metadata ({exc})") from None


def load(path: str | Path) -> tuple[Any, ModelVersion]:
    """Rebuild the FootwearNet stored in `path` (fp32, eval mode) and return it with its metadata."""
    import torch
    from safetensors.torch import load_file

    from footsort.model import Architecture, FootwearNet

    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"model file {path} is truncated or corrupted ({exc}); re-download or retrain it") from None
    try:
        model = FootwearNet(Architecture(**meta.arch))
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelFileError(f"model file {path} does not match its own architecture ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, meta
