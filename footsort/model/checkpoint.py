"""Model files: every weight plus JSON metadata in one safetensors file, written atomically, read safely."""

from __future__ import annotations

import json
import math
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from footsort.errors import ModelFileError
from footsort.system import atomic

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


# -- what a model file may say ---------------------------------------------------------------------
# Class names become folder names inside the inbox, so a model file is refused unless each one is a
# single plain folder name; its architecture and tensor shapes are checked before anything is allocated.

RESERVED_FOLDERS = frozenset({"review", "failed"})  # footsort's own folders beside the class folders
MAX_CLASSES = 1000
_NOT_IN_NAMES = frozenset('/\\:*?"<>|')  # separators, and what Windows does not allow in a name
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                              *(f"lpt{i}" for i in range(1, 10))})
_FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})


def _folder_key(name: str) -> str:
    """Names that one case-insensitive or normalising filesystem (macOS, Windows) stores as one folder."""
    return unicodedata.normalize("NFC", name).casefold()


def class_name_problem(name: object) -> str | None:
    """Why `name` cannot be a class folder name inside the inbox, or None when it can."""
    if not isinstance(name, str):
        return f"class name {name!r} is not text"
    if not name:
        return "a class name is empty"
    shown = repr(name)
    if name in (".", ".."):
        return f"class name {shown} is not a folder of its own"
    if any(c in ("/", "\\") for c in name):
        return f"class name {shown} is a path, not one folder name"
    if any(not c.isprintable() for c in name):
        return f"class name {shown} contains a control or invisible character"
    if name.startswith("."):
        return f"class name {shown} starts with a dot (a hidden folder)"
    bad = sorted(c for c in set(name) if c in _NOT_IN_NAMES)
    if bad:
        return f"class name {shown} contains {''.join(bad)!r}, which folder names cannot hold everywhere"
    if name != name.strip() or name.endswith("."):
        return f"class name {shown} starts or ends with a space or ends with a dot"
    if len(name.encode("utf-8")) > 255:
        return f"class name {shown[:40]}... is longer than a folder name can be"
    if name.split(".")[0].casefold() in _WINDOWS_DEVICES:
        return f"class name {shown} is a reserved device name on Windows"
    if _folder_key(name) in RESERVED_FOLDERS:
        return f"class name {shown} is the name of footsort's own {name.lower()}/ folder"
    return None


def classes_problem(classes: object) -> str | None:
    """Why `classes` cannot be a model's classes (unique, 2 to MAX_CLASSES plain folder names), or None."""
    if not isinstance(classes, (list, tuple)):
        return "its classes are not a list of names"
    if not 2 <= len(classes) <= MAX_CLASSES:
        return f"it has {len(classes)} classes; a model needs 2 to {MAX_CLASSES}"
    seen: dict[str, str] = {}
    for name in classes:
        problem = class_name_problem(name)
        if problem:
            return problem
        key = _folder_key(name)
        if key in seen:
            return f"class names {seen[key]!r} and {name!r} would be the same folder"
        seen[key] = name
    return None


def _number(value: object, low: float, high: float, integer: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    return math.isfinite(value) and low <= value <= high


def _meta_problem(meta: ModelVersion) -> str | None:
    problem = classes_problem(meta.classes)
    if problem:
        return problem
    arch, pre = meta.arch, meta.preprocess
    if not isinstance(arch, dict) or not isinstance(pre, dict):
        return "its architecture or preprocessing is not a table of settings"
    rules = {"num_classes": lambda v: v == len(meta.classes), "preset": lambda v: v in ("paper", "lite"),
             "width": lambda v: _number(v, 1, 4096, True), "hidden": lambda v: _number(v, 1, 16384, True),
             "dropout": lambda v: _number(v, 0.0, 0.99), "backbone_width": lambda v: _number(v, 0.05, 4.0)}
    for key, ok in rules.items():
        if key in arch and not ok(arch[key]):
            if key == "num_classes":
                return f"its head has {arch[key]!r} outputs but it names {len(meta.classes)} classes"
            return f"architecture field {key} = {arch[key]!r} is out of range"
    if not _number(pre.get("size"), 16, 2048, True):
        return f"preprocess size {pre.get('size')!r} is not a pixel size from 16 to 2048"
    if pre.get("fit", "crop") not in ("crop", "pad", "squash"):
        return f"preprocess fit {pre.get('fit')!r} is not crop, pad or squash"
    for key, low in (("mean", -10.0), ("std", 1e-6)):
        v = pre.get(key)
        if not (isinstance(v, (list, tuple)) and len(v) == 3 and all(_number(x, low, 10.0) for x in v)):
            return f"preprocess {key} {v!r} is not three sane numbers"
    if not _number(meta.temperature, 1e-3, 1e3):
        return f"temperature {meta.temperature!r} is not a positive number"
    if not isinstance(meta.version, str) or not meta.version or any(not c.isprintable() for c in meta.version):
        return f"version {meta.version!r} is not a plain name"
    return None


def check_meta(meta: ModelVersion, path: Path) -> None:
    """Refuse metadata whose classes are not unique plain folder names or whose settings are out of range."""
    problem = _meta_problem(meta)
    if problem:
        raise ModelFileError(f"model file {path} is refused: {problem} (class names must be unique, each one "
                             "plain folder name other than review and failed)")


def _check_tensors(path: Path, arch: Any) -> None:
    """Compare the file's tensor names, shapes and kinds (its header only) with what `arch` needs; nothing allocated."""
    import torch
    from safetensors import safe_open
    from torch.overrides import TorchFunctionMode

    from footsort.model.hybrid import FootwearNet

    class _NoInit(TorchFunctionMode):
        """In-place initialisers on meta tensors do nothing (else torch imports its compiler: seconds)."""

        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            name = getattr(func, "__name__", "")
            if name.endswith("_") and not name.endswith("__") and args and getattr(args[0], "is_meta", False):
                return args[0]
            return func(*args, **(kwargs or {}))

    with torch.device("meta"), _NoInit():
        expected = dict(FootwearNet(arch).state_dict())
    try:
        with safe_open(str(path), framework="pt") as fh:
            found = {k: (tuple(fh.get_slice(k).get_shape()), fh.get_slice(k).get_dtype()) for k in fh.keys()}
    except Exception as exc:
        raise ModelFileError(f"model file {path} is truncated or corrupted ({exc}); re-download or retrain it") from None
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    for k, t in expected.items():
        if k in found:
            shape, dtype = found[k]
            if shape != tuple(t.shape):
                problems.append(f"{k} is {list(shape)}, the architecture needs {list(t.shape)}")
            elif t.is_floating_point() != (dtype in _FLOAT_DTYPES):
                problems.append(f"{k} holds {dtype}")
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise ModelFileError(f"model file {path} does not match its own architecture ({'; '.join(problems[:3])}{more})")


def save(model: Any, meta: ModelVersion, path: Path, half: bool = True) -> Path:
    """Write weights (fp16 when `half`, to keep the file small) and metadata atomically to `path`."""
    import torch
    from safetensors.torch import save_file

    check_meta(meta, Path(path))  # never write a model file footsort would refuse to load
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if half and t.is_floating_point() and name != "temperature":
            t = t.to(torch.float16)
        tensors[name] = t.contiguous()
    atomic.write_with(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={_META_KEY: meta.to_json()}))
    return Path(path)


def _refuse_reason(path: Path) -> str | None:
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") + 8 <= size:
        return None  # a safetensors header (its length may well start with the byte a pickle starts with)
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

        with safe_open(str(path), framework="numpy") as fh:  # "pt" would import torch: the onnx engine never does
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
        if isinstance(data.get("classes"), list):
            data["classes"] = tuple(data["classes"])
        meta = ModelVersion(**data)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"model file {path} has unreadable footsort metadata ({exc})") from None
    check_meta(meta, path)
    return meta


def load(path: str | Path) -> tuple[Any, ModelVersion]:
    """Rebuild the FootwearNet stored in `path` (fp32, eval mode) and return it with its metadata."""
    from safetensors.torch import load_file

    from footsort.model.hybrid import Architecture, FootwearNet

    meta = read_metadata(path)
    try:
        arch = Architecture(**meta.arch)
    except TypeError as exc:
        raise ModelFileError(f"model file {path} has an unknown architecture field ({exc})") from None
    if arch.num_classes != len(meta.classes):
        raise ModelFileError(f"model file {path} is refused: its head has {arch.num_classes} outputs "
                             f"but it names {len(meta.classes)} classes")
    _check_tensors(Path(path), arch)  # before anything the size of the network is allocated
    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise ModelFileError(f"model file {path} is truncated or corrupted ({exc}); re-download or retrain it") from None
    try:
        model = FootwearNet(arch)
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelFileError(f"model file {path} does not match its own architecture ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, meta
