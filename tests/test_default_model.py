"""The shipped model: present in the package, self-contained, calibrated, right on held-out shared photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import footsort
from footsort.cli import main
from footsort.learning.datasets import scan, stratified_split
from footsort.model import checkpoint, registry
from tests.conftest import DEV_DATA, STREET_DATA

SHARED_DATA = DEV_DATA.parent

CLASSES = ("sapatos", "tsinelas")


def held_out(root: Path, per_class: int) -> list[tuple[Path, str]]:
    """The first photos of each class in the validation split the default model never trained on."""
    _, val = stratified_split(scan(root, CLASSES), 0.2, seed=0)
    picked: list[tuple[Path, str]] = []
    for label in range(len(CLASSES)):
        picked += [(s.path, CLASSES[label]) for s in val.samples if s.label == label][:per_class]
    return picked


def test_the_default_model_ships_in_the_package_and_is_what_commands_use() -> None:
    path = registry.shipped_model_path()
    assert path.is_file() and path.parent == Path(footsort.__file__).parent / "data"
    assert path.stat().st_size < 15e6
    assert registry.in_use_path() == path  # nothing promoted yet
    meta = checkpoint.read_metadata(path)
    assert tuple(meta.classes) == CLASSES
    assert 0.05 < meta.temperature < 20 and meta.metrics["validation"]
    # built from all three sources; its threshold was chosen on sources held out of training
    assert set(meta.data["train"]) == {"dev", "street", "web"}
    assert set(meta.metrics["unseen_sources"]) == {"dev", "street", "web"}
    assert meta.metrics["target_precision"] >= 0.95 and 0.5 <= meta.metrics["threshold"] < 1


@pytest.mark.real
def test_the_default_threshold_is_the_one_the_build_chose() -> None:
    from footsort.system.config import SortSection

    meta = checkpoint.read_metadata(registry.shipped_model_path())
    assert SortSection().threshold == pytest.approx(meta.metrics["threshold"], abs=0.005)


@pytest.mark.real
def test_it_classifies_held_out_web_photos() -> None:
    """footwear-web is split by near-duplicate group (footsort.learning.sources), exactly as the build split it."""
    from footsort.learning.sources import split_sources

    val = split_sources(SHARED_DATA, CLASSES).sources["web"].val
    photos = [(s.path, CLASSES[s.label]) for label in (0, 1) for s in [x for x in val.samples if x.label == label][:12]]
    predictions = footsort.classify([p for p, _ in photos])
    right = sum(pred.label == label for pred, (_, label) in zip(predictions, photos))
    assert right >= 0.85 * len(photos), [(p.name, pred.label, round(pred.confidence, 2))
                                         for pred, (p, _) in zip(predictions, photos)]


@pytest.mark.real
def test_it_classifies_held_out_catalogue_and_street_photos_offline() -> None:
    """No backbone weights anywhere (conftest clears FOOTSORT_*): the model file carries every weight."""
    photos = held_out(DEV_DATA, 10) + held_out(STREET_DATA, 10)
    predictions = footsort.classify([p for p, _ in photos])
    right = sum(pred.label == label for pred, (_, label) in zip(predictions, photos))
    assert right >= 0.9 * len(photos), [(p.name, pred.label, round(pred.confidence, 2))
                                        for pred, (p, _) in zip(predictions, photos)]


@pytest.mark.real
def test_evaluate_json_with_the_shipped_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for path, label in held_out(STREET_DATA, 6):
        (data / label).mkdir(parents=True, exist_ok=True)
        (data / label / path.name).symlink_to(path)
    result = CliRunner().invoke(main, ["evaluate", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 12 and report["classes"] == list(CLASSES) and report["accuracy"] >= 0.75
