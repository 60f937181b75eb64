"""The light install (requirements/light.txt, then footsort with --no-deps): its list is pyproject's minus the
learning packages, and with only those packages importable, sorting works and the learning commands say in one
line that they need torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from footsort.errors import TORCH_INSTALL, TorchMissing
from tests.fakes import write_image

REPO = Path(__file__).resolve().parents[1]
LIGHT = REPO / "requirements" / "light.txt"
# pyproject dependencies the light install leaves out, and why; anything else pyproject adds must go into
# requirements/light.txt too (or here, with its reason)
LEARNING_ONLY = {
    "torch": "train, retrain, evaluate, making ONNX exports",
    "torchvision": "training's augmentation and the MobileNetV2 backbone",
    "matplotlib": "evaluate/train --report plots",
}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, str]:
    """(canonical name, the rest without spaces): `pillow-heif >= 0.16` -> ('pillow-heif', '>=0.16')."""
    name = re.match(r"[A-Za-z0-9._-]+", line.strip()).group(0)  # type: ignore[union-attr]
    return _canon(name), re.sub(r"\s+", "", line.strip()[len(name):]).replace('"', "'")


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _light() -> dict[str, str]:
    lines = [ln.split(" #")[0].strip() for ln in LIGHT.read_text().splitlines()]
    return dict(_requirement(ln) for ln in lines if ln and not ln.startswith("#"))


def test_the_light_requirements_are_pyprojects_minus_the_learning_packages_plus_onnxruntime() -> None:
    project = _pyproject()
    deps = dict(_requirement(r) for r in project["dependencies"])
    onnx_extra = dict(_requirement(r) for r in project["optional-dependencies"]["onnx"])
    light = _light()
    assert set(LEARNING_ONLY) <= set(deps), "LEARNING_ONLY names a package pyproject no longer has"
    expected = {n: spec for n, spec in deps.items() if n not in LEARNING_ONLY}
    expected["onnxruntime"] = onnx_extra["onnxruntime"]  # the same bound as the extra's; onnx itself needs torch
    assert light == expected, "requirements/light.txt and pyproject.toml differ: change both"


def _light_site(tmp_path: Path) -> Path:
    """A folder that holds (as links) only the installed distributions light.txt names and what they require."""
    wanted = [n for n, spec in _light().items() if "python_version<'3.11'" not in spec or sys.version_info < (3, 11)]
    for name in wanted:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{name} (requirements/light.txt) is not installed")
    seen: set[str] = set()
    while wanted:
        name = _canon(wanted.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # required on another platform only (its marker is not evaluated)
            continue
        seen.add(name)
        wanted += [_requirement(r)[0] for r in dist.requires or [] if "extra" not in r]  # markers: over-inclusive
    site = tmp_path / "light-site"
    site.mkdir()
    for name in seen:
        dist = metadata.distribution(name)
        root = Path(dist.locate_file(""))
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}:
            if (root / top).exists() and not (site / top).exists():
                (site / top).symlink_to(root / top)
    return site


@pytest.fixture
def light_python(tmp_path: Path):
    """Run `python -S -c CODE` (or `footsort ARGS`) seeing only the standard library, the light packages and the
    repository: torch, torchvision, matplotlib and the test extras are absent, as in a light install."""
    from footsort.model import onnx_export, registry

    shipped = registry.shipped_model_path()
    if onnx_export.find_export(shipped) != shipped.with_suffix(".onnx"):
        pytest.skip("no export of the current shipped model beside it (run bench/export_default_onnx.py)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(_light_site(tmp_path))]),
           "FOOTSORT_MODEL_DEVICE": "cpu"}  # auto on a GPU machine would keep torch

    def run(*args: str, code: str = "from footsort.cli import main; main(prog_name='footsort')") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", "-c", code, *args], env=env, capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    return run


def test_a_light_install_sorts_and_the_learning_commands_say_they_need_torch(light_python, tmp_path: Path) -> None:
    absent = light_python(code="import importlib.util as u; print([m for m in ('torch', 'torchvision', 'matplotlib', "
                               "'onnx') if u.find_spec(m)], bool(u.find_spec('onnxruntime')))")
    assert absent.stdout.split() == ["[]", "True"], absent.stderr
    inbox = tmp_path / "inbox"
    for i, colour in enumerate([(230, 20, 20), (20, 20, 230), (120, 120, 120), (20, 200, 20), (200, 200, 20)]):
        write_image(inbox / f"p{i}.jpg", colour, tag=i)
    (inbox / "broken.jpg").write_bytes(b"not a photo")

    classified = light_python("classify", str(inbox / "p0.jpg"))
    assert classified.returncode == 0, classified.stderr
    sorted_ = light_python("sort", "--threshold", "0", str(inbox))  # every photo into a class folder
    assert sorted_.returncode == 0, sorted_.stderr
    moved = [p for p in inbox.rglob("*.jpg") if p.parent != inbox]
    assert len(moved) == 6 and sum(p.parent.name == "failed" for p in moved) == 1, sorted_.stderr

    doctor = light_python("doctor").stdout.splitlines()
    torch_line = next(line for line in doctor if line.split()[1:2] == ["torch"])
    assert torch_line.startswith("info") and "only train, retrain and evaluate need it" in torch_line, doctor
    assert any(line.startswith("ok") and "engine       onnx:" in line for line in doctor), doctor

    labelled = next(p for p in moved if p.parent.name != "failed")
    other = next(c for c in ("sapatos", "tsinelas") if c != labelled.parent.name)
    (inbox / other).mkdir(exist_ok=True)
    labelled.rename(inbox / other / labelled.name)  # a correction, for retrain to learn from
    assert light_python("retrain", "--dry-run", str(inbox)).returncode == 0  # planning needs no torch
    for args in (("retrain", str(inbox)), ("train", str(inbox)), ("evaluate", str(inbox))):
        done = light_python(*args)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 1 and errors == [f"error: {TorchMissing.to('footsort ' + args[0])}"], done.stderr
        assert "Traceback" not in done.stderr and TORCH_INSTALL in errors[0]


def test_without_torch_doctor_fails_only_when_no_engine_can_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.model import engine
    from footsort.system import doctor
    from footsort.system.config import Config, ModelSection

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ModuleNotFoundError
    m = doctor.Machine(Config(model=ModelSection(device="cpu")))
    monkeypatch.setattr(engine, "describe", lambda *a: engine.Choice("onnx", "onnxruntime is installed"))
    (light,) = doctor.check_torch(m)
    assert light.status == "info" and TORCH_INSTALL in light.fix
    monkeypatch.setattr(engine, "describe", lambda *a: engine.Choice("torch", "onnxruntime is not installed"))
    (neither,) = doctor.check_torch(m)
    assert neither.status == "fail" and "nothing can sort" in neither.detail and neither.fix == TORCH_INSTALL


def test_auto_without_onnxruntime_or_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.model import engine

    monkeypatch.setattr(engine, "onnxruntime_installed", lambda: False)
    monkeypatch.setattr(engine, "torch_installed", lambda: False)
    with pytest.raises(TorchMissing, match="onnxruntime is not installed.*pip install torch torchvision"):
        engine.load_classifier(None, engine="auto", device="cpu")
