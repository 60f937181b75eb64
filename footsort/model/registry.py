"""Model versions in the data dir, which one is in use, and the shipped default."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loguru import logger

from footsort.errors import ModelFileError
from footsort.model.checkpoint import ModelVersion, read_metadata, save
from footsort.system import atomic, paths

SHIPPED_NAME = "default.safetensors"
DEFAULT = "default"  # what `models list` calls the shipped model; `models use default` selects it
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_warned: set[tuple[str, int, int]] = set()  # (file, mtime, size) already reported: the daemon reads the state per batch


def shipped_model_path() -> Path:
    """The default model that ships inside the package."""
    return Path(__file__).resolve().parents[1] / "data" / SHIPPED_NAME  # footsort/data/


def _state_file() -> Path:
    return paths.models_dir() / "in_use.json"


def _empty_state() -> dict[str, Any]:
    return {"current": "", "history": []}


def _state_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return "it is not a JSON object"
    if not isinstance(state.get("history", []), list):
        return "its history is not a list"
    for name in [state.get("current", ""), *state.get("history", [])]:
        if not isinstance(name, str) or (name and not _VERSION_NAME.match(name)):
            return f"{name!r} is not a model version name"
    return None


def _load_state() -> tuple[dict[str, Any], str | None]:
    """The registry state and, when the state file is damaged, why (the state is then empty)."""
    try:
        state = json.loads(_state_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _empty_state(), None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return _empty_state(), str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    problem = _state_problem(state)
    if problem:
        return _empty_state(), problem
    return {"current": state.get("current", ""), "history": list(state.get("history", []))}, None


def _warn_once(path: Path, message: str) -> None:
    """Log `message` once per version (mtime, size) of `path`, not at every read."""
    try:
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        key = (str(path), 0, 0)
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _read_state() -> dict[str, Any]:
    """The registry state; a damaged state file is reported (once per version of it) and read as empty."""
    state, problem = _load_state()
    if problem is None:
        return state
    path = _state_file()
    _warn_once(path, f"the record of which model is in use, {path}, is unreadable ({problem}); using the shipped "
               "default model until `footsort models use VERSION` (or `footsort models use default`) sets it again")
    return state


def _write_state(state: dict[str, Any]) -> None:
    target = _state_file()
    if _load_state()[1] is not None:  # keep the damaged record for a look, never overwrite it
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        aside = target.with_name(f"{target.name}.damaged-{stamp}")
        n = 0
        while os.path.lexists(aside):
            n += 1
            aside = target.with_name(f"{target.name}.damaged-{stamp}-{n}")
        os.replace(target, aside)
        logger.warning(f"moved the unreadable {target.name} aside to {aside}")
    atomic.write_text(target, json.dumps(state, indent=1))


def version_path(version: str) -> Path:
    """Where a stored version's file lives (a version is a plain name, never a path)."""
    if not _VERSION_NAME.match(version):
        raise ModelFileError(f"{version!r} is not a model version name; `footsort models list` shows them")
    return paths.models_dir() / f"{version}.safetensors"


def add_version(model: Any, meta: ModelVersion) -> Path:
    """Store a new model version (not yet in use) and return its path; its ONNX export goes beside it
    when onnx and onnxruntime are installed (footsort.model.onnx_export)."""
    from footsort.model.onnx_export import export_if_available

    path = save(model, meta, version_path(meta.version))
    export_if_available(path)
    return path


def list_versions() -> list[tuple[Path, ModelVersion]]:
    """Every readable stored version, oldest first."""
    out = []
    folder = paths.models_dir()
    atomic.clean_stale(folder)  # what a save killed half-way left behind
    for f in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            out.append((f, read_metadata(f)))
        except ModelFileError as exc:
            _warn_once(f, f"skipped a stored model: {exc}")
    return out


def current_version() -> str:
    """The version in use; '' means the shipped default."""
    return _read_state().get("current", "")


def in_use_path() -> Path:
    """The model file every command uses by default: the promoted version, else the shipped one."""
    version = current_version()
    if version:
        path = version_path(version)
        if path.is_file():
            return path
        _warn_once(path, f"model version {version} is in use but its file {path} is missing; using the shipped "
                   "default model (`footsort models list` shows what is stored)")
    return shipped_model_path()


def use(version: str) -> Path:
    """Make a stored version, or `default` (the shipped model), the model in use (every command, the running daemon)."""
    if version == DEFAULT:
        path = shipped_model_path()
        read_metadata(path)
        _set_current("")
        return path
    path = version_path(version) if _VERSION_NAME.match(version) else None
    if path is None or not path.is_file():
        known = ", ".join(m.version for _, m in list_versions()) or "none"
        raise ModelFileError(f"no stored model version {version!r}; known versions: {DEFAULT}, {known}")
    read_metadata(path)
    _set_current(version)
    return path


def _set_current(version: str) -> None:
    state, problem = _load_state()
    if state["current"] == version and problem is None:
        return
    if state["current"] != version:
        state["history"] = [*state["history"], state["current"]][-50:]
    state["current"] = version
    _write_state(state)


def rollback() -> str:
    """Go back to the version used before the current one; returns it ('' = shipped default)."""
    state = _read_state()
    history = list(state.get("history", []))
    if not history:
        raise ModelFileError("nothing to roll back to: no earlier model version was in use")
    previous = history.pop()
    state.update(current=previous, history=history)
    _write_state(state)
    return previous


def change_token() -> tuple[int, str]:
    """Cheap marker that changes whenever the model in use changes (for hot reload)."""
    try:
        st = _state_file().stat()
        return st.st_mtime_ns, current_version()
    except FileNotFoundError:
        return 0, ""
