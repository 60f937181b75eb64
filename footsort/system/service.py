"""Run `footsort watch` at login: a systemd user unit (Linux) or a launchd agent (macOS).

Rendering and planning are pure (`render_unit`, `render_plist`, `plan_install`, `plan_uninstall`);
`apply` does the I/O and honours dry-run; the systemctl/launchctl runner is injectable for tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Callable, Literal, Mapping, Sequence
from xml.sax.saxutils import escape

from footsort.errors import FootsortError
from footsort.system import atomic
from footsort.system.safe_text import printable

UNIT_NAME = "footsort.service"
LAUNCHD_LABEL = "local.footsort"
PASS_THROUGH_ENV = ("FOOTSORT_HOME", "FOOTSORT_CONFIG")  # where the config lives, so the service uses the same one
# places macOS protects with TCC: an agent watching them needs Full Disk Access
PROTECTED_MAC_DIRS = ("Desktop", "Documents", "Downloads", "Library/Mobile Documents")

Platform = Literal["linux", "darwin"]


@dataclass(frozen=True)
class RunResult:
    """What a command returned: its exit status and its output (stdout and stderr)."""

    returncode: int
    output: str = ""


Runner = Callable[[Sequence[str]], RunResult]


def run_command(argv: Sequence[str]) -> RunResult:
    """Run a command and capture its output (127 when the program is missing)."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return RunResult(127, f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return RunResult(124, f"{' '.join(argv)}: no answer after 60 s")
    return RunResult(done.returncode, (done.stdout + done.stderr).strip())


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: the full `footsort watch` command line, its inboxes and extra environment."""

    command: tuple[str, ...]
    inboxes: tuple[Path, ...]
    log_dir: Path
    environment: tuple[tuple[str, str], ...] = ()
    ui: bool = False  # the command serves the review page (`watch --ui`)

    def __post_init__(self) -> None:
        """Refuse what a unit or plist line cannot hold: a newline in a path would start a new directive."""
        named = [*(("the inbox", str(p)) for p in self.inboxes), ("the log folder", str(self.log_dir)),
                 *((f"the environment variable {k}", f"{k}={v}") for k, v in self.environment),
                 *(("the service command", a) for a in self.command)]
        for what, text in named:
            if printable(text) != text:
                raise FootsortError(
                    f"{what} '{printable(text)}' holds a control character (a newline, tab or escape) or bytes that "
                    "are not UTF-8, which a service file cannot hold safely; rename it (or use another folder) "
                    "and run `footsort service install` again")


@dataclass(frozen=True)
class Step:
    """One command of a plan; `check=False` means its failure is expected and ignored."""

    argv: tuple[str, ...]
    check: bool = True


@dataclass(frozen=True)
class Plan:
    """Everything install/uninstall will do, computed before anything is done."""

    writes: tuple[tuple[Path, str], ...] = ()
    mkdirs: tuple[Path, ...] = ()
    removes: tuple[Path, ...] = ()
    steps: tuple[Step, ...] = ()
    warnings: tuple[str, ...] = ()
    done: tuple[str, ...] = field(default=())  # what to tell the person afterwards


def current_platform(platform: str = sys.platform) -> Platform:
    """linux or darwin; anything else is a FootsortError explaining the alternatives."""
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "darwin"
    raise FootsortError(f"`footsort service` supports Linux (systemd) and macOS (launchd), not {platform}; "
                        "start `footsort watch INBOX` from your system's scheduler instead")


def footsort_executable() -> tuple[str, ...]:
    """The footsort in use, absolute: the script beside this Python (a venv's bin/), else `python -m footsort.cli`."""
    beside = Path(sys.executable).absolute().parent / "footsort"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside),)
    return (str(Path(sys.executable).absolute()), "-m", "footsort.cli")


def watch_command(executable: Sequence[str], inboxes: Sequence[Path], output: str | None = None,
                  poll: float | None = None, recursive: bool = False, quiet: bool = False,
                  ui: bool = False) -> tuple[str, ...]:
    """The `footsort watch` command line the service runs (`ui`: it serves the review page too)."""
    argv = [*executable, *(["--quiet"] if quiet else []), "watch", *(str(p) for p in inboxes)]
    if output:
        argv += ["--output", output]
    if poll is not None:
        argv += ["--poll", f"{poll:g}"]
    if recursive:
        argv.append("--recursive")
    if ui:
        argv.append("--ui")
    return tuple(argv)


def unit_path(home: Path, environ: Mapping[str, str]) -> Path:
    """Where systemd looks for user units."""
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    return base / "systemd" / "user" / UNIT_NAME


def plist_path(home: Path) -> Path:
    """Where launchd looks for the person's agents."""
    return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def systemd_quote(arg: str) -> str:
    """One word of an ExecStart= or Environment= line: quoted when needed, `%` and `$` escaped."""
    if arg and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        quoted = arg
    else:
        quoted = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return quoted.replace("%", "%%").replace("$", "$$")


def _template(name: str) -> Template:
    from importlib import resources

    try:
        return Template(resources.files("footsort.service_templates").joinpath(name).read_text(encoding="utf-8"))
    except (FileNotFoundError, ModuleNotFoundError):
        raise FootsortError(f"service template {name} is missing; reinstall footsort") from None


def render_unit(spec: ServiceSpec) -> str:
    """The systemd user unit for `spec` (pure apart from reading the template)."""
    return _template("footsort.service").substitute(
        inboxes=", ".join(str(p) for p in spec.inboxes).replace("%", "%%"),
        exec_start=" ".join(systemd_quote(a) for a in spec.command),
        environment="\n".join(f"Environment={systemd_quote(f'{k}={v}')}" for k, v in spec.environment),
    )


def _plist_string(text: str, indent: int) -> str:
    return " " * indent + f"<string>{escape(text)}</string>"


def render_plist(spec: ServiceSpec) -> str:
    """The launchd agent plist for `spec` (stdout/stderr go to files in the log dir)."""
    env = [line for k, v in spec.environment for line in (f"    <key>{escape(k)}</key>", _plist_string(v, 4))]
    return _template("footsort.plist").substitute(
        label=LAUNCHD_LABEL,
        program_arguments="\n".join(_plist_string(a, 4) for a in spec.command),
        environment="\n".join(env),
        stdout_path=escape(str(spec.log_dir / "launchd.out.log")),
        stderr_path=escape(str(spec.log_dir / "launchd.err.log")),
    )


def _mac_warnings(inboxes: Sequence[Path], home: Path, python: str) -> list[str]:
    protected = [p for p in inboxes
                 if any(p == home / d or home / d in p.parents for d in PROTECTED_MAC_DIRS)
                 or (len(p.parts) > 1 and p.parts[1] == "Volumes")]
    if not protected:
        return []
    names = ", ".join(str(p) for p in protected)
    return [f"macOS only lets an agent read {names} with Full Disk Access: open System Settings > Privacy & Security > "
            f"Full Disk Access and add {python} (press Cmd+Shift+G to type the path), then `footsort service install` again"]


def _page_note(spec: ServiceSpec) -> tuple[str, ...]:
    if not spec.ui:
        return ()
    return ("review page: `footsort ui --url` prints its address with the token (a new token at every start)",)


def plan_install(platform: Platform, spec: ServiceSpec, home: Path, uid: int, environ: Mapping[str, str],
                 linger: bool = True) -> Plan:
    """Write the unit/plist, create missing inboxes, enable and start; with warnings the person must act on."""
    mkdirs = tuple(p for p in spec.inboxes if not p.is_dir())
    warnings: list[str] = []
    if platform == "linux":
        path = unit_path(home, environ)
        steps = (Step(("systemctl", "--user", "daemon-reload")),
                 Step(("systemctl", "--user", "enable", UNIT_NAME)),
                 Step(("systemctl", "--user", "restart", UNIT_NAME)))
        if not linger:
            user = environ.get("USER") or environ.get("LOGNAME") or "$USER"
            warnings.append(f"user services stop when you log out; to keep footsort sorting, run: loginctl enable-linger {user}")
        done = (f"footsort watches {', '.join(map(str, spec.inboxes))} now and at every login",
                "status: footsort service status    logs: footsort service logs", *_page_note(spec))
        return Plan(writes=((path, render_unit(spec)),), mkdirs=mkdirs, steps=steps, warnings=tuple(warnings), done=done)
    path = plist_path(home)
    domain = f"gui/{uid}"
    steps = (Step(("launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"), check=False),  # reinstall: unload the old one
             Step(("launchctl", "bootstrap", domain, str(path))),
             Step(("launchctl", "enable", f"{domain}/{LAUNCHD_LABEL}")))
    warnings += _mac_warnings(spec.inboxes, home, str(Path(sys.executable).resolve()))
    done = (f"footsort watches {', '.join(map(str, spec.inboxes))} now and at every login",
            f"status: footsort service status    logs: footsort service logs (files in {spec.log_dir})",
            *_page_note(spec))
    return Plan(writes=((path, render_plist(spec)),), mkdirs=mkdirs + (spec.log_dir,), steps=steps,
                warnings=tuple(warnings), done=done)


def plan_uninstall(platform: Platform, home: Path, uid: int, environ: Mapping[str, str]) -> Plan:
    """Stop, disable and remove the service (absent parts are fine)."""
    if platform == "linux":
        path = unit_path(home, environ)
        steps = (Step(("systemctl", "--user", "disable", "--now", UNIT_NAME), check=False),
                 Step(("systemctl", "--user", "daemon-reload"), check=False))
        return Plan(removes=(path,), steps=steps, done=("footsort no longer starts at login",))
    steps = (Step(("launchctl", "bootout", f"gui/{uid}/{LAUNCHD_LABEL}"), check=False),)
    return Plan(removes=(plist_path(home),), steps=steps, done=("footsort no longer starts at login",))


def status_command(platform: Platform, uid: int) -> tuple[str, ...]:
    """The command that shows the service's state."""
    if platform == "linux":
        return ("systemctl", "--user", "status", UNIT_NAME, "--no-pager")
    return ("launchctl", "print", f"gui/{uid}/{LAUNCHD_LABEL}")


def logs_command(platform: Platform, log_dir: Path, lines: int = 50, follow: bool = False) -> tuple[str, ...]:
    """The command that shows the service's recent log lines (journal on Linux, log files on macOS)."""
    if platform == "linux":
        return ("journalctl", "--user", "-u", UNIT_NAME, "-n", str(lines), "--no-pager", *(("-f",) if follow else ()))
    files = [str(log_dir / name) for name in ("footsort.log", "launchd.err.log")]
    return ("tail", "-n", str(lines), *(("-F",) if follow else ()), *files)


def installed_path(platform: Platform, home: Path, environ: Mapping[str, str]) -> Path:
    """Where the unit or plist is when the service is installed."""
    return unit_path(home, environ) if platform == "linux" else plist_path(home)


def is_active(platform: Platform, uid: int, runner: Runner = run_command) -> bool:
    """True when the service runs now."""
    if platform == "linux":
        return runner(("systemctl", "--user", "is-active", "--quiet", UNIT_NAME)).returncode == 0
    result = runner(("launchctl", "print", f"gui/{uid}/{LAUNCHD_LABEL}"))
    return result.returncode == 0 and "state = running" in result.output


def linger_enabled(user: str) -> bool:
    """True when systemd keeps this user's services running after logout."""
    return (Path("/var/lib/systemd/linger") / user).exists()


def _hint(step: Step, result: RunResult) -> str:
    if step.argv[0] == "systemctl" and ("bus" in result.output.lower() or result.returncode == 127):
        return ("; systemctl --user needs a running user session (log in graphically or over ssh, "
                "or run `loginctl enable-linger $USER`)")
    return ""


def apply(plan: Plan, runner: Runner = run_command, dry_run: bool = False,
          echo: Callable[[str], None] = print) -> None:
    """Carry out `plan` (or, with dry_run, print what it would do), telling the person each step."""
    verb = "would " if dry_run else ""
    for warning in plan.warnings:
        echo(f"warning: {warning}")
    for path in plan.mkdirs:
        echo(f"{verb}create {path}" if dry_run else f"created {path}")
        if not dry_run:
            path.mkdir(parents=True, exist_ok=True)
    for path, text in plan.writes:
        if dry_run:
            echo(f"would write {path}:")
            echo("\n".join(f"    {line}" if line else "" for line in text.splitlines()))
        else:
            atomic.write_text(path, text)
            echo(f"wrote {path}")
    for path in plan.removes:
        if dry_run:
            echo(f"would remove {path}" + ("" if path.exists() else " (not there)"))
    for step in plan.steps:
        shown = " ".join(step.argv)
        if dry_run:
            echo(f"would run: {shown}")
            continue
        result = runner(step.argv)
        if result.returncode != 0 and step.check:
            raise FootsortError(f"`{shown}` failed ({result.returncode}): {result.output or 'no output'}{_hint(step, result)}")
        echo(f"ran: {shown}")
    for path in plan.removes:
        if not dry_run and path.exists():
            path.unlink()
            echo(f"removed {path}")
    if not dry_run:
        for line in plan.done:
            echo(line)
