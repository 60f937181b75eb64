"""`footsort retrain`, `review`, `corrections`, `models`: the person's fixes flow back into the model.

Heavy imports (torch) happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from footsort.errors import FootsortError
from footsort.system.safe_text import printable

DEVICE = click.Choice(["auto", "cpu", "cuda", "mps"])
LIBRARIES = click.argument("libraries", nargs=-1, type=click.Path(file_okay=False, path_type=Path))


def _config(device: str | None = None):
    from footsort.system import config

    return config.load(overrides={"model": {"device": device}})


def _host(cfg):
    from footsort.plugins.host import PluginHost

    return PluginHost.from_config(cfg)


def _classes(cfg) -> tuple[str, ...]:
    """The classes of the model in use, from the model versions (read from its file's metadata: no torch)."""
    from footsort.model import registry
    from footsort.model.checkpoint import read_metadata
    from footsort.sorting.pipeline import TEST_CLASSIFIER_ENV, load_classifier

    if os.environ.get(TEST_CLASSIFIER_ENV):
        return tuple(load_classifier(cfg).classes)
    return tuple(read_metadata(registry.in_use_path()).classes)


def _roots(libraries: Sequence[Path], cfg, history) -> list[Path]:
    from footsort.learning.corrections import library_roots

    roots = library_roots(libraries, history, cfg.sort.output)
    for r in roots:
        if not r.is_dir():
            raise FootsortError(f"library {r} is not a folder; give the folder that holds your class folders "
                                "(e.g. ~/Pictures/inbox, which holds tsinelas/ and sapatos/)")
    return roots


def _find(libraries: Sequence[Path], cfg, classes: Sequence[str], history=None):
    """Corrections and labelled examples in the libraries (a progress bar while hashing)."""
    from footsort.learning import corrections

    history = corrections.read_history() if history is None else history
    roots = _roots(libraries, cfg, history)
    listed = corrections.library_files(roots, classes)
    with click.progressbar(length=len(listed), label="reading class folders", file=sys.stderr) as bar:
        return corrections.scan(roots, classes, history=history, listed=listed, tick=bar.update)


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

    cfg = _config()
    findings = _find(libraries, cfg, _classes(cfg))
    host = _host(cfg)
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
@click.option("--epochs", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=float, default=3e-4, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--views", type=click.IntRange(min=1), default=4, show_default=True,
              help="Augmented views per image (the model's own augmentation recipe), each computed once and cached.")
@click.option("--synth", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of views drawn as synthetic household scenes (for white-background photos).")
@click.option("--correction-weight", type=click.IntRange(min=1), default=3, show_default=True,
              help="Each correction counts this many times per epoch.")
@click.option("--balance/--no-balance", default=True, show_default=True,
              help="After weighting, repeat photos of lighter classes so every class weighs the same.")
@click.option("--replay", type=click.IntRange(min=0), default=300, show_default=True,
              help="At most this many other labelled images (balanced per class), so nothing is forgotten.")
@click.option("--val-split", type=click.FloatRange(0, 0.9), default=0.2, show_default=True,
              help="Stratified share held out (corrections included) to compare the new and current model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=DEVICE, default=None, help="Where to train (default: auto = GPU if any).")
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
    from footsort.learning import corrections
    from footsort.learning.retrain import NothingToLearn, Options, make_plan

    cfg = _config(device)
    classes = _classes(cfg)
    if cfg.model.path:
        click.echo(f"note: [model] path pins {cfg.model.path}; retrain starts from and promotes into the model "
                   "versions (`footsort models list`), which commands use only once that setting is cleared", err=True)
    history = corrections.read_history()
    findings = _find(libraries, cfg, classes, history)
    options = Options(cache=not no_cache, **knobs)
    extra = _extra_items(data_dir, classes) if data_dir else []
    try:
        plan = make_plan(findings, classes, options, extra, str(data_dir or ""))
    except NothingToLearn:
        where = ", ".join(map(str, findings.roots)) or "no library (sort some photos first, or name the folder)"
        raise FootsortError(f"nothing to learn from in {where}: no corrections and no photos added by hand. Move "
                            "wrongly sorted photos to the right class folder (or run `footsort review`), or pass "
                            "--data DIR") from None
    _show_plan(plan, findings, verbose=dry_run)
    if dry_run:
        click.echo("dry run: nothing trained")
        return
    _run_retrain(plan, options, cfg, findings)


def _extra_items(data_dir: Path, classes: Sequence[str]) -> list:
    from footsort.learning.datasets import scan
    from footsort.sorting.hashes import ContentHashes
    from footsort.learning.retrain import TrainItem

    data = scan(data_dir, classes)
    hashes = ContentHashes.open()
    digests = hashes.many(s.path for s in data.samples)
    hashes.save()
    return [TrainItem(s.path, digests[s.path], data.classes[s.label], "data") for s in data.samples if s.path in digests]


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


def _run_retrain(plan, options, cfg, findings) -> None:
    from footsort.learning import corrections
    from footsort.learning.feature_cache import FeatureCache
    from footsort.learning.retrain import finish, retrain as run

    def log(e) -> None:
        click.echo(f"epoch {e.epoch}: train loss {e.train_loss:.4f} acc {e.train_acc:.4f} ({e.seconds:.1f} s)", err=True)

    cache = FeatureCache() if options.cache else None
    host = _host(cfg)
    try:
        corrections.announce(findings.corrections, host)
        result = run(plan, options, device=cfg.model.device, cache=cache, log=log)
        result = finish(result, host, keep=options.keep)
    finally:
        host.close()
    if cache is not None:
        cache.prune()
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
    click.echo(result.verdict.reason)
    if result.verdict.promote:
        click.echo(f"model {result.meta.version} is now in use (a running daemon switches before its next batch); "
                   "`footsort models rollback` goes back")
    elif result.path is not None:
        click.echo(f"kept as {result.meta.version}: `footsort models use {result.meta.version}` to use it anyway")


# -- footsort review ------------------------------------------------------------------------------------

def class_keys(classes: Sequence[str]) -> dict[str, str]:
    """One key per class: 1, 2, ... (letters would clash with o/s/q)."""
    return {str(i + 1): c for i, c in enumerate(classes[:9])}


def _said(history, content: str):
    """The model's latest recorded prediction for this content, or None."""
    rows = [d for d in history.get(content, ()) if d.by_model and d.probabilities]
    return rows[-1] if rows else None


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
    from footsort.learning import corrections
    from footsort.sorting.journal import Details, Journal
    from footsort.sorting.sorter import Move, Sorter, Vanished, file_hash

    _need_a_terminal()
    cfg = _config()
    classes = _classes(cfg)
    history = corrections.read_history()
    roots = _roots(libraries, cfg, history)
    queue = [(root, p) for root in roots for p in _review_files(root / cfg.sort.review_folder)]
    if not queue:
        click.echo("nothing to review" + ("" if roots else ": no library found (name the folder, e.g. footsort review ~/inbox)"))
        return
    keys = class_keys(classes)
    menu = "  ".join(f"[{k}] {c}" for k, c in keys.items()) + "  [o]pen  [s]kip  [q]uit"
    clf = None
    journal = Journal.open(readonly=dry_run)
    host = _host(cfg)
    labelled = skipped = 0
    try:
        sorter = Sorter(journal, dry_run=dry_run)
        for n, (root, path) in enumerate(queue, 1):
            try:
                content = file_hash(path)
            except OSError:
                click.echo(f"[{n}/{len(queue)}] {printable(path)}: gone, skipped")
                continue
            said = _said(history, content)
            click.echo(f"\n[{n}/{len(queue)}] {printable(path)}")
            if said is not None:
                probs = said.probabilities
                version = said.model_version
            else:
                clf = clf or _load_for_review(cfg)
                pred = _predict(clf, path)
                probs, version = (pred.probabilities, pred.model_version) if pred else ({}, "")
            top = sorted(probs.items(), key=lambda kv: -kv[1])
            if top:
                click.echo(f"  model {version or '?'}: " + ", ".join(f"{c} {p:.2f}" for c, p in top))
            choice = _ask(menu, keys, path)
            if choice == "q":
                break
            if choice == "s":
                skipped += 1
                continue
            guess = top[0][0] if top else ""
            details = Details(label=choice, probabilities=dict(probs), model_version=corrections.HUMAN,
                              reason=f"labelled by hand in footsort review (the model said {guess or 'nothing'}"
                                     + (f" {top[0][1]:.2f})" if top else ")"))
            try:
                dest = sorter.move(Move(path, root / choice, "sort", content, path.stat().st_size, details))
            except (Vanished, FileNotFoundError):
                click.echo("  gone before it could be moved")
                continue
            click.echo(f"  {'would move' if dry_run else 'moved'} to {printable(dest)}")
            labelled += 1
            if not dry_run:
                corrections.announce([corrections.Correction(dest, content, corrections.REVIEW, choice, guess)], host)
    finally:
        host.close()
        journal.close()
    click.echo(f"\nlabelled {labelled}, skipped {skipped}" + (" (dry run: nothing moved)" if dry_run else "")
               + ("; run `footsort retrain` to learn from them" if labelled and not dry_run else ""))


def _review_files(folder: Path) -> list[Path]:
    from footsort.model.imaging import is_image_name

    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_name(p))


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


def _load_for_review(cfg):
    from footsort.sorting.pipeline import load_classifier

    return load_classifier(cfg)


def _predict(clf, path: Path):
    from footsort.errors import UnreadableImage
    from footsort.model.imaging import load_rgb

    try:
        return clf.predict_images([load_rgb(path, min_side=getattr(clf, "input_size", None))])[0]
    except UnreadableImage:
        return None


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


def _tell_plugins(version: str, previous: str) -> None:
    from footsort.plugins import events
    from footsort.model import registry

    host = _host(_config())
    try:
        host.emit(events.ModelPromoted(version, registry.in_use_path(), previous))
    finally:
        host.close()


@models.command("list")
def models_list() -> None:
    """List stored model versions, oldest first; * marks the one in use.

    \b
    Example:
      footsort models list
    """
    from footsort.model import registry
    from footsort.learning.evaluation import held_out_text

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
    from footsort.model import registry

    previous = registry.current_version()
    registry.use(version)
    if registry.current_version() != previous:  # `default` is stored as ''
        _tell_plugins(registry.current_version(), previous)
    click.echo(f"model {version} is now in use (was {previous or 'default'}); a running daemon switches before its next batch")


@models.command("rollback")
def models_rollback() -> None:
    """Go back to the model that was in use before the current one.

    \b
    Example:
      footsort models rollback
    """
    from footsort.model import registry

    previous = registry.current_version()
    now = registry.rollback()
    _tell_plugins(now, previous)
    click.echo(f"model {now or 'default'} is now in use (was {previous or 'default'})")


COMMANDS = [retrain, review, corrections_cmd, models]
