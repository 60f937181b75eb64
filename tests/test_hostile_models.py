"""Hostile model files: class names that are paths or footsort's own folders, heads that do not match,
shapes and architecture fields out of range. Each one is refused at load with one line; nothing moves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import RED, write_image
from loguru import logger

from footsort.errors import ModelFileError
from footsort.model import checkpoint, registry
from tests.helpers_model import tiny_meta, tiny_model

_STATES: dict[int, dict] = {}


def write_model(path: Path, classes=("sapatos", "tsinelas"), heads: int | None = None, arch: dict | None = None,
                **meta_changes) -> Path:
    """A tiny model file with any metadata at all, written the way an attacker would (not through save)."""
    from safetensors.torch import save_file

    heads = heads or len(classes)
    if heads not in _STATES:
        model = tiny_model(num_classes=heads)
        _STATES[heads] = ({k: v.detach().contiguous() for k, v in model.state_dict().items()},
                          json.loads(tiny_meta(model).to_json()))
    tensors, meta = _STATES[heads]
    meta = {**meta, "classes": list(classes), "arch": {**meta["arch"], **(arch or {})}, **meta_changes}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"footsort": json.dumps(meta)})
    return path


HOSTILE_CLASSES = {
    "parent": ["../escape", "sapatos"],
    "absolute": ["/tmp/footsort-escape", "sapatos"],
    "windows-path": ["C:\\escape", "sapatos"],
    "drive": ["C:", "sapatos"],
    "empty": ["", "sapatos"],
    "dot": [".", "sapatos"],
    "dotdot": ["..", "sapatos"],
    "hidden": [".footsort-x", "sapatos"],
    "review": ["review", "sapatos"],
    "failed": ["sapatos", "failed"],
    "review-case": ["Review", "sapatos"],
    "duplicate": ["sapatos", "sapatos"],
    "duplicate-case": ["Sapatos", "sapatos"],
    "duplicate-nfd": ["cafe\u0301", "caf\u00e9"],
    "slash": ["a/b", "sapatos"],
    "backslash": ["a\\b", "sapatos"],
    "nul": ["a\x00b", "sapatos"],
    "newline": ["a\nERROR forged", "sapatos"],
    "escape": ["a\x1b[31m", "sapatos"],
    "rtl-override": ["a\u202eb", "sapatos"],
    "trailing-space": ["sapatos ", "tsinelas"],
    "device": ["CON", "sapatos"],
    "too-long": ["x" * 256, "sapatos"],
    "not-text": [3, "sapatos"],
    "one-class": ["sapatos"],
}


@pytest.mark.parametrize("classes", HOSTILE_CLASSES.values(), ids=HOSTILE_CLASSES.keys())
def test_hostile_class_names_are_refused_with_one_line(tmp_path: Path, classes: list) -> None:
    path = write_model(tmp_path / "evil.safetensors", classes)
    with pytest.raises(ModelFileError) as info:
        checkpoint.read_metadata(path)
    message = str(info.value)
    assert "\n" not in message and "\x00" not in message and "\x1b" not in message
    assert str(path) in message and "refused" in message
    with pytest.raises(ModelFileError):
        checkpoint.load(path)


def test_plain_class_names_of_every_script_still_load(tmp_path: Path) -> None:
    classes = ["chinelos e sandálias", "靴", "boots-2", "Sapatos_de_couro"]
    meta = checkpoint.read_metadata(write_model(tmp_path / "ok.safetensors", classes))
    assert meta.classes == tuple(classes)


def test_save_refuses_to_write_a_model_it_could_not_load(tmp_path: Path) -> None:
    model = tiny_model()
    with pytest.raises(ModelFileError, match="review"):
        checkpoint.save(model, tiny_meta(model, classes=("review", "sapatos")), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_more_classes_than_the_head_has_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m.safetensors", ["sapatos", "tsinelas", "botas"], heads=2, arch={"num_classes": 2})
    with pytest.raises(ModelFileError, match="2 outputs but it names 3 classes"):
        checkpoint.read_metadata(path)
    path = write_model(tmp_path / "n.safetensors", ["sapatos", "tsinelas", "botas"], heads=2, arch={"num_classes": 3})
    with pytest.raises(ModelFileError, match=r"head\.5\.weight is \[2, 32\], the architecture needs \[3, 32\]"):
        checkpoint.load(path)


@pytest.mark.parametrize("arch", [{"width": 10**9}, {"hidden": -1}, {"preset": "huge"}, {"dropout": 1.5},
                                  {"backbone_width": 1e6}, {"num_classes": True}],
                         ids=["width", "hidden", "preset", "dropout", "backbone", "bool"])
def test_architecture_fields_out_of_range_are_refused_from_the_header(tmp_path: Path, arch: dict) -> None:
    with pytest.raises(ModelFileError, match="refused"):
        checkpoint.read_metadata(write_model(tmp_path / "m.safetensors", arch=arch))


@pytest.mark.parametrize("changes", [{"temperature": -1.0}, {"temperature": float("nan")},
                                     {"preprocess": {"size": 10**6, "mean": [0, 0, 0], "std": [1, 1, 1]}},
                                     {"preprocess": {"size": 64, "mean": [0, 0, 0], "std": [0, 1, 1]}},
                                     {"version": "x\nERROR forged"}],
                         ids=["negative-temperature", "nan-temperature", "huge-input", "zero-std", "version"])
def test_other_metadata_out_of_range_is_refused(tmp_path: Path, changes: dict) -> None:
    with pytest.raises(ModelFileError, match="refused"):
        checkpoint.read_metadata(write_model(tmp_path / "m.safetensors", **changes))


def test_shapes_are_checked_from_the_header_before_any_weight_is_read(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    path = write_model(tmp_path / "m.safetensors", arch={"hidden": 4096, "width": 2048})

    def no_read(*a, **k):
        raise AssertionError("weights were read before the header's shapes were checked")

    monkeypatch.setattr(safetensors.torch, "load_file", no_read)
    with pytest.raises(ModelFileError, match="does not match its own architecture.*the architecture needs"):
        checkpoint.load(path)


def test_a_stored_hostile_version_cannot_be_put_in_use(tmp_path: Path) -> None:
    from footsort.system import paths

    write_model(paths.models_dir() / "20260101-000000-abcdef.safetensors", ["../escape", "sapatos"],
                version="20260101-000000-abcdef")
    with pytest.raises(ModelFileError, match="escape"):
        registry.use("20260101-000000-abcdef")
    assert registry.current_version() == ""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    try:
        assert registry.list_versions() == [] and registry.list_versions() == []
    finally:
        logger.remove(sink)
    assert len(lines) == 1 and "skipped a stored model" in lines[0] and "escape" in lines[0]  # said once


def test_sort_with_a_hostile_model_moves_nothing_and_says_why(tmp_path: Path) -> None:
    from footsort.cli import main

    inbox = tmp_path / "deep" / "inbox"
    photo = write_image(inbox / "red.jpg", RED, 1)
    evil = write_model(tmp_path / "evil.safetensors", ["../../escape", "sapatos"])
    try:
        result = CliRunner().invoke(main, ["sort", "--model", str(evil), str(inbox)])
    finally:
        logger.remove()
        logger.add(sys.stderr, level="WARNING")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "'../../escape' is a path" in errors[0]
    assert photo.exists() and sorted(p.name for p in inbox.iterdir()) == ["red.jpg"]
    assert not (tmp_path / "escape").exists()


def test_a_header_whose_length_starts_like_a_pickle_is_still_a_model(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    for pad in range(0, 512, 8):
        write_model(path, recipe={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:  # pickle's first byte, here the low byte of the header length
            break
    else:  # pragma: no cover
        pytest.fail("could not make such a header")
    assert checkpoint.read_metadata(path).recipe["pad"]
