"""`footsort doctor`: check the machine and the setup, and say how to fix each problem.

Each check is a small function of a `Machine` (what it looks at, injectable for tests) returning
`Check` results; torch is imported lazily, inside the checks that need it.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Sequence

from footsort.errors import TORCH_INSTALL, FootsortError
from footsort.system import paths, service
from footsort.system.config import Config, load

Status = Literal["ok", "info", "warn", "fail"]
RECOMMENDED_WATCHES = 524288
WATCH_DIR_LIMIT = 200_000  # stop counting folders after this many


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, how it went, what was seen, and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Machine:
    """What the checks look at; the defaults are this machine."""

    cfg: Config
    config_problem: str = ""
    inboxes: tuple[Path, ...] = ()
    platform: str = sys.platform
    home: Path = field(default_factory=Path.home)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    runner: service.Runner = service.run_command
    inotify_dir: Path = Path("/proc/sys/fs/inotify")
    uid: int = field(default_factory=lambda: os.getuid() if hasattr(os, "getuid") else 0)


def machine(inboxes: Sequence[Path] = (), **kwargs: object) -> Machine:
    """This machine, with the configuration loaded (a config problem becomes a failed check, not an error)."""
    try:
        cfg, problem = load(), ""
    except FootsortError as exc:
        cfg, problem = Config(), str(exc)
    return Machine(cfg=cfg, config_problem=problem, inboxes=tuple(Path(p).expanduser().absolute() for p in inboxes),
                   **kwargs)  # type: ignore[arg-type]


def check_config(m: Machine) -> list[Check]:
    """The config file parses and every key is valid."""
    path = paths.config_file()
    if m.config_problem:
        return [Check("config", "fail", m.config_problem, f"edit {path}, or start over with `footsort config init --force`")]
    found = "found" if path.is_file() else "not found, defaults in use (`footsort config init` writes one)"
    return [Check("config", "ok", f"{path} ({found})")]


def check_journal(m: Machine) -> list[Check]:
    """The journal of moves reads back whole (SQLite quick_check); damaged, it is moved aside, never deleted."""
    from footsort.sorting import journal

    path = paths.journal_file()
    if not path.exists():
        return [Check("journal", "info", f"{path} (not created yet: nothing sorted)")]
    try:
        conn = journal.connect_readonly(path)
    except journal.JournalDamaged as exc:
        return [Check("journal", "fail", f"{path} is damaged ({exc.detail}); sort, watch, undo and log stop on it",
                      f"move it aside (it is kept; footsort then starts a new journal): {exc.command}")]
    except FootsortError as exc:
        return [Check("journal", "fail", str(exc), f"check the permissions of {path.parent}")]
    try:
        (count,) = conn.execute("SELECT count(*) FROM actions").fetchone()
    except Exception as exc:  # a database without footsort's table
        return [Check("journal", "fail", f"{path} is not footsort's journal: {exc}",
                      f"move it aside (it is kept): {journal.aside_command(path)}")]
    finally:
        conn.close()
    return [Check("journal", "ok", f"{path} ({count} action(s) recorded, every page reads)")]


def check_python(m: Machine) -> list[Check]:
    """Python 3.10 or newer."""
    v = sys.version_info
    if v < (3, 10):
        return [Check("python", "fail", f"Python {v.major}.{v.minor} is too old", "install Python 3.10 or newer")]
    return [Check("python", "ok", f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})")]


def check_torch(m: Machine) -> list[Check]:
    """torch and torchvision import (sorting does without them when ONNX Runtime runs the model); which device
    `model.device` picks."""
    try:
        import torch
        import torchvision
    except Exception as exc:  # ImportError, or a broken binary install
        return [_without_torch(m, exc)]
    from footsort.model.device import cuda_available, mps_available, resolve_device

    out = [Check("torch", "ok", f"torch {torch.__version__}, torchvision {torchvision.__version__}")]
    cuda, mps = cuda_available(), mps_available()
    seen = ", ".join(n for n, ok in (("CUDA " + (torch.cuda.get_device_name(0) if cuda else ""), cuda), ("MPS", mps)) if ok)
    wanted = m.cfg.model.device
    try:
        picked = resolve_device(wanted).type
    except FootsortError:
        out.append(Check("device", "fail", f"model.device = {wanted!r} but torch sees no {wanted.upper()} device",
                         "set model.device = \"auto\" (or \"cpu\") in the config"))
    else:
        note = "" if seen else "; no GPU found: fine for sorting, training is slower"
        out.append(Check("device", "ok", f"{picked} (model.device = {wanted!r}; available: CPU{', ' + seen if seen else ''}){note}"))
    return out


def _without_torch(m: Machine, exc: Exception) -> Check:
    """torch does not import: fine for sorting where the ONNX engine runs the model (the light install), a
    failure where torch would have to."""
    from footsort.model import engine

    try:
        choice = engine.describe(m.cfg.model.path or None, m.cfg.model.engine, m.cfg.model.device)
    except (FootsortError, OSError) as err:  # check_engine and check_model say what is wrong
        choice = engine.Choice("torch", f"the engine cannot be told: {err}")
    if choice.engine != "onnx":
        return Check("torch", "fail", f"cannot import torch/torchvision ({exc}), and the model runs on torch here "
                     f"({choice.reason}): nothing can sort", TORCH_INSTALL)
    if isinstance(exc, ModuleNotFoundError):
        return Check("torch", "info", "not installed: sorting runs on ONNX Runtime without it; only train, retrain and "
                     "evaluate need it", f"to train, retrain or evaluate: {TORCH_INSTALL}")
    return Check("torch", "warn", f"cannot import torch/torchvision ({exc}): sorting runs on ONNX Runtime without it, "
                 "but train, retrain and evaluate fail", f"reinstall it: {TORCH_INSTALL}")


def check_model(m: Machine) -> list[Check]:
    """The model in use can be read, and how accurate it was on its validation set."""
    try:
        from footsort.model import checkpoint, registry
    except ImportError:
        return [Check("model", "info", "unknown: this footsort has no model registry")]
    try:
        path = Path(m.cfg.model.path).expanduser() if m.cfg.model.path else registry.in_use_path()
        meta = checkpoint.read_metadata(path)
    except FootsortError as exc:
        return [Check("model", "fail", str(exc), "pick a stored version (`footsort models list`, `footsort models use VERSION`), "
                      "train one (`footsort train`), or set model.path")]
    from footsort.learning.evaluation import held_out_text

    text = held_out_text(meta.metrics or {})
    acc = f"held-out accuracy {text}" if text != "-" else "accuracy unknown (no validation metrics in the file)"
    return [Check("model", "ok", f"{meta.version} ({', '.join(meta.classes)}) from {path}; {acc}")]


def check_engine(m: Machine) -> list[Check]:
    """Which engine sorts (ONNX Runtime or torch) for `model.engine` and `model.device`, and why."""
    from footsort.model import engine

    try:
        choice = engine.describe(m.cfg.model.path or None, m.cfg.model.engine, m.cfg.model.device)
    except FootsortError as exc:
        return [Check("engine", "fail", str(exc), 'set model.engine = "auto" in the config, or install what it names')]
    except OSError as exc:  # the model file is missing: check_model says so
        return [Check("engine", "info", f"unknown ({exc})")]
    fix = "" if engine.onnxruntime_installed() else f"for a lighter, faster sort: {engine.ONNX_EXTRA}"
    return [Check("engine", "ok" if not fix else "info", f"{choice.engine}: {choice.reason}", fix)]


def check_backbone(m: Machine) -> list[Check]:
    """ImageNet backbone weights for training: a configured file, or torchvision's cache."""
    fix = ("training needs them: set model.backbone_weights (or FOOTSORT_BACKBONE_WEIGHTS) to a local "
           "torchvision mobilenet_v2 .pth, or let torchvision download them once (needs internet)")
    if m.cfg.model.backbone_weights:
        path = Path(m.cfg.model.backbone_weights).expanduser()
        if path.is_file():
            return [Check("backbone", "ok", f"{path}")]
        return [Check("backbone", "fail", f"model.backbone_weights = {str(path)!r} does not exist", fix)]
    try:
        import torch
        from torchvision.models import MobileNet_V2_Weights
    except Exception:
        return [Check("backbone", "info", "unknown (torch is not importable)")]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(MobileNet_V2_Weights.IMAGENET1K_V1.url).name
    if cached.is_file():
        return [Check("backbone", "ok", f"torchvision cache {cached}")]
    return [Check("backbone", "info", "no local ImageNet weights: sorting and retraining work (model files carry their "
                  "backbone); `footsort train` of a new model needs them", fix)]


def _folder_check(name: str, path: Path, what: str) -> Check:
    if not path.exists():
        return Check(name, "fail", f"{what} {path} does not exist", f"mkdir -p {path}")
    if not path.is_dir():
        return Check(name, "fail", f"{what} {path} is not a folder", "point footsort at a folder")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        return Check(name, "fail", f"{what} {path} is not readable and writable by you", f"chmod u+rwx {path}")
    return Check(name, "ok", f"{what} {path} is readable and writable")


def check_folders(m: Machine) -> list[Check]:
    """Inboxes and the output folder exist and are writable; the output is on the same disk."""
    if not m.inboxes:
        return [Check("inboxes", "info", "no inbox given; run `footsort doctor ~/Pictures/inbox` to check one")]
    out = [_folder_check("inbox", p, "inbox") for p in m.inboxes]
    if m.cfg.sort.output:
        target = Path(m.cfg.sort.output).expanduser()
        out.append(_folder_check("output", target, "output"))
        for inbox in m.inboxes:
            if inbox.is_dir() and target.is_dir() and inbox.stat().st_dev != target.stat().st_dev:
                out.append(Check("output", "warn", f"{inbox} and {target} are on different disks: every move is a "
                                 "copy and delete (slower, not atomic)", "keep sort.output on the inbox's disk"))
    return out


def _count_dirs(roots: Iterable[Path], recursive: bool) -> int:
    count = 0
    for root in roots:
        if not root.is_dir():
            continue
        count += 1 + 3  # the inbox and its class/review/failed folders
        if recursive:
            for _dir, subdirs, _files in os.walk(root):
                count += len(subdirs)
                if count > WATCH_DIR_LIMIT:
                    return count
    return count


def check_inotify(m: Machine) -> list[Check]:
    """Linux: enough inotify watches for the inboxes (each watched folder takes one)."""
    if not m.platform.startswith("linux"):
        return [Check("file events", "info", "native file events (FSEvents/kqueue); no inotify limits on this system")]
    if m.cfg.watch.poll > 0:
        return [Check("file events", "info", f"watch.poll = {m.cfg.watch.poll:g}: polling, inotify is not used")]
    try:
        watches = int((m.inotify_dir / "max_user_watches").read_text().strip())
        instances = int((m.inotify_dir / "max_user_instances").read_text().strip())
    except (OSError, ValueError):
        return [Check("inotify", "warn", f"cannot read {m.inotify_dir}; inotify may be unavailable",
                      "use `footsort watch --poll 5` (or watch.poll = 5) to poll instead")]
    needed = _count_dirs(m.inboxes, m.cfg.sort.recursive)
    fix = (f"raise it: echo fs.inotify.max_user_watches={RECOMMENDED_WATCHES} | sudo tee /etc/sysctl.d/90-footsort.conf "
           "&& sudo sysctl --system")
    out = []
    if watches < max(8192, 2 * needed):
        out.append(Check("inotify", "warn", f"max_user_watches = {watches} is low for {needed} watched folder(s) "
                         "plus other programs (editors, sync clients)", fix))
    else:
        out.append(Check("inotify", "ok", f"max_user_watches = {watches}" + (f" for {needed} watched folder(s)" if needed else "")))
    if instances < 128:
        out.append(Check("inotify", "warn", f"max_user_instances = {instances} is low",
                         "echo fs.inotify.max_user_instances=512 | sudo tee -a /etc/sysctl.d/90-footsort.conf && sudo sysctl --system"))
    return out


def check_service(m: Machine) -> list[Check]:
    """Whether the login service is installed and running (and, on Linux, survives logout)."""
    try:
        platform = service.current_platform(m.platform)
    except FootsortError as exc:
        return [Check("service", "info", str(exc))]
    path = service.installed_path(platform, m.home, m.environ)
    if not path.exists():
        return [Check("service", "info", "not installed", "to sort at every login: footsort service install ~/Pictures/inbox")]
    if not service.is_active(platform, m.uid, m.runner):
        return [Check("service", "warn", f"installed ({path}) but not running",
                      "see why: footsort service logs; then footsort service install INBOX again")]
    out = [Check("service", "ok", f"installed ({path}) and running")]
    user = m.environ.get("USER") or getpass.getuser()
    if platform == "linux" and not service.linger_enabled(user):
        out.append(Check("service", "info", "stops when you log out (lingering is off)", f"loginctl enable-linger {user}"))
    return out


def check_plugins(m: Machine) -> list[Check]:
    """Each enabled plugin loads and starts."""
    if not m.cfg.plugins.enabled:
        return [Check("plugins", "info", "none enabled (shipped: xmp, notify, webhook, export; see docs/plugins.md)")]
    from footsort.plugins.host import PluginHost

    host = PluginHost.from_config(m.cfg)
    host.close()
    out = [Check("plugins", "ok", f"{name} starts") for name in m.cfg.plugins.enabled if name not in host.problems]
    out += [Check("plugins", "fail", f"{name}: {why}", f"fix [plugins.{name}] or remove {name!r} from plugins.enabled")
            for name, why in host.problems.items()]
    return out


def check_logs(m: Machine) -> list[Check]:
    """Where logs go."""
    where = paths.log_dir() / "footsort.log" if m.cfg.log.file else "stderr only (log.file = false)"
    return [Check("logs", "info", f"{where}")]


CHECKS: tuple[Callable[[Machine], list[Check]], ...] = (
    check_config, check_journal, check_python, check_torch, check_model, check_engine, check_backbone, check_folders, check_inotify,
    check_service, check_plugins, check_logs,
)


def run(m: Machine, checks: Sequence[Callable[[Machine], list[Check]]] | None = None) -> list[Check]:
    """Every check (default: CHECKS); a check that crashes is reported as failed instead of stopping the others."""
    results: list[Check] = []
    for check in CHECKS if checks is None else checks:
        try:
            results += check(m)
        except Exception as exc:
            results.append(Check(check.__name__.removeprefix("check_"), "fail", f"the check itself failed: {exc!r}",
                                 "please report this"))
    return results


def format_results(results: Sequence[Check]) -> str:
    """One line per check, with its fix indented underneath."""
    lines = []
    for c in results:
        lines.append(f"{c.status:<5} {c.name:<12} {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<5} {'':<12} fix: {c.fix}")
    problems = sum(c.status in ("warn", "fail") for c in results)
    lines.append("all good" if not problems else f"{problems} problem(s) found; each has its fix above")
    return "\n".join(lines)
