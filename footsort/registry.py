"""Model versions in the data dir, which one is in use, and the shipped default."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from footsort import paths
from footsort.checkpoint import ModelVersion, read_metadata, save
from footsort.errors import ModelFileError

SHIPPED_NAME = "default.safetensors"


def shipped_model_path() -> Path:
    """The default model that ships inside the package."""
    return Path(__file__).resolve().parent / "data" / SHIPPED_NAME


def _state_file() -> Path:
    return paths.models_dir() / "in_use.json"


def _read_state() -> dict[str, Any]:
    try:
        return json.loads(_state_file().read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"current": "", "history": []}


def _write_state(state: dict[str, Any]) -> None:
    target = _state_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, target)


def version_path(version: str) -> Path:
    """Where a stored version's file lives."""
    return paths.models_dir() / f"{version}.safetensors"


def add_version(model: Any, meta: ModelVersion) -> Path:
    """Store a new model version (not yet in use) and return its path."""
    return save(model, meta, version_path(meta.version))


def list_versions() -> list[tuple[Path, ModelVersion]]:
    """Every readable stored version, oldest first."""
    out = []
    folder = paths.models_dir()
    for f in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            out.append((f, read_metadata(f)))
        except ModelFileError:
            continue
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
    return shipped_model_path()


def use(version: str) -> Path:
    """Make a stored version the model in use (for every command and the running daemon)."""
    path = version_path(version)
    if not path.is_file():
        known = ", ".join(m.version for _, m in list_versions()) or "none"
        raise ModelFileError(f"no stored model version {version!r}; known versions: {known}")
    read_metadata(path)
    state = _read_state()
    if state.get("current", "") != version:
        state["history"] = [*state.get("history", []), state.get("current", "")][-50:]
        state["current"] = version
        _write_state(state)
    return path


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
