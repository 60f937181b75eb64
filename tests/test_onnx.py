"""The ONNX engine: exports match torch or are refused, both engines agree, sorting needs no torch, fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from footsort.errors import FootsortError  # noqa: E402
from footsort.model import engine, onnx_export  # noqa: E402
from tests.helpers_model import make_image_folder, tiny_meta, tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _save_tiny(path: Path, seed: int = 0, **meta_changes):
    import torch

    from footsort.model import checkpoint

    model = tiny_model()
    if seed:
        torch.manual_seed(seed)
        for p in model.head.parameters():
            p.data.normal_()
    meta = replace(tiny_meta(model), **meta_changes)
    checkpoint.save(model, meta, path)
    return path, meta


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny random-weight model (temperature != 1, test-time flip on) with its export beside it, and photos."""
    root = tmp_path_factory.mktemp("onnx")
    path, meta = _save_tiny(root / "m.safetensors", seed=3, temperature=1.7, recipe={"tta_flip": True})
    report = onnx_export.export(path)
    photos = sorted(make_image_folder(root / "photos", per_class=4).rglob("*.jpg"))
    return {"path": path, "meta": meta, "report": report, "photos": photos, "root": root}


def test_export_is_written_beside_the_model_and_matches_torch(exported: dict) -> None:
    report = exported["report"]
    assert report.path == exported["path"].with_suffix(".onnx") and report.path.is_file()
    assert report.max_abs_diff <= onnx_export.ATOL and report.inputs == onnx_export.SYNTHETIC
    assert onnx_export.find_export(exported["path"]) == report.path


def test_both_engines_give_the_same_predictions(exported: dict) -> None:
    from footsort.model.classifier import Classifier
    from footsort.model.onnx_engine import OnnxClassifier

    fast = OnnxClassifier.load(exported["path"])
    slow = Classifier.load(exported["path"], device="cpu", fuse="never")
    assert (fast.classes, fast.version, fast.input_size) == (slow.classes, slow.version, slow.input_size)
    assert fast.tta_flip and fast.engine == "onnx" and slow.engine == "torch"
    photos = [*exported["photos"], exported["root"] / "missing.jpg"]
    a, b = list(fast.iter_paths(photos, batch_size=3)), list(slow.iter_paths(photos, batch_size=3))
    assert [p for p, _ in a] == [p for p, _ in b] == photos
    assert isinstance(a[-1][1], FootsortError) and isinstance(b[-1][1], FootsortError)
    for (_, x), (_, y) in zip(a[:-1], b[:-1]):
        assert x.label == y.label and x.model_version == y.model_version and x.path == y.path
        assert all(abs(x.probabilities[k] - y.probabilities[k]) < 1e-5 for k in x.probabilities)
        assert x.confidence == max(x.probabilities.values())


def test_a_batch_run_in_parts_and_pixels_prepared_ahead_give_the_same_answers(exported: dict,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from footsort.model import onnx_engine
    from footsort.model.imaging import load_rgb
    from footsort.model.presets import Preprocess

    clf = onnx_engine.OnnxClassifier.load(exported["path"])
    images = [load_rgb(p) for p in exported["photos"]] + [Image.new("RGB", (90, 40), (200, 30, 30))]
    monkeypatch.setattr(onnx_engine, "cpu_cores", lambda: 1)  # one run for the whole batch
    whole = clf.predict_images(images)
    monkeypatch.setattr(onnx_engine, "cpu_cores", lambda: 3)  # three runs side by side
    prepared = [clf.prepare(im) for im in images]  # as the pipeline's loading threads do
    parts = clf.predict_images(prepared)
    assert [p.label for p in parts] == [p.label for p in whole]
    assert all(abs(a.probabilities[k] - b.probabilities[k]) < 1e-6 for a, b in zip(parts, whole) for k in a.probabilities)
    assert (clf.to_array(prepared[0]) == clf.to_array(prepared[0].copy())).all()  # the same numbers, made ahead
    clf.preprocess = Preprocess(size=clf.input_size, fit="squash")  # another model's settings: made again
    assert clf.to_array(prepared[0]) is not getattr(prepared[0], onnx_engine.PIXELS)[1]


def test_a_mismatching_export_is_refused_and_nothing_is_written(exported: dict, tmp_path: Path) -> None:
    path, _ = _save_tiny(tmp_path / "m.safetensors")
    with pytest.raises(onnx_export.ExportRefused, match="differ from torch"):
        onnx_export.export(path, atol=-1.0, rtol=0.0)  # no difference can pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no .onnx, no temp file


def test_an_export_of_a_replaced_model_file_is_never_used(tmp_path: Path) -> None:
    from footsort.model.onnx_engine import NoExport, OnnxClassifier

    path, _ = _save_tiny(tmp_path / "m.safetensors")
    onnx_export.export(path)
    _save_tiny(path, seed=5)  # a new model under the same name: the old export no longer fits it
    assert path.with_suffix(".onnx").is_file() and onnx_export.find_export(path) is None
    with pytest.raises(NoExport):
        OnnxClassifier.load(path)
    assert engine.engine_name(engine.load_classifier(path, engine="auto", device="cpu")) == "torch"


def test_engine_onnx_by_name_makes_a_missing_export_once_into_the_cache(tmp_path: Path) -> None:
    from footsort.system import paths

    path, _ = _save_tiny(tmp_path / "m.safetensors")
    clf = engine.load_classifier(path, engine="onnx")
    assert engine.engine_name(clf) == "onnx" and clf.onnx_path.parent == paths.cache_dir() / "onnx"
    assert not path.with_suffix(".onnx").exists()  # a file footsort does not own is left alone
    assert engine.engine_name(engine.load_classifier(path, device="cpu")) == "onnx"  # auto finds it from now on


def test_auto_falls_back_to_torch_when_onnxruntime_is_missing(exported: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    choice = engine.choose("auto", "auto")
    assert choice.engine == "torch" and "onnxruntime is not installed" in choice.reason
    assert engine.engine_name(engine.load_classifier(exported["path"])) == "torch"
    with pytest.raises(FootsortError, match="onnxruntime is not installed"):
        engine.load_classifier(exported["path"], engine="onnx")
    assert not onnx_export.can_export()
    assert onnx_export.export_if_available(exported["path"]) is None  # the train/retrain hook: silently nothing


def test_auto_keeps_torch_on_an_nvidia_gpu_and_for_an_explicit_gpu_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "nvidia_gpu_present", lambda: False)
    assert engine.choose("auto", "auto").engine == "onnx"  # CPU only, onnxruntime installed
    assert engine.choose("auto", "cuda").engine == "torch" and engine.choose("auto", "mps").engine == "torch"
    monkeypatch.setattr(engine, "nvidia_gpu_present", lambda: True)
    monkeypatch.setattr(engine, "onnxruntime_cuda", lambda: False)
    gpu = engine.choose("auto", "auto")
    assert gpu.engine == "torch" and "NVIDIA GPU" in gpu.reason
    assert engine.choose("auto", "cpu").engine == "onnx"
    monkeypatch.setattr(engine, "onnxruntime_cuda", lambda: True)  # onnxruntime-gpu
    assert engine.choose("auto", "auto").providers[0] == "CUDAExecutionProvider"
    with pytest.raises(FootsortError, match="mps"):
        engine.choose("onnx", "mps")


def test_the_engine_config_key_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.errors import ConfigError
    from footsort.system import config

    assert config.load().model.engine == "auto"
    monkeypatch.setenv("FOOTSORT_MODEL_ENGINE", "torch")
    assert config.load().model.engine == "torch"
    monkeypatch.setenv("FOOTSORT_MODEL_ENGINE", "tensorrt")
    with pytest.raises(ConfigError, match="model.engine"):
        config.load()


def test_classify_and_doctor_name_the_engine(exported: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.cli import main
    from footsort.system import doctor
    from footsort.system.config import Config, ModelSection

    photo = str(exported["photos"][0])
    runs = {e: CliRunner().invoke(main, ["classify", "--json", "--engine", e, "--model", str(exported["path"]), photo])
            for e in ("onnx", "torch")}
    got = {e: json.loads(r.output.strip().splitlines()[-1]) for e, r in runs.items()}
    assert all(r.exit_code == 0 for r in runs.values()) and got["onnx"]["label"] == got["torch"]["label"]
    assert abs(got["onnx"]["confidence"] - got["torch"]["confidence"]) < 1e-3
    cfg = Config(model=ModelSection(path=str(exported["path"]), device="cpu"))  # auto on a GPU machine: torch
    (check,) = doctor.check_engine(doctor.Machine(cfg))
    assert check.status == "ok" and check.detail.startswith("onnx:") and str(exported["report"].path) in check.detail
    (torch_check,) = doctor.check_engine(doctor.Machine(replace(cfg, model=replace(cfg.model, engine="torch"))))
    assert torch_check.detail.startswith("torch:")


def test_hot_reload_switches_between_onnx_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train/retrain store versions through registry.add_version, which exports them; the daemon follows."""
    from footsort.model import registry
    from footsort.sorting.pipeline import load_classifier
    from footsort.sorting.reloading import follow_in_use
    from footsort.system import config

    metas = []
    for _ in range(2):
        model = tiny_model()
        meta = tiny_meta(model)
        path = registry.add_version(model, meta)
        assert path.with_suffix(".onnx").is_file()
        metas.append(meta)
    registry.use(metas[0].version)
    monkeypatch.setenv("FOOTSORT_MODEL_DEVICE", "cpu")  # auto on a GPU machine keeps torch
    cfg = config.load()
    daemon_model = follow_in_use(load_classifier(cfg, fuse="background"), cfg)
    assert daemon_model.current.engine == "onnx" and daemon_model.version == metas[0].version
    registry.use(metas[1].version)
    fresh = daemon_model.reload_if_changed()
    assert fresh.engine == "onnx" and fresh.version == metas[1].version == daemon_model.version


BLOCK_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is blocked: the light path must not import it")
        return None
sys.meta_path.insert(0, _NoTorch())
from footsort.cli import main
sys.argv = ["footsort", *sys.argv[1:]]
main()
"""


def test_sort_and_classify_run_with_torch_unimportable(exported: dict, tmp_path: Path) -> None:
    from tests.fakes import write_image

    inbox = tmp_path / "inbox"
    for i, colour in enumerate([(230, 20, 20), (20, 20, 230), (120, 120, 120)]):
        write_image(inbox / f"p{i}.jpg", colour, tag=i)
    (inbox / "broken.jpg").write_bytes(b"not a photo")
    env = {**os.environ, "PYTHONPATH": str(REPO), "FOOTSORT_MODEL_PATH": str(exported["path"]),
           "FOOTSORT_MODEL_DEVICE": "cpu"}  # model.engine stays auto (on a GPU machine auto would keep torch)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], env=env, capture_output=True, text=True,
                              timeout=300)

    assert "blocked" in run("train", str(inbox)).stderr  # the blocker works: training needs torch
    classified = run("classify", "--json", str(inbox / "p0.jpg"))
    assert classified.returncode == 0, classified.stderr
    assert json.loads(classified.stdout)["model_version"] == exported["meta"].version
    sorted_ = run("sort", str(inbox))
    assert sorted_.returncode == 0, sorted_.stderr
    moved = sorted(p.relative_to(inbox).parts[0] for p in inbox.rglob("*.jpg") if p.parent != inbox)
    assert len(moved) == 4 and moved.count("failed") == 1, (moved, sorted_.stderr)


@pytest.mark.real
def test_the_shipped_export_gives_the_shipped_models_labels() -> None:
    """Once bench/export_default_onnx.py has written footsort/data/default.onnx for the current default."""
    from footsort.model import registry
    from footsort.model.classifier import Classifier
    from footsort.model.onnx_engine import OnnxClassifier
    from tests.conftest import STREET_DATA

    shipped = registry.shipped_model_path()
    if onnx_export.find_export(shipped) != shipped.with_suffix(".onnx"):
        pytest.skip("no export of the current shipped model beside it (run bench/export_default_onnx.py)")
    photos = sorted(STREET_DATA.glob("*/*.jpg"))[::10]
    fast = dict(OnnxClassifier.load(shipped).iter_paths(photos))
    slow = dict(Classifier.load(shipped, device="cpu").iter_paths(photos))
    assert [fast[p].label for p in photos] == [slow[p].label for p in photos]
    assert max(abs(fast[p].confidence - slow[p].confidence) for p in photos) < 1e-4
