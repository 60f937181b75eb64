"""`footsort train / classify / evaluate` through click's CliRunner, on a tiny model and tiny images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from footsort.cli import main
from tests.helpers_model import make_image_folder, tiny_backbone_file

TINY = ["--backbone-width", "0.25", "--image-size", "64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("train")
    data = make_image_folder(root / "data", per_class=8)
    weights = tiny_backbone_file(root / "tiny_backbone.pth")
    model = root / "model.safetensors"
    result = CliRunner().invoke(main, ["train", str(data), "--backbone-weights", str(weights), *TINY,
                                       "--preset", "lite", "--width", "16", "--epochs", "3", "--batch-size", "4",
                                       "--lr", "3e-3", "--val-split", "0.25", "--output", str(model)])
    assert result.exit_code == 0, result.output
    return {"root": root, "data": data, "weights": weights, "model": model, "output": result.output}


def test_train_writes_model_and_report(trained: dict) -> None:
    assert trained["model"].is_file()
    assert "validation accuracy" in trained["output"]
    report = trained["model"].parent / "model-report"
    metrics = json.loads((report / "metrics.json").read_text())
    assert len(metrics["history"]) == 3
    assert {"accuracy", "confusion", "per_class"} <= set(metrics["validation"])
    for png in ("curves.png", "confusion.png", "samples.png"):
        assert (report / png).stat().st_size > 1000


def test_classify_json_lines(trained: dict) -> None:
    files = sorted((trained["data"] / "tsinelas").glob("*.jpg"))[:2]
    result = CliRunner().invoke(main, ["classify", "--json", "--model", str(trained["model"]), *map(str, files)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [r["path"] for r in rows] == [str(f) for f in files]
    for r in rows:
        assert r["label"] in ("sapatos", "tsinelas")
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-3


def test_classify_reports_unreadable_and_goes_on(trained: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    good = next((trained["data"] / "sapatos").glob("*.jpg"))
    result = CliRunner().invoke(main, ["classify", "--model", str(trained["model"]), str(bad), str(good)])
    assert result.exit_code == 0
    assert "not a recognised image" in result.output and str(good) in result.output


def test_evaluate_json_is_one_object(trained: dict) -> None:
    result = CliRunner().invoke(main, ["evaluate", str(trained["data"]), "--model", str(trained["model"]), "--json"])
    assert result.exit_code == 0, result.stderr
    obj = json.loads(result.stdout)
    assert {"accuracy", "n", "classes", "per_class", "confusion", "errors"} <= set(obj)  # the documented keys stay
    assert {"thresholds", "ece", "target_precision", "threshold_for_target", "sorted_at_target"} <= set(obj)
    assert obj["n"] == 16 and sum(map(sum, obj["confusion"])) == 16
    assert len(obj["errors"]) == round((1 - obj["accuracy"]) * 16)
    half = next(r for r in obj["thresholds"] if r["threshold"] == 0.5)
    assert half["sorted"] == 1.0 and half["sorted_accuracy"] == pytest.approx(obj["accuracy"])  # two classes: all >= 0.5
    shares = [r["sorted"] for r in obj["thresholds"]]
    assert shares == sorted(shares, reverse=True)


def test_evaluate_prints_the_trade_off_and_writes_the_plots(trained: dict, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = CliRunner().invoke(main, ["evaluate", str(trained["data"]), "--model", str(trained["model"]),
                                       "--target-precision", "0.9", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "accuracy of the sorted" in result.stdout and "expected calibration error" in result.stdout
    assert "0.9 precision" in result.stdout or "0.90 precision" in result.stdout
    for png in ("reliability.png", "risk_coverage.png", "confusion.png"):
        assert (report / png).stat().st_size > 1000
    assert "thresholds" in json.loads((report / "metrics.json").read_text())


def test_evaluate_rejects_foreign_class_folder(trained: dict, tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "d", per_class=1, classes=("sapatos", "botas"))
    result = CliRunner().invoke(main, ["evaluate", str(data), "--model", str(trained["model"])])
    assert result.exit_code == 1
    assert "error:" in result.output and "botas" in result.output


def test_bad_model_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "m.safetensors"
    bad.write_bytes(b"\x80\x04garbage")
    result = CliRunner().invoke(main, ["classify", "--model", str(bad), str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output


def test_missing_backbone_weights_offline_is_one_line(tmp_path: Path) -> None:
    data = make_image_folder(tmp_path / "d", per_class=2)
    result = CliRunner().invoke(main, ["train", str(data), "--backbone-weights", str(tmp_path / "nope.pth")])
    assert result.exit_code == 1
    assert "FOOTSORT_BACKBONE_WEIGHTS" in result.output and result.output.count("\n") == 1


def test_train_use_makes_it_the_model_in_use(trained: dict) -> None:
    from footsort.model import registry

    result = CliRunner().invoke(main, ["train", str(trained["data"]), "--backbone-weights", str(trained["weights"]), *TINY,
                                       "--preset", "lite", "--width", "16", "--epochs", "1", "--batch-size", "8", "--use"])
    assert result.exit_code == 0, result.output
    assert "now in use" in result.output
    assert registry.in_use_path() != registry.shipped_model_path()
    assert registry.in_use_path().name.startswith(registry.current_version())


def test_paper_defaults_run_end_to_end(trained: dict, tmp_path: Path) -> None:
    """The paper recipe (paper blocks, batch 1, Adam 1e-4, paper augmentations): 1 epoch on 8 tiny images."""
    data = make_image_folder(tmp_path / "d", per_class=4, size=40)
    result = CliRunner().invoke(main, ["train", str(data), "--backbone-weights", str(trained["weights"]), *TINY,
                                       "--epochs", "1", "--output", str(tmp_path / "p.safetensors")])
    assert result.exit_code == 0, result.output
    from footsort.model.checkpoint import read_metadata

    meta = read_metadata(tmp_path / "p.safetensors")
    assert meta.arch["preset"] == "paper" and meta.recipe["batch_size"] == 1 and meta.recipe["lr"] == 1e-4


@pytest.mark.parametrize("cmd", ["classify", "evaluate", "train"])
def test_help_has_an_example(cmd: str) -> None:
    result = CliRunner().invoke(main, [cmd, "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_the_shipped_recipe_flags_run_end_to_end(tmp_path: Path) -> None:
    """Cached features before the last 2 backbone stages, mild views + household scenes, cosine schedule."""
    from footsort.model import checkpoint

    data = make_image_folder(tmp_path / "data", per_class=6)
    weights = tiny_backbone_file(tmp_path / "tiny_backbone.pth")
    out = tmp_path / "m.safetensors"
    result = CliRunner().invoke(main, ["train", str(data), "--backbone-weights", str(weights), *TINY,
                                       "--mode", "cached", "--preset", "lite", "--width", "16", "--fit", "pad",
                                       "--augment", "mild", "--synth", "0.35", "--finetune-backbone", "2",
                                       "--finetune-lr", "1e-3", "--schedule", "cosine", "--weight-decay", "1e-4",
                                       "--label-smoothing", "0.1", "--views", "2", "--batch-size", "4",
                                       "--lr", "3e-3", "--epochs", "2", "--val-split", "0.25", "--output", str(out)])
    assert result.exit_code == 0, result.output
    meta = checkpoint.read_metadata(out)
    assert meta.recipe["finetune_backbone"] == 2 and meta.recipe["augment"] == "mild"
    assert meta.recipe["schedule"] == "cosine" and "val_accuracy" in meta.metrics
