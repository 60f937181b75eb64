"""`footsort config`, `footsort doctor` and `footsort service`: fitting footsort into the person's system."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from footsort.errors import FootsortError
from footsort.system import atomic, config, paths, service


def _obj(ctx: click.Context, key: str, default: Any) -> Any:
    """Test seams (runner, platform) travel in ctx.obj; the real ones are the defaults."""
    return (ctx.obj or {}).get(key, default)


# ---- config -------------------------------------------------------------------------------------


@click.group("config")
def config_group() -> None:
    """Show, locate or create the configuration file.

    \b
    Example:
      footsort config init && $EDITOR "$(footsort config path)"
    """


@config_group.command("path")
@click.option("--all", "show_all", is_flag=True, help="Also print the data, cache and log folders.")
def config_path(show_all: bool) -> None:
    """Print where the config file is (FOOTSORT_CONFIG overrides it).

    \b
    Example:
      footsort config path --all
    """
    if not show_all:
        click.echo(str(paths.config_file()))
        return
    for name, path in (("config", paths.config_file()), ("data", paths.data_dir()), ("models", paths.models_dir()),
                       ("cache", paths.cache_dir()), ("logs", paths.log_dir())):
        click.echo(f"{name:<7} {path}")


@config_group.command("show")
def config_show() -> None:
    """Print the configuration in effect (defaults < file < FOOTSORT_* environment) as TOML.

    \b
    Example:
      FOOTSORT_SORT_THRESHOLD=0.9 footsort config show
    """
    from footsort.system import configfile

    cfg = config.load()
    path = paths.config_file()
    click.echo(f"# file: {path} ({'found' if path.is_file() else 'not found; defaults'})")
    env = sorted(f"{config.env_var(f'{s}.{k}')}={v}" for s, kv in config.env_values().items() for k, v in kv.items())
    if env:
        click.echo("# from the environment: " + ", ".join(env))
    click.echo(configfile.render(cfg, commented=False), nl=False)


@config_group.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing file (the old one is kept as config.toml.bak).")
def config_init(force: bool) -> None:
    """Write a commented config file listing every key with its default.

    \b
    Example:
      footsort config init
      footsort config init --force   # start over; keeps config.toml.bak
    """
    from footsort.plugins.host import shipped_settings
    from footsort.system import configfile

    path = paths.config_file()
    if path.exists() and not force:
        raise FootsortError(f"{path} already exists; edit it, or run `footsort config init --force` to start over")
    text = configfile.render(config.Config(), commented=True, plugin_settings=shipped_settings())
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
        click.echo(f"kept the old file as {backup}")
    atomic.write_text(path, text)
    click.echo(f"wrote {path}; edit it, then check it with `footsort config show`")


# ---- doctor -------------------------------------------------------------------------------------


@click.command("doctor")
@click.argument("inboxes", nargs=-1, type=click.Path(path_type=Path))
@click.pass_context
def doctor_cmd(ctx: click.Context, inboxes: tuple[Path, ...]) -> None:
    """Check Python, torch, the device, the model, weights, folders, inotify limits, the service and plugins.

    Each problem comes with its fix; the exit status is 1 when a check failed.

    \b
    Example:
      footsort doctor ~/Pictures/inbox
    """
    from footsort.system import doctor

    m = doctor.machine(inboxes, platform=_obj(ctx, "platform", sys.platform),
                       runner=_obj(ctx, "service_runner", service.run_command))
    results = doctor.run(m)
    click.echo(doctor.format_results(results))
    if any(c.status == "fail" for c in results):
        ctx.exit(1)


# ---- service ------------------------------------------------------------------------------------


@click.group("service")
def service_group() -> None:
    """Run `footsort watch` at login: a systemd user service (Linux) or a launchd agent (macOS).

    \b
    Example:
      footsort service install --dry-run ~/Pictures/inbox
      footsort service install ~/Pictures/inbox
    """


def _platform(ctx: click.Context) -> service.Platform:
    return service.current_platform(_obj(ctx, "platform", sys.platform))


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


@service_group.command("install")
@click.argument("inboxes", nargs=-1, type=click.Path(path_type=Path))
@click.option("--output", type=click.Path(path_type=Path), help="Library root for the class folders (else inside each inbox).")
@click.option("--poll", type=float, help="Poll every SECONDS instead of native file events (network shares).")
@click.option("--recursive", is_flag=True, help="Also watch subfolders of the inboxes.")
@click.option("--ui", is_flag=True,
              help="The service also serves the review page (`footsort watch --ui`, on 127.0.0.1); "
                   "`footsort ui --url` prints its address with the token. E.g. footsort service install --ui ~/inbox.")
@click.option("--dry-run", is_flag=True, help="Print the files and commands instead of running them.")
@click.pass_context
def service_install(ctx: click.Context, inboxes: tuple[Path, ...], output: Path | None, poll: float | None,
                    recursive: bool, ui: bool, dry_run: bool) -> None:
    """Install, enable and start the service that watches INBOX... (replaces an installed one).

    \b
    Example:
      footsort service install --dry-run ~/Pictures/inbox
      footsort service install ~/Pictures/inbox ~/Downloads/shoes --output ~/Pictures/footwear
      footsort service install --ui ~/Pictures/inbox && footsort ui --url
    """
    if not inboxes:
        raise FootsortError("name at least one inbox, e.g. `footsort service install ~/Pictures/inbox`")
    platform = _platform(ctx)
    folders = tuple(p.expanduser().absolute() for p in inboxes)
    env = tuple((k, os.environ[k]) for k in service.PASS_THROUGH_ENV if os.environ.get(k))
    command = service.watch_command(service.footsort_executable(), folders,
                                    output=str(output.expanduser().absolute()) if output else None,
                                    poll=poll, recursive=recursive, quiet=platform == "darwin", ui=ui)
    spec = service.ServiceSpec(command=command, inboxes=folders, log_dir=paths.log_dir(), environment=env, ui=ui)
    user = getpass.getuser()
    plan = service.plan_install(platform, spec, Path.home(), _uid(), {**os.environ, "USER": user},
                                linger=platform != "linux" or service.linger_enabled(user))
    service.apply(plan, _obj(ctx, "service_runner", service.run_command), dry_run=dry_run, echo=click.echo)


@service_group.command("uninstall")
@click.option("--dry-run", is_flag=True, help="Print what would be removed instead of removing it.")
@click.pass_context
def service_uninstall(ctx: click.Context, dry_run: bool) -> None:
    """Stop the service and remove it from login.

    \b
    Example:
      footsort service uninstall
    """
    platform = _platform(ctx)
    path = service.installed_path(platform, Path.home(), os.environ)
    if not path.exists():
        click.echo(f"the service is not installed ({path} does not exist); nothing to remove")
        return
    plan = service.plan_uninstall(platform, Path.home(), _uid(), os.environ)
    service.apply(plan, _obj(ctx, "service_runner", service.run_command), dry_run=dry_run, echo=click.echo)


@service_group.command("status")
@click.pass_context
def service_status(ctx: click.Context) -> None:
    """Say whether the service is installed and running (exit status 3 when it is not running), and the
    address of the review page it serves when installed with --ui.

    \b
    Example:
      footsort service status
    """
    platform = _platform(ctx)
    runner = _obj(ctx, "service_runner", service.run_command)
    path = service.installed_path(platform, Path.home(), os.environ)
    if not path.exists():
        click.echo("not installed; install it with `footsort service install ~/Pictures/inbox`")
        ctx.exit(3)
    click.echo(f"installed: {path}")
    result = runner(service.status_command(platform, _uid()))
    if result.output:
        click.echo(result.output)
    running = service.is_active(platform, _uid(), runner)
    click.echo("running" if running else "not running; see why with `footsort service logs`")
    if not running:
        ctx.exit(3)
    from footsort.ui import runtime

    for page in runtime.running():
        if page.kind == "watch":  # served by a daemon: the service's (or a `footsort watch --ui` in a terminal)
            click.echo(f"review page (footsort watch, PID {page.pid}): {page.url}")


@service_group.command("logs")
@click.option("-n", "--lines", default=50, show_default=True, help="How many recent lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl+C stops).")
@click.pass_context
def service_logs(ctx: click.Context, lines: int, follow: bool) -> None:
    """Print the service's recent log lines (the journal on Linux, the log files on macOS).

    \b
    Example:
      footsort service logs -n 200
      footsort service logs --follow
    """
    argv = service.logs_command(_platform(ctx), paths.log_dir(), lines, follow)
    if follow:
        ctx.exit(subprocess.call(list(argv)))
    result = _obj(ctx, "service_runner", service.run_command)(argv)
    click.echo(result.output or "no log lines yet")
    if result.returncode != 0:
        ctx.exit(result.returncode)


COMMANDS = [config_group, doctor_cmd, service_group]
