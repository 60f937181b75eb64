"""The `footsort` command: a click group whose subcommands live in footsort/commands/.

This is the one place where FootsortError becomes a one-line message and an exit code.
Heavy imports (torch) happen inside commands so that `--help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from footsort import __version__
from footsort.errors import FootsortError, TorchMissing


class FootsortGroup(click.Group):
    """A click group that reports FootsortError, and torch missing where a command needs it, on one line.

    Commands load lazily: a command's module (footsort.commands.COMMAND_MODULES) is imported when it runs.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from footsort.commands import COMMAND_MODULES

        return sorted({*self.commands, *(n for names in COMMAND_MODULES.values() for n in names)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            _load_module_of(cmd_name)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FootsortError as exc:
            _fail(ctx, exc)
        except ModuleNotFoundError as exc:  # the light install has no torch: train, retrain, evaluate need it
            if (exc.name or "").split(".")[0] not in ("torch", "torchvision"):
                raise
            _fail(ctx, TorchMissing.to(f"footsort {ctx.invoked_subcommand or ''}".strip()))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _fail(ctx: click.Context, exc: FootsortError) -> None:
    from footsort.system.safe_text import shown

    click.echo(f"error: {shown(exc)}", err=True)  # one line, whatever file name or URL it quotes
    ctx.exit(exc.exit_code)


@click.group(cls=FootsortGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="footsort")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.option("--log-json", is_flag=True, help="Log JSON lines on stderr (for journald or log shippers).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, quiet: bool, log_json: bool) -> None:
    """Sort footwear photos into tsinelas/ and sapatos/ with a small neural network.

    \b
    Example:
      footsort classify photo.jpg
      footsort watch ~/Pictures/inbox
    """
    from footsort.system import config, logs

    ctx.ensure_object(dict)
    try:
        settings = config.load().log  # [log] and FOOTSORT_LOG_*; the flags above win
    except FootsortError:
        settings = None  # a bad config is reported by the command that needs it (`config init --force` still works)
    ctx.obj["log"] = dict(verbose=verbose, quiet=quiet, json=log_json, settings=settings)  # for commands that re-run setup
    logs.setup(**ctx.obj["log"])


def _log_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """-v/-q given after the subcommand (`footsort sort -v DIR`): the same as before it."""
    if not value or ctx.resilient_parsing:
        return
    from footsort.system import logs

    root = ctx.find_root()
    root.ensure_object(dict)
    opts = root.obj.setdefault("log", {})
    opts[param.name] = True  # type: ignore[index]
    logs.setup(**opts)


LOG_FLAGS = (("-v", "--verbose", "Log debug details."), ("-q", "--quiet", "Log only warnings and errors."))


def _with_log_flags(command: click.Command) -> None:
    """Give a command (and the commands of a group) the -v/-q flags of `footsort` itself."""
    taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
    for short, long, text in LOG_FLAGS:
        if short not in taken and long not in taken:
            command.params.append(click.Option([short, long], is_flag=True, expose_value=False,
                                               callback=_log_flag, help=text))
    for sub in getattr(command, "commands", {}).values():
        _with_log_flags(sub)


def _load_module_of(command: str) -> None:
    """Import the module that defines `command` and add its commands to `footsort`."""
    import importlib

    from footsort.commands import COMMAND_MODULES

    for name, commands in COMMAND_MODULES.items():
        if command in commands:
            module = importlib.import_module(f"footsort.commands.{name}")
            for cmd in module.COMMANDS:
                _with_log_flags(cmd)
                main.add_command(cmd)
            return


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
