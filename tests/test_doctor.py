"""doctor: each check finds its problem and names the fix; a crashing check does not stop the others."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from footsort.system import doctor, paths
from footsort.system.config import (
    Config,
    ModelSection,
    PluginsSection,
    SortSection,
    WatchSection,
)
from footsort.system.doctor import Check, Machine
from footsort.system.service import RunResult


def inotify(tmp_path: Path, watches: int, instances: int = 128) -> Path:
    d = tmp_path / "inotify"
    d.mkdir(exist_ok=True)
    (d / "max_user_watches").write_text(f"{watches}\n")
    (d / "max_user_instances").write_text(f"{instances}\n")
    return d


def test_inotify_limits(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    for i in range(30):
        (inbox / f"d{i}").mkdir(parents=True)
    cfg = replace(Config(), sort=SortSection(recursive=True))
    low = doctor.check_inotify(Machine(cfg, inboxes=(inbox,), platform="linux", inotify_dir=inotify(tmp_path, 4000, 64)))
    assert [c.status for c in low] == ["warn", "warn"]
    assert "max_user_watches = 4000" in low[0].detail and "34 watched folder" in low[0].detail
    assert "fs.inotify.max_user_watches=524288" in low[0].fix and "sysctl" in low[0].fix
    ok = doctor.check_inotify(Machine(cfg, inboxes=(inbox,), platform="linux", inotify_dir=inotify(tmp_path, 524288)))
    assert [c.status for c in ok] == ["ok"]
    assert doctor.check_inotify(Machine(cfg, platform="darwin"))[0].status == "info"
    polled = replace(cfg, watch=WatchSection(poll=5))
    assert "polling" in doctor.check_inotify(Machine(polled, platform="linux"))[0].detail
    missing = doctor.check_inotify(Machine(cfg, platform="linux", inotify_dir=tmp_path / "none"))
    assert missing[0].status == "warn" and "--poll" in missing[0].fix


def test_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    cfg = replace(Config(), sort=SortSection(output=str(out)))
    results = doctor.check_folders(Machine(cfg, inboxes=(inbox, tmp_path / "gone")))
    assert [c.status for c in results] == ["ok", "fail", "fail"]
    assert results[1].fix == f"mkdir -p {tmp_path / 'gone'}" and results[2].name == "output"
    out.mkdir()
    monkeypatch.setattr(doctor.os, "access", lambda p, mode: Path(p) != out)
    locked = doctor.check_folders(Machine(cfg, inboxes=(inbox,)))
    assert locked[1].status == "fail" and locked[1].fix == f"chmod u+rwx {out}"
    assert doctor.check_folders(Machine(Config()))[0].status == "info"


def test_config_problem_is_a_failed_check_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("[sort]\nthreshold = 7\n")
    m = doctor.machine()
    (c,) = doctor.check_config(m)
    assert c.status == "fail" and "sort.threshold = 7" in c.detail and "config init --force" in c.fix
    paths.config_file().unlink()
    assert doctor.check_config(doctor.machine())[0].status == "ok"


def test_model_check_reports_version_and_accuracy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from footsort.model import checkpoint

    missing = replace(Config(), model=ModelSection(path=str(tmp_path / "none.safetensors")))
    (c,) = doctor.check_model(Machine(missing))
    assert c.status == "fail" and "does not exist" in c.detail and "footsort models use" in c.fix
    meta = checkpoint.ModelVersion(version="20260101-000000-abcdef", classes=("sapatos", "tsinelas"), arch={},
                                   preprocess={}, metrics={"val_accuracy": 0.9531, "validation_n": 64})
    monkeypatch.setattr(checkpoint, "read_metadata", lambda path: meta)
    (c,) = doctor.check_model(Machine(missing))
    assert c.status == "ok" and "20260101-000000-abcdef (sapatos, tsinelas)" in c.detail
    assert "0.9531 (n=64)" in c.detail  # an accuracy always comes with the number of photos behind it
    monkeypatch.setattr(checkpoint, "read_metadata", lambda path: replace(meta, metrics={}))
    assert "accuracy unknown" in doctor.check_model(Machine(missing))[0].detail


def test_backbone_configured_but_missing(tmp_path: Path) -> None:
    cfg = replace(Config(), model=ModelSection(backbone_weights=str(tmp_path / "w.pth")))
    (c,) = doctor.check_backbone(Machine(cfg))
    assert c.status == "fail" and "FOOTSORT_BACKBONE_WEIGHTS" in c.fix
    (tmp_path / "w.pth").write_bytes(b"x")
    assert doctor.check_backbone(Machine(cfg))[0].status == "ok"


def test_device_asked_for_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = replace(Config(), model=ModelSection(device="cuda"))
    results = {c.name: c for c in doctor.check_torch(Machine(cfg))}
    assert results["torch"].status == "ok" and torch.__version__ in results["torch"].detail
    assert results["device"].status == "fail" and 'model.device = "auto"' in results["device"].fix


def test_service_states(tmp_path: Path) -> None:
    home = tmp_path / "home"
    m = Machine(Config(), platform="linux", home=home, environ={"USER": "nobody-here"},
                runner=lambda argv: RunResult(0))
    assert doctor.check_service(m)[0].status == "info"
    unit = home / ".config" / "systemd" / "user" / "footsort.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    running = doctor.check_service(m)
    assert running[0].status == "ok" and running[1].fix == "loginctl enable-linger nobody-here"
    stopped = doctor.check_service(replace(m, runner=lambda argv: RunResult(3)))
    assert stopped[0].status == "warn" and "footsort service logs" in stopped[0].fix
    assert doctor.check_service(replace(m, platform="win32"))[0].status == "info"


def test_plugin_problems_are_failures() -> None:
    cfg = replace(Config(), plugins=PluginsSection(enabled=("xmp", "nosuch")))
    results = doctor.check_plugins(Machine(cfg))
    assert [(c.status, c.detail.split(":")[0]) for c in results] == [("ok", "xmp starts"), ("fail", "nosuch")]


def test_run_contains_a_crashing_check_and_formats_fixes() -> None:
    def check_boom(m: Machine) -> list[Check]:
        raise RuntimeError("kaput")

    def check_fine(m: Machine) -> list[Check]:
        return [Check("thing", "warn", "is low", "raise it")]

    results = doctor.run(Machine(Config()), [check_boom, check_fine])
    assert results[0] == Check("boom", "fail", "the check itself failed: RuntimeError('kaput')", "please report this")
    text = doctor.format_results(results)
    assert "warn  thing        is low" in text and "fix: raise it" in text and "2 problem(s) found" in text
