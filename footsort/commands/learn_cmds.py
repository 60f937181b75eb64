"""`footsort retrain`, `review`, `corrections`, `models`: the person's fixes flow back into the model.

The flows live in the library (footsort.learning.retraining, .review, .versions); these commands parse,
call them and print. Heavy imports (torch) happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from footsort.commands.options import (
    device_option,
    load_classifier,
    load_config,
    model_classes,
    plugin_host,
)
from footsort.errors import FootsortError
from footsort.system.progress import progress
from footsort.system.safe_text import printable

LIBRARIES = click.argument("libraries", nargs=-1, type=click.Path(file_okay=False, path_type=Path))


def _find(libraries: Sequence[Path], cfg, classes: Sequence[str]):
    """Corrections and labelled examples in the libraries (a progress bar while hashing)."""
    from footsort.learning import retraining

    def bar(total: int):
        return progress(total, "reading class folders")

    return retraining.find(libraries, cfg, classes, progress=bar)


def _pairs_text(findings) -> str:
    pairs = findings.pairs()
    return ", ".join(f"{n} {old} -> {new}" for (old, new), n in sorted(pairs.items())) or "none"


# -- footsort corrections ---------------------------------------------------------------------------

@click.command("corrections")
@LIBRARIES
@click.option("--json", "as_json", is_flag=True, help="One JSON object per correction, per line.")
def corrections_cmd(libraries: tuple[Path, ...], as_json: bool) -> None:
    """List what `footsort retrain` will learn from: files you moved to another class folder.

    A file the model sorted into one class folder (or review/) that you moved into another class
    folder is a correction. Photos you dropped straight into a class folder are labelled examples.
    LIBRARY is a folder holding the class folders (default: every one footsort has sorted into).

    \b
    Example:
      footsort corrections
      footsort corrections ~/Pictures/inbox --json
    """
    from footsort.learning import corrections

    cfg = load_config()
    findings = _find(libraries, cfg, model_classes(cfg))
    host = plugin_host(cfg)
    try:
        corrections.announce(findings.corrections, host)
    finally:
        host.close()
    for c in findings.corrections:
        if as_json:
            click.echo(json.dumps({"path": str(c.path), "hash": c.hash, "old_label": c.old_label,
                                   "new_label": c.new_label, "guess": c.guess, "model_version": c.model_version}))
        else:
            said = f"{c.old_label} ({c.guess})" if c.old_label == corrections.REVIEW and c.guess else c.old_label
            click.echo(f"{said:>20} -> {c.new_label:<10} {printable(c.path)}")
    if as_json:
        return
    added = sum(e.source == "added" for e in findings.examples)
    click.echo(f"{len(findings.corrections)} correction(s): {_pairs_text(findings)}")
    click.echo(f"{len(findings.examples)} other labelled image(s) in class folders ({added} added by hand, "
               f"{len(findings.examples) - added} sorted by the model and kept)")
    for p in findings.conflicts:
        click.echo(f"left out (same photo in two class folders): {printable(p)}", err=True)
    if not findings.roots:
        click.echo("no library found: sort some photos first (footsort sort / watch) or name the folder", err=True)


# -- footsort retrain ---------------------------------------------------------------------------------

@click.command()
@LIBRARIES
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also train on this labelled folder DATA/<class>/<images>.")
@click.option("--epochs", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--views", type=click.IntRange(min=1), default=4, show_default=True,
              help="Augmented views per image (the model's own augmentation recipe), each computed once and cached.")
@click.option("--synth", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of views drawn as synthetic household scenes (for white-background photos).")
@click.option("--correction-weight", type=click.IntRange(min=1), default=5, show_default=True,
              help="Each correction counts this many times per epoch.")
@click.option("--balance/--no-balance", default=True, show_default=True,
              help="After weighting, repeat photos of lighter classes so every class weighs the same.")
@click.option("--replay", type=click.IntRange(min=0), default=300, show_default=True,
              help="At most this many other labelled images (balanced per class), so nothing is forgotten.")
@click.option("--val-split", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="Stratified share held out (corrections included) to compare the new and current model.")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option("Where to train (default: auto = GPU if any).")
@click.option("--no-cache", is_flag=True, help="Recompute backbone features instead of using the feature cache.")
@click.option("--force", is_flag=True, help="Promote the new model even when it is not as good.")
@click.option("--keep", is_flag=True, help="Store the new model as a version even when it is not promoted.")
@click.option("--dry-run", is_flag=True, help="Show what it would train on; train nothing.")
def retrain(libraries: tuple[Path, ...], data_dir: Path | None, device: str | None, no_cache: bool,
            dry_run: bool, **knobs: Any) -> None:
    """Fine-tune the model in use on your corrections; promote it only if it is at least as good.

    Learns from files you moved to another class folder (see `footsort corrections`), plus a replay
    sample of the other labelled photos and optional --data. Only the residual blocks and the head
    train; the frozen backbone's features are cached, so a second retrain is much faster. Both models
    are scored on the same held-out images; `footsort models rollback` undoes a promotion.

    \b
    Example:
      footsort retrain --dry-run
      footsort retrain ~/Pictures/inbox --epochs 8 --data ~/labelled
    """
    from footsort.learning import retraining
    from footsort.learning.retrain import Options

    cfg = load_config(device=device)
    classes = model_classes(cfg)
    if cfg.model.path:
        click.echo(f"note: [model] path pins {cfg.model.path}; retrain starts from and promotes into the model "
                   "versions (`footsort models list`), which commands use only once that setting is cleared", err=True)
    findings = _find(libraries, cfg, classes)
    options = Options(cache=not no_cache, **knobs)
    plan = retraining.plan(findings, classes, options, data_dir)
    _show_plan(plan, findings, verbose=dry_run)
    if dry_run:
        click.echo("dry run: nothing trained")
        return

    def log(e) -> None:
        click.echo(f"epoch {e.epoch}: train loss {e.train_loss:.4f} acc {e.train_acc:.4f} ({e.seconds:.1f} s)", err=True)

    host = plugin_host(cfg)
    try:
        result = retraining.run(plan, options, findings, host, device=cfg.model.device, log=log)
    finally:
        host.close()
    _show_result(result)


def _show_plan(plan, findings, verbose: bool) -> None:
    def counts(items) -> str:
        per: dict[str, int] = {}
        for it in items:
            per[it.label] = per.get(it.label, 0) + 1
        return ", ".join(f"{k} {v}" for k, v in sorted(per.items())) or "none"

    kinds = {k: [it for it in plan.train if it.kind == k] for k in ("correction", "example", "data")}
    held = {k: sum(it.kind == k for it in plan.validation) for k in ("correction", "example", "data")}
    click.echo(f"corrections: {len(findings.corrections)} ({_pairs_text(findings)}); "
               f"{len(kinds['correction'])} train (x{plan.correction_weight}), {held['correction']} held out")
    click.echo(f"replay: {len(kinds['example'])} labelled photos train ({counts(kinds['example'])}), "
               f"{held['example']} held out; {plan.unused_examples} not drawn")
    if plan.extra:
        click.echo(f"--data {plan.extra}: {len(kinds['data'])} train ({counts(kinds['data'])}), {held['data']} held out")
    click.echo(f"training on {len(plan.train)} photos ({counts(plan.train)}); "
               f"validation {len(plan.validation)} ({counts(plan.validation)})")
    if verbose:
        for it in plan.train:
            click.echo(f"  train {it.kind:<10} {it.label:<10} {printable(it.path)}")
        for it in plan.validation:
            click.echo(f"  val   {it.kind:<10} {it.label:<10} {printable(it.path)}")


def _show_result(result) -> None:
    for p in result.skipped:
        click.echo(f"skipped unreadable {printable(p)}", err=True)
    s = result.seconds
    click.echo(f"features {s['features']:.1f} s ({result.cache_hits} cached, {result.cache_misses} computed), "
               f"training {s['train']:.1f} s")
    corr = ""
    if result.candidate_corrections_accuracy is not None:
        corr = (f"; on held-out corrections {result.candidate_corrections_accuracy:.4f} "
                f"vs {result.current_corrections_accuracy:.4f}")
    click.echo(f"held-out accuracy: new {result.candidate_accuracy:.4f}, current ({result.parent or 'default'}) "
               f"{result.current_accuracy:.4f} on {result.validation_n} photos{corr}")
    for c in result.comparison.per_class if result.comparison is not None else ():
        if c.n:
            click.echo(f"  {printable(c.label):<12} current {c.current:.4f} -> new {c.candidate:.4f} on {c.n} photos")
    click.echo(result.verdict.reason)
    if result.verdict.promote:
        click.echo(f"model {result.meta.version} is now in use (a running daemon switches before its next batch); "
                   "`footsort models rollback` goes back")
    elif result.path is not None:
        click.echo(f"kept as {result.meta.version}: `footsort models use {result.meta.version}` to use it anyway")


# -- footsort review ------------------------------------------------------------------------------------

@click.command()
@LIBRARIES
@click.option("--dry-run", is_flag=True, help="Ask, but only say where files would go.")
def review(libraries: tuple[Path, ...], dry_run: bool) -> None:
    """Label the photos waiting in review/, one key per class; each choice is a correction.

    For each photo it shows the model's top predictions. Keys: 1, 2, ... move the photo to that
    class folder; o opens it in the system viewer; s skips it; q quits. Moves are journaled
    (`footsort undo` puts them back) and `footsort retrain` learns from them.

    \b
    Example:
      footsort review
      footsort review ~/Pictures/inbox
    """
    from footsort.learning import corrections, retraining
    from footsort.learning import review as reviewing
    from footsort.sorting.journal import Journal
    from footsort.sorting.labelling import class_keys
    from footsort.sorting.sorter import Sorter, Vanished, file_hash

    _need_a_terminal()
    cfg = load_config()
    classes = model_classes(cfg)
    history = corrections.read_history()
    roots = retraining.libraries(libraries, cfg, history)
    queue = reviewing.waiting(roots, cfg.sort.review_folder)
    if not queue:
        click.echo("nothing to review" + ("" if roots else ": no library found (name the folder, e.g. footsort review ~/inbox)"))
        return
    keys = class_keys(classes)
    menu = "  ".join(f"[{k}] {c}" for k, c in keys.items()) + "  [o]pen  [s]kip  [q]uit"
    guesses = reviewing.Guesses(history, lambda: load_classifier(cfg))
    journal = Journal.open(readonly=dry_run)
    host = plugin_host(cfg)
    labelled = skipped = 0
    try:
        sorter = Sorter(journal, dry_run=dry_run)
        for n, photo in enumerate(queue, 1):
            try:
                content = file_hash(photo.path)
            except OSError:
                click.echo(f"[{n}/{len(queue)}] {printable(photo.path)}: gone, skipped")
                continue
            click.echo(f"\n[{n}/{len(queue)}] {printable(photo.path)}")
            said = guesses.of(photo.path, content)
            if said is not None and said.probabilities:
                click.echo(f"  model {said.model_version or '?'}: "
                           + ", ".join(f"{c} {p:.2f}" for c, p in said.ranked()))
            choice = _ask(menu, keys, photo.path)
            if choice == "q":
                break
            if choice == "s":
                skipped += 1
                continue
            try:
                dest = reviewing.label(sorter, photo, content, choice, said, host)
            except (Vanished, FileNotFoundError):
                click.echo("  gone before it could be moved")
                continue
            click.echo(f"  {'would move' if dry_run else 'moved'} to {printable(dest)}")
            labelled += 1
    finally:
        host.close()
        journal.close()
    click.echo(f"\nlabelled {labelled}, skipped {skipped}" + (" (dry run: nothing moved)" if dry_run else "")
               + ("; run `footsort retrain` to learn from them" if labelled and not dry_run else ""))


NO_TERMINAL = (
    "footsort review reads single key presses and needs a terminal; this has none (input is a pipe, a file or "
    "an IDE console). Without one, label a photo by moving it from review/ into its class folder (e.g. "
    "`mv INBOX/review/a.jpg INBOX/sapatos/`): `footsort retrain` learns from those moves too; or label them "
    "in a browser with `footsort ui`, or let the model decide with `footsort sort --threshold 0.5 INBOX/review`")


def _need_a_terminal() -> None:
    """Fail with NO_TERMINAL where click.getchar would fail: stdin is not a terminal and /dev/tty cannot be opened."""
    real = click.termui._getchar is None or click.termui._getchar.__module__ == "click._termui_impl"
    if not real or os.name == "nt":
        return  # keys come from elsewhere (click's CliRunner), or Windows' console reads them
    try:
        if os.isatty(sys.stdin.fileno()):
            return
    except (AttributeError, OSError, ValueError):
        pass
    try:  # with stdin not a terminal, click reads keys from the controlling terminal
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        raise FootsortError(NO_TERMINAL) from None


def _ask(menu: str, keys: dict[str, str], path: Path) -> str:
    """A class name, or "s" (skip) or "q" (quit); "o" opens the photo and asks again."""
    while True:
        click.echo(f"  {menu}: ", nl=False)
        try:
            key = click.getchar()
        except OSError:  # the terminal went away
            raise FootsortError(NO_TERMINAL) from None
        click.echo(key)
        key = key.lower()
        if key in keys:
            return keys[key]
        if key in ("s", "q"):
            return key
        if key in ("\x03", "\x04"):  # Ctrl+C / Ctrl+D in raw mode
            return "q"
        if key == "o":
            click.launch(str(path))
            continue
        click.echo(f"  unknown key {key!r}")


# -- footsort models ------------------------------------------------------------------------------------

@click.group()
def models() -> None:
    """List model versions and choose which one is in use.

    \b
    Example:
      footsort models list
      footsort models use 20261123-193000-1a2b3c
      footsort models rollback
    """


def _tell_plugins(event) -> None:
    """Emit one event to the plugins named in the config."""
    host = plugin_host(load_config())
    try:
        host.emit(event)
    finally:
        host.close()


@models.command("list")
def models_list() -> None:
    """List stored model versions, oldest first; * marks the one in use.

    \b
    Example:
      footsort models list
    """
    from footsort.learning.evaluation import held_out_text
    from footsort.model import registry

    current = registry.current_version()
    versions = registry.list_versions()
    click.echo(f"{'':2}{'version':<24}{'created':<27}{'parent':<24}{'held-out acc (n)':>20}  data")
    shipped = "" if current else "*"
    if registry.shipped_model_path().is_file():
        from footsort.model.checkpoint import read_metadata

        default = read_metadata(registry.shipped_model_path())
        click.echo(f"{shipped:<2}{'default (shipped)':<24}{default.created:<27}{'-':<24}{held_out_text(default.metrics):>20}  shipped")
    else:
        click.echo(f"{shipped:<2}{'default (shipped)':<24}  (not installed)")
    for _, meta in versions:
        mark = "*" if meta.version == current else ""
        data = meta.data.get("kind", "train")
        click.echo(f"{mark:<2}{meta.version:<24}{meta.created:<27}{meta.parent or '-':<24}{held_out_text(meta.metrics):>20}  {data}")
    if not versions:
        click.echo("no stored versions yet: `footsort train` or `footsort retrain` makes one")


@models.command("show")
@click.argument("version")
@click.option("--json", "as_json", is_flag=True, help="The whole metadata as one JSON object.")
def models_show(version: str, as_json: bool) -> None:
    """Show a version's metadata: parent, data summary, metrics, recipe.

    \b
    Example:
      footsort models show 20261123-193000-1a2b3c
      footsort models show default --json
    """
    from dataclasses import asdict

    from footsort.model import registry
    from footsort.model.checkpoint import read_metadata

    path = registry.shipped_model_path() if version == "default" else registry.version_path(version)
    if version != "default" and not path.is_file():
        known = ", ".join(m.version for _, m in registry.list_versions()) or "none"
        raise FootsortError(f"no stored model version {version!r}; known versions: {known}")
    meta = asdict(read_metadata(path))
    if as_json:
        click.echo(json.dumps({**meta, "path": str(path)}))
        return
    metrics = dict(meta.pop("metrics"))
    metrics.pop("history", None)
    in_use = meta["version"] == registry.current_version()
    rows = {"version": meta["version"] + ("  (in use)" if in_use else ""), "file": str(path),
            **{k: ", ".join(meta[k]) if isinstance(meta[k], (list, tuple)) else meta[k]
               for k in ("created", "parent", "classes", "backbone_origin", "footsort_version")},
            "data": json.dumps(meta["data"]), "metrics": json.dumps(metrics), "recipe": json.dumps(meta["recipe"])}
    for key, value in rows.items():
        click.echo(f"{key:<18}{value}")


@models.command("use")
@click.argument("version")
def models_use(version: str) -> None:
    """Make VERSION the model every command and a running daemon use.

    \b
    Example:
      footsort models use 20261123-193000-1a2b3c
    """
    from footsort.learning import versions

    switch = versions.use(version)
    if versions.changed(switch):  # `default` is stored as ''
        _tell_plugins(switch)
    click.echo(f"model {version} is now in use (was {switch.previous or 'default'}); a running daemon switches before "
               "its next batch")


@models.command("rollback")
def models_rollback() -> None:
    """Go back to the model that was in use before the current one.

    \b
    Example:
      footsort models rollback
    """
    from footsort.learning import versions

    switch = versions.rollback()
    _tell_plugins(switch)
    click.echo(f"model {switch.version or 'default'} is now in use (was {switch.previous or 'default'})")


COMMANDS = [retrain, review, corrections_cmd, models]
