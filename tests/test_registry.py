"""registry: `default` names the shipped model; a damaged in_use.json is reported, kept and replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from loguru import logger

from footsort.errors import ModelFileError
from footsort.model import checkpoint, registry
from footsort.system import paths
from tests.helpers_model import tiny_meta, tiny_model


@pytest.fixture
def warnings():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    yield lines
    logger.remove(sink)


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """One stored version, and a tiny stand-in for the shipped model (the real one may be being rebuilt)."""
    model = tiny_model()
    shipped = tmp_path / "shipped.safetensors"
    checkpoint.save(model, tiny_meta(model), shipped)
    monkeypatch.setattr(registry, "shipped_model_path", lambda: shipped)
    meta = tiny_meta(model)
    registry.add_version(model, meta)
    return meta.version


def cli(*args: str):
    from footsort.cli import main

    try:
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")


def test_models_use_default_selects_the_shipped_model(stored: str) -> None:
    registry.use(stored)
    assert registry.in_use_path() == registry.version_path(stored)
    assert registry.use("default") == registry.shipped_model_path()
    assert registry.current_version() == "" and registry.in_use_path() == registry.shipped_model_path()
    assert registry.rollback() == stored  # `default` went into the history like any version


def test_models_use_default_through_the_cli(stored: str) -> None:
    assert cli("models", "use", stored).exit_code == 0
    result = cli("models", "use", "default")
    assert result.exit_code == 0 and "model default is now in use" in result.output
    listing = cli("models", "list").output.splitlines()
    assert any(line.startswith("* ") and "default (shipped)" in line for line in listing)
    assert not any(line.startswith("* ") and stored in line for line in listing)


def test_an_unknown_version_names_default_among_the_known(stored: str) -> None:
    with pytest.raises(ModelFileError, match=f"known versions: default, {stored}"):
        registry.use("20990101-000000-ffffff")


@pytest.mark.parametrize("name", ["../../elsewhere/model", "/tmp/model", "a\nb", ""])
def test_a_version_name_is_never_a_path(stored: str, name: str) -> None:
    with pytest.raises(ModelFileError):
        registry.use(name)
    with pytest.raises(ModelFileError):
        registry.version_path(name)


@pytest.mark.parametrize("content", [b"{\"current\": \"2026", b"\xff\xfe", b"[1, 2]", b"",
                                     b'{"current": "../../x", "history": []}', b'{"current": 3}'],
                         ids=["truncated", "not-utf8", "list", "empty", "path", "number"])
def test_a_damaged_state_is_said_not_silently_ignored(stored: str, warnings: list[str], content: bytes) -> None:
    registry.use(stored)
    state = paths.models_dir() / "in_use.json"
    state.write_bytes(content)
    assert registry.in_use_path() == registry.shipped_model_path()
    assert registry.current_version() == ""
    said = [w for w in warnings if "in_use.json" in w and "unreadable" in w]
    assert len(said) == 1 and "footsort models use" in said[0]  # once, not on every batch of a running daemon
    registry.use(stored)  # repairs it, keeping the damaged one
    (aside,) = paths.models_dir().glob("in_use.json.damaged-*")
    assert aside.read_bytes() == content
    assert json.loads(state.read_text())["current"] == stored and registry.current_version() == stored


def test_a_missing_version_file_is_said(stored: str, warnings: list[str]) -> None:
    registry.use(stored)
    registry.version_path(stored).unlink()
    assert registry.in_use_path() == registry.shipped_model_path()
    assert any("is missing" in w and stored in w for w in warnings)


def test_the_state_has_no_fixed_temp_name_and_survives_a_failed_write(stored: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from footsort.system import atomic

    registry.use(stored)

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut")

    with monkeypatch.context() as m:
        m.setattr(atomic.os, "replace", crash)
        with pytest.raises(OSError):
            registry.use("default")
    assert registry.current_version() == stored
    exports = {f"{stored}.onnx"}  # written beside the version when onnx is installed (footsort.model.onnx_export)
    assert sorted(set(os.listdir(paths.models_dir())) - exports) == [f"{stored}.safetensors", "in_use.json"]
