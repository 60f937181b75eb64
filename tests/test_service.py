"""Service: the unit and plist are rendered correctly, installed into a temporary HOME, with an injected runner."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest

from footsort.errors import FootsortError
from footsort.system import service
from footsort.system.service import RunResult, ServiceSpec


class FakeRunner:
    """Records commands; answers from a script of return codes (default 0)."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.codes = codes or {}

    def __call__(self, argv: tuple[str, ...]) -> RunResult:  # type: ignore[override]
        self.calls.append(tuple(argv))
        code = next((c for key, c in self.codes.items() if key in " ".join(argv)), 0)
        return RunResult(code, "Failed to connect to bus: No medium found" if code else "ok")


def spec(tmp_path: Path, inboxes: tuple[Path, ...] | None = None, env: tuple = ()) -> ServiceSpec:
    inboxes = inboxes or (tmp_path / "Pictures" / "in box",)
    command = service.watch_command(service.footsort_executable(), inboxes, output="/lib/100% $HOME", poll=2.5, recursive=True)
    return ServiceSpec(command=command, inboxes=inboxes, log_dir=tmp_path / "logs", environment=env)


def test_executable_is_absolute_and_runnable() -> None:
    exe = service.footsort_executable()
    assert Path(exe[0]).is_absolute() and os.access(exe[0], os.X_OK)


def test_watch_command_flags() -> None:
    cmd = service.watch_command(("/x/footsort",), [Path("/a"), Path("/b")], output="/o", poll=5, recursive=True, quiet=True)
    assert cmd == ("/x/footsort", "--quiet", "watch", "/a", "/b", "--output", "/o", "--poll", "5", "--recursive")
    assert service.watch_command(("/x/footsort",), [Path("/a")], ui=True) == ("/x/footsort", "watch", "/a", "--ui")


def test_unit_has_the_policy_and_quotes_arguments(tmp_path: Path) -> None:
    unit = service.render_unit(spec(tmp_path, env=(("FOOTSORT_CONFIG", "/my conf/c.toml"),)))
    lines = unit.splitlines()
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start == (f"ExecStart={service.footsort_executable()[0]} watch \"{tmp_path}/Pictures/in box\" "
                          '--output "/lib/100%% $$HOME" --poll 2.5 --recursive')
    for line in ("Restart=on-failure", "Nice=10", "IOSchedulingClass=idle", "StandardError=journal",
                 "WantedBy=default.target", 'Environment="FOOTSORT_CONFIG=/my conf/c.toml"', "Environment=FOOTSORT_LOG_FILE=false"):
        assert line in lines
    assert "${" not in unit


def test_systemd_quote() -> None:
    assert service.systemd_quote("/plain/path") == "/plain/path"
    assert service.systemd_quote('a "b"\\c') == '"a \\"b\\"\\\\c"'
    assert service.systemd_quote("") == '""'


def _verify(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    return subprocess.run(["systemd-analyze", "--user", "verify", str(path)], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing: not a systemd system")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    inbox = tmp_path / "Pictures" / "in box"
    inbox.mkdir(parents=True)
    unit = tmp_path / "footsort.service"
    unit.write_text(service.render_unit(spec(tmp_path, (inbox,))))
    result = _verify(unit, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "footsort.service" not in result.stdout + result.stderr, result.stdout + result.stderr
    broken = tmp_path / "broken.service"  # the check can fail: a bad value is reported
    broken.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "restart specifier" in _verify(broken, tmp_path).stderr


def test_plist_parses_with_plistlib(tmp_path: Path) -> None:
    s = spec(tmp_path, (tmp_path / "a&b <inbox>",), env=(("FOOTSORT_HOME", "/h & h"),))
    data = plistlib.loads(service.render_plist(s).encode())
    assert data["Label"] == service.LAUNCHD_LABEL
    assert tuple(data["ProgramArguments"]) == s.command
    assert str(tmp_path / "a&b <inbox>") in data["ProgramArguments"]
    assert data["RunAtLoad"] is True and data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["StandardOutPath"] == str(tmp_path / "logs" / "launchd.out.log")
    assert data["StandardErrorPath"] == str(tmp_path / "logs" / "launchd.err.log")
    assert data["EnvironmentVariables"] == {"PYTHONUNBUFFERED": "1", "FOOTSORT_HOME": "/h & h"}
    assert data["LowPriorityIO"] is True and data["Nice"] == 10


def test_install_and_uninstall_linux_in_a_temporary_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = spec(tmp_path)
    runner = FakeRunner()
    lines: list[str] = []
    plan = service.plan_install("linux", s, home, 1000, {"USER": "ana"}, linger=False)
    assert any("loginctl enable-linger ana" in w for w in plan.warnings)
    service.apply(plan, runner, echo=lines.append)
    unit = home / ".config" / "systemd" / "user" / "footsort.service"
    assert unit.read_text() == service.render_unit(s)
    assert s.inboxes[0].is_dir()  # the missing inbox was created
    assert runner.calls == [("systemctl", "--user", "daemon-reload"), ("systemctl", "--user", "enable", "footsort.service"),
                            ("systemctl", "--user", "restart", "footsort.service")]
    assert f"wrote {unit}" in lines and any(line.startswith("warning: user services stop") for line in lines)

    runner = FakeRunner({"disable": 5})  # already stopped: fine
    service.apply(service.plan_uninstall("linux", home, 1000, {}), runner, echo=lines.append)
    assert not unit.exists() and runner.calls[0] == ("systemctl", "--user", "disable", "--now", "footsort.service")


def test_xdg_config_home_is_honoured(tmp_path: Path) -> None:
    assert service.unit_path(tmp_path, {"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/systemd/user/footsort.service")


def test_dry_run_writes_and_runs_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    runner = FakeRunner()
    lines: list[str] = []
    service.apply(service.plan_install("linux", spec(tmp_path), home, 1000, {}), runner, dry_run=True, echo=lines.append)
    assert runner.calls == [] and not home.exists() and not (tmp_path / "Pictures").exists()
    text = "\n".join(lines)
    assert f"would write {home}/.config/systemd/user/footsort.service:" in text
    assert "    Restart=on-failure" in text and "would run: systemctl --user enable footsort.service" in text


def test_a_failing_systemctl_explains_itself(tmp_path: Path) -> None:
    with pytest.raises(FootsortError, match="daemon-reload` failed.*needs a running user session"):
        service.apply(service.plan_install("linux", spec(tmp_path), tmp_path / "home", 1000, {}),
                      FakeRunner({"daemon-reload": 1}), echo=lambda _: None)


def test_install_macos_bootstraps_and_warns_about_full_disk_access(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = spec(tmp_path, (home / "Downloads" / "shoes", home / "Pictures" / "in"))
    plan = service.plan_install("darwin", s, home, 501, {})
    assert len(plan.warnings) == 1 and "Full Disk Access" in plan.warnings[0]
    assert str(home / "Downloads" / "shoes") in plan.warnings[0] and "Pictures" not in plan.warnings[0]
    runner = FakeRunner({"bootout": 3})  # not loaded yet: ignored
    service.apply(plan, runner, echo=lambda _: None)
    plist = home / "Library" / "LaunchAgents" / "local.footsort.plist"
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"] == list(s.command)
    assert ("launchctl", "bootstrap", "gui/501", str(plist)) in runner.calls
    assert (tmp_path / "logs").is_dir()
    assert "Full Disk Access" in service.plan_install("darwin", spec(tmp_path, (Path("/Volumes/NAS/in"),)), home, 501, {}).warnings[0]
    service.apply(service.plan_uninstall("darwin", home, 501, {}), FakeRunner(), echo=lambda _: None)
    assert not plist.exists()


def test_unsupported_platform() -> None:
    with pytest.raises(FootsortError, match="Linux \\(systemd\\) and macOS \\(launchd\\), not win32"):
        service.current_platform("win32")


def test_status_and_logs_commands(tmp_path: Path) -> None:
    assert service.logs_command("linux", tmp_path, 20, True) == ("journalctl", "--user", "-u", "footsort.service", "-n", "20", "--no-pager", "-f")
    assert service.logs_command("darwin", tmp_path, 5)[-2:] == (str(tmp_path / "footsort.log"), str(tmp_path / "launchd.err.log"))
    assert service.is_active("linux", 1, FakeRunner()) is True
    assert service.is_active("linux", 1, FakeRunner({"is-active": 3})) is False
    assert service.is_active("darwin", 1, lambda argv: RunResult(0, "state = running")) is True
