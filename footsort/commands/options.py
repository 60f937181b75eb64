"""What the command modules share, defined once: --model, --device and --engine, the settings with the flags on
top, the plugin host, the classifier and its classes, the journal, and quieter logs while a bar shows.

The classifier comes from `ctx.obj["classifier_factory"]` when the caller put a ClassifierFactory there (tests
do: `CliRunner().invoke(main, args, obj={"classifier_factory": ...})`), else from the model in use.
Heavy imports (torch, PIL) happen inside the functions so that `--help` stays fast.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar, get_args

import click

from footsort.system.config import Config, Device, Engine

if TYPE_CHECKING:
    from footsort.model.prediction import ClassifierFactory, ImageClassifier
    from footsort.plugins.host import PluginHost
    from footsort.sorting.journal import Journal

F = TypeVar("F", bound=Callable[..., Any])
CLASSIFIER_FACTORY = "classifier_factory"  # the ctx.obj key of a ClassifierFactory used instead of the model in use
FUSE_FROM = 40  # photos; below this the eager graph finishes before fusing (about 0.6 s of CPU) pays back


# -- options ----------------------------------------------------------------------------------------

def model_option(f: F) -> F:
    """--model FILE (the `model_path` parameter): this model file instead of the model in use."""
    return click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help="Model file to use (default: the model in use, else the shipped one).")(f)


def device_option(help: str = "Where the model runs (default: auto = GPU if any).") -> Callable[[F], F]:
    """--device auto|cpu|cuda|mps (None when not given: the [model] device setting)."""
    return click.option("--device", type=click.Choice(get_args(Device)), default=None, help=help)


def engine_option(f: F) -> F:
    """--engine auto|onnx|torch (None when not given: the [model] engine setting)."""
    return click.option("--engine", type=click.Choice(get_args(Engine)), default=None,
                        help="What runs the model (default: auto = onnxruntime when installed, else torch).")(f)


# -- what the commands work with -----------------------------------------------------------------------

def load_config(*, threshold: float | None = None, output: Path | None = None, recursive: bool | None = None,
                device: str | None = None, engine: str | None = None, backbone_weights: Path | None = None,
                **watch: Any) -> Config:
    """The settings (defaults < config file < FOOTSORT_* environment) with the flags given on top (None: not given)."""
    from footsort.system import config

    return config.load(overrides={
        "sort": {"threshold": threshold, "output": str(output) if output else None, "recursive": recursive},
        "model": {"device": device, "engine": engine,
                  "backbone_weights": str(backbone_weights) if backbone_weights else None},
        "watch": watch,
    })


def plugin_host(cfg: Config) -> PluginHost:
    """The plugins named in the config, started (close the host when done)."""
    from footsort.plugins.host import PluginHost

    return PluginHost.from_config(cfg)


def injected_factory() -> ClassifierFactory | None:
    """The ClassifierFactory the caller put in ctx.obj (tests: a fake model), or None."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return (obj or {}).get(CLASSIFIER_FACTORY)


def load_classifier(cfg: Config, model_path: Path | None = None, fuse: str = "now") -> ImageClassifier:
    """The classifier for this command: the injected factory's, else --model, [model] path or the model in use."""
    from footsort.sorting import pipeline

    return (injected_factory() or pipeline.load_classifier)(cfg, model_path, fuse)


def model_classes(cfg: Config) -> tuple[str, ...]:
    """The classes of the model in use, read from its file (no torch); the injected factory's when there is one."""
    from footsort.sorting.labelling import model_classes as classes_of

    return classes_of(cfg, injected_factory())


def open_journal(dry_run: bool) -> Journal:
    """The journal (read-only for a dry run), after repairing what a crashed process left."""
    from footsort.sorting.journal import Journal
    from footsort.sorting.sorter import recover

    journal = Journal.open(readonly=dry_run)
    if not dry_run:
        recover(journal)
    return journal


@contextmanager
def quiet_logs(ctx: click.Context) -> Iterator[None]:
    """Unless -v: no log line per photo inside (a bar or a summary instead; warnings still show); as before after."""
    from footsort.system import logs

    opts = dict((ctx.find_root().obj or {}).get("log", {}))
    if opts.get("verbose"):
        yield
        return
    logs.setup(**{**opts, "quiet": True, "keep_progress": not opts.get("quiet")})  # -q hides progress too
    try:
        yield
    finally:
        logs.setup(**opts)
