"""`footsort config | doctor | service` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from footsort.cli import main
from footsort.commands import system_cmds
from footsort.system import config, paths
from footsort.system.service import RunResult


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return h


def invoke(*args: str, obj: dict | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def test_every_command_has_help_with_an_example() -> None:
    def walk(cmd: click.Command, path: list[str]) -> None:
        result = invoke(*path, "--help")
        assert result.exit_code == 0 and "Example" in result.output, path
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])

    for command in system_cmds.COMMANDS:
        walk(command, [command.name or ""])


def test_config_path() -> None:
    assert invoke("config", "path").output.strip() == str(paths.config_file())
    out = invoke("config", "path", "--all").output
    assert f"logs    {paths.log_dir()}" in out and f"models  {paths.models_dir()}" in out


def test_config_init_edit_show() -> None:
    result = invoke("config", "init")
    assert result.exit_code == 0 and "wrote" in result.output
    text = paths.config_file().read_text()
    assert "[plugins.xmp]" in text and 'sidecar = "photo.jpg.xmp"' in text and "FOOTSORT_SORT_THRESHOLD" in text
    assert config.load() == config.load(environ={})  # the file holds only defaults (+ plugin tables)
    again = invoke("config", "init")
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    paths.config_file().write_text(text.replace("threshold = 0.885\n", "threshold = 0.95\n"))
    assert config.load().sort.threshold == 0.95
    shown = CliRunner().invoke(main, ["config", "show"], env={"FOOTSORT_SORT_BATCH_SIZE": "2"})
    assert "threshold = 0.95" in shown.output and "batch_size = 2" in shown.output
    assert "# from the environment: FOOTSORT_SORT_BATCH_SIZE=2" in shown.output
    forced = invoke("config", "init", "--force")
    assert forced.exit_code == 0 and "threshold = 0.95" in Path(str(paths.config_file()) + ".bak").read_text()
    assert config.load().sort.threshold == 0.885  # init --force wrote the defaults again


def test_bad_config_is_one_line_with_exit_2_and_init_force_still_works() -> None:
    paths.config_file().parent.mkdir(parents=True)
    paths.config_file().write_text("[sort]\nthreshhold = 0.9\n")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown config key sort.threshhold") and result.output.count("\n") == 1
    assert invoke("config", "init", "--force").exit_code == 0


def test_service_install_dry_run_prints_the_unit_and_writes_nothing(home: Path) -> None:
    calls: list = []
    result = invoke("service", "install", "--dry-run", str(home / "Pictures" / "inbox"),
                    obj={"platform": "linux", "service_runner": calls.append})
    assert result.exit_code == 0, result.output
    assert f"would write {home}/.config/systemd/user/footsort.service:" in result.output
    assert f"watch {home}/Pictures/inbox" in result.output and "Restart=on-failure" in result.output
    assert "would run: systemctl --user enable footsort.service" in result.output
    assert calls == [] and not (home / ".config").exists() and not (home / "Pictures").exists()


def test_service_install_status_logs_uninstall(home: Path) -> None:
    calls: list = []

    def runner(argv):  # type: ignore[no-untyped-def]
        calls.append(tuple(argv))
        return RunResult(0, "Active: active (running)" if "status" in argv else "line 1\nline 2")

    obj = {"platform": "linux", "service_runner": runner}
    inbox = home / "in"
    result = invoke("service", "install", str(inbox), "--output", str(home / "lib"), "--recursive", obj=obj)
    assert result.exit_code == 0, result.output
    unit = (home / ".config" / "systemd" / "user" / "footsort.service").read_text()
    assert f"watch {inbox} --output {home / 'lib'} --recursive" in unit and inbox.is_dir()
    assert ("systemctl", "--user", "enable", "footsort.service") in calls
    status = invoke("service", "status", obj=obj)
    assert status.exit_code == 0 and "Active: active (running)" in status.output and "running" in status.output
    logs = invoke("service", "logs", "-n", "2", obj=obj)
    assert logs.output == "line 1\nline 2\n" and calls[-1][:4] == ("journalctl", "--user", "-u", "footsort.service")
    assert invoke("service", "uninstall", obj=obj).exit_code == 0
    assert not (home / ".config" / "systemd" / "user" / "footsort.service").exists()
    gone = invoke("service", "status", obj=obj)
    assert gone.exit_code == 3 and "not installed" in gone.output


def test_service_install_needs_an_inbox_and_a_supported_system(home: Path) -> None:
    result = CliRunner().invoke(main, ["service", "install"], obj={"platform": "linux"})
    assert result.exit_code == 1 and "name at least one inbox" in result.output
    result = CliRunner().invoke(main, ["service", "install", "/x"], obj={"platform": "win32"})
    assert result.exit_code == 1 and "not win32" in result.output


def test_service_install_macos_dry_run(home: Path) -> None:
    result = invoke("service", "install", "--dry-run", str(home / "Downloads"), obj={"platform": "darwin"})
    assert "Full Disk Access" in result.output and "<key>RunAtLoad</key>" in result.output
    assert "would run: launchctl bootstrap gui/" in result.output


def test_service_install_ui_dry_run_serves_the_review_page(home: Path) -> None:
    linux = invoke("service", "install", "--ui", "--dry-run", str(home / "inbox"), obj={"platform": "linux"})
    assert linux.exit_code == 0, linux.output
    exec_start = next(line.strip() for line in linux.output.splitlines() if line.strip().startswith("ExecStart="))
    assert exec_start.endswith(f"watch {home}/inbox --ui")
    assert not (home / ".config").exists()
    mac = invoke("service", "install", "--ui", "--dry-run", str(home / "inbox"), obj={"platform": "darwin"})
    assert "<string>watch</string>" in mac.output and "<string>--ui</string>" in mac.output
    plain = invoke("service", "install", "--dry-run", str(home / "inbox"), obj={"platform": "linux"})
    assert "--ui" not in plain.output


def test_service_with_ui_says_where_the_page_is(home: Path) -> None:
    import os
    import socket

    from footsort.ui import runtime

    obj = {"platform": "linux", "service_runner": lambda argv: RunResult(0, "Active: active (running)")}
    installed = invoke("service", "install", "--ui", str(home / "inbox"), obj=obj)
    assert installed.exit_code == 0 and "`footsort ui --url` prints its address" in installed.output
    assert (home / ".config/systemd/user/footsort.service").read_text().count(" --ui") == 1
    with socket.socket() as s:  # the service's page: listening, its runtime file written
        s.bind(("127.0.0.1", 0))
        s.listen()
        address = f"http://127.0.0.1:{s.getsockname()[1]}/"
        runtime.write(runtime.PageInfo(address + "?token=abc", address, os.getpid(), "watch", (str(home / "inbox"),)))
        status = invoke("service", "status", obj=obj)
    assert status.exit_code == 0 and f"review page (footsort watch, PID {os.getpid()}): {address}?token=abc" in status.output


def test_doctor_through_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from footsort.system import doctor

    monkeypatch.setattr(doctor, "CHECKS", (doctor.check_config, doctor.check_folders))
    ok = invoke("doctor", str(tmp_path))
    assert ok.exit_code == 0 and "ok    inbox" in ok.output and "all good" in ok.output
    bad = CliRunner().invoke(main, ["doctor", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and f"fix: mkdir -p {tmp_path / 'missing'}" in bad.output
