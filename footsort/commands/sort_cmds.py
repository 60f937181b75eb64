"""`footsort watch`, `sort`, `undo`, `log`: the main job and its safety net. Heavy imports stay inside."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

import click

from footsort.commands.options import (
    FUSE_FROM,
    device_option,
    engine_option,
    injected_factory,
    load_classifier,
    load_config,
    model_option,
    open_journal,
    plugin_host,
    quiet_logs,
)
from footsort.errors import FootsortError
from footsort.system.progress import progress
from footsort.system.safe_text import printable as _p


def _sort_options(f):
    f = click.option("--dry-run", is_flag=True, help="Print what would happen; touch nothing.")(f)
    f = click.option("--recursive", is_flag=True, default=None, help="Also sort files in subfolders.")(f)
    f = click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Library root for tsinelas/ sapatos/ review/ failed/ (default: inside each inbox).")(f)
    f = click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
                     help="Confidence needed to sort; below it files go to review/ (default 0.885).")(f)
    return engine_option(device_option()(model_option(f)))


def _folders(paths: Iterable[Path], what: str) -> list[Path]:
    out = []
    for p in paths:
        p = Path(os.path.abspath(p.expanduser()))
        if not p.is_dir():
            raise FootsortError(f"{what} {p} is not a folder; create it (mkdir -p {p}) or check the path")
        out.append(p)
    return out


@click.command()
@click.argument("inboxes", nargs=-1, required=True, type=click.Path(path_type=Path))
@_sort_options
@click.option("--poll", type=click.FloatRange(min=0), default=None,
              help="Poll every SECONDS instead of native events (network shares); 0: native.")
@click.option("--settle", type=click.FloatRange(min=0), default=None,
              help="Seconds a file's size and time must hold still before it is sorted (default 1).")
@click.option("--ui", is_flag=True,
              help="Also serve the review page (`footsort ui`) from this daemon; on a terminal its URL with the "
                   "token is printed, and `footsort ui --url` prints it anywhere. E.g. footsort watch --ui ~/inbox.")
@click.option("--ui-host", default=None, metavar="ADDRESS",
              help="Address the page listens on (implies --ui; default 127.0.0.1). Anything but loopback lets other "
                   "machines reach it (token still needed), e.g. --ui-host 192.168.1.20.")
@click.option("--ui-port", type=click.IntRange(0, 65535), default=None,
              help="Port of the page (implies --ui; default 8765, another free one when it is busy), "
                   "e.g. --ui-port 9000.")
def watch(inboxes: tuple[Path, ...], threshold: float | None, output: Path | None, recursive: bool | None,
          dry_run: bool, device: str | None, model_path: Path | None, poll: float | None,
          settle: float | None, engine: str | None, ui: bool, ui_host: str | None, ui_port: int | None) -> None:
    """Sort photos dropped into INBOX into tsinelas/, sapatos/, review/ and failed/, until stopped.

    Files already in the inbox are sorted first. Stop with Ctrl+C or SIGTERM; every move is
    journaled, so `footsort undo` can put files back. With --ui the daemon also serves the review
    page (as `footsort ui` does, same token rules) until it stops.

    \b
    Example:
      footsort watch ~/Pictures/inbox
      footsort watch ~/inbox /mnt/share/inbox --poll 5 --threshold 0.9
      footsort watch --ui ~/Pictures/inbox
    """
    import threading

    from footsort.sorting import daemon
    from footsort.sorting.reloading import follow_in_use

    ui = ui or ui_host is not None or ui_port is not None
    if ui and dry_run:
        raise FootsortError("--ui cannot be used with --dry-run: a key pressed on the review page moves the photo; "
                            "drop one of them")
    if ui:
        from footsort.ui.serving import require

        require()  # before the model loads: say at once that the extra is missing
    cfg = load_config(threshold=threshold, output=output, recursive=recursive, device=device, engine=engine,
                      poll=poll, settle_seconds=settle)
    folders = _folders(inboxes, "inbox")
    classifier = follow_in_use(load_classifier(cfg, model_path, fuse="background"), cfg, model_path,
                               load=injected_factory())  # hot reload unless pinned
    journal = open_journal(dry_run)
    host = plugin_host(cfg)
    stop = threading.Event()
    page = None
    try:
        if ui:
            page = _open_page(folders, cfg, classifier.classes, host, ui_host or "127.0.0.1", ui_port)
        with daemon.stop_on_signals(stop):
            daemon.run(folders, cfg, classifier, host=host, journal=journal, stop=stop, dry_run=dry_run,
                       alongside=[_serving(page)] if page is not None else [])
    finally:
        if page is not None:
            page.close()
        host.close()
        journal.close()


def _open_page(folders: list[Path], cfg, classes: tuple[str, ...], host, ui_host: str, ui_port: int | None):
    """The review page over the daemon's libraries, sharing its settings and plugin host (not serving yet)."""
    from footsort.ui.library import Library, find_roots
    from footsort.ui.serving import DEFAULT_PORT, Page, exposure_warning

    warning = exposure_warning(ui_host)
    if warning:
        click.echo(warning, err=True)
    lib = Library(find_roots(folders, cfg, classes), tuple(classes), cfg.sort.review_folder)
    return Page.open(lib, host, ui_host, DEFAULT_PORT if ui_port is None else ui_port)


@contextmanager
def _serving(page) -> Iterator[None]:
    """The page on a thread while the daemon watches, its address in the runtime file for `footsort ui --url`."""
    import sys

    from loguru import logger

    from footsort.ui import runtime

    with page.in_background(), runtime.advertise(page.info("watch")):
        if sys.stdout.isatty():  # a person at a terminal: the URL to open, as `footsort ui` prints it
            click.echo(f"review page: open {page.url}")
            logger.info(f"review page at {page.address}")
        else:  # a service or a pipe: no token in logs; the runtime file (0600) holds it
            logger.info(f"review page at {page.address}; `footsort ui --url` prints the address with its token")
        yield


def _collect(paths: Iterable[Path], layouts_for, recursive: bool) -> tuple[list, list[tuple[Path, str]]]:
    """Items to sort from files and folders, and (path, reason) for what is left alone."""
    from footsort.sorting.pipeline import Item
    from footsort.sorting.watcher import QUIET_REASONS, walk, why_not

    items, skipped = [], []
    for given in paths:
        given = Path(os.path.abspath(given.expanduser()))
        if not os.path.lexists(given):
            raise FootsortError(f"{given} does not exist")
        root = given if given.is_dir() and not given.is_symlink() else given.parent
        layout = layouts_for(root.parent)
        if root not in layout.outputs():
            layout = layouts_for(root)
        # a class, review or failed folder given again (say review/ with a lower threshold) sorts into
        # its own library, and its files are not "footsort's own output" this time
        outputs = layout.outputs() - {root}
        found = walk(given, outputs, recursive) if root == given else iter([given])
        for path in found:
            reason = why_not(path, root, outputs)
            if reason is None:
                items.append(Item(path, layout))
            elif path == given or reason not in QUIET_REASONS:  # named files always get an answer
                skipped.append((path, reason))
    return items, skipped


@click.command("sort")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_sort_options
@click.pass_context
def sort_cmd(ctx: click.Context, paths: tuple[Path, ...], threshold: float | None, output: Path | None,
             recursive: bool | None, dry_run: bool, device: str | None, model_path: Path | None,
             engine: str | None) -> None:
    """Sort photos once: files, or every photo in folders (class folders go inside each folder).

    Shows a progress bar and a summary; `footsort log` lists each move, `-v` logs each file.

    \b
    Example:
      footsort sort ~/Pictures/inbox
      footsort sort --dry-run --threshold 0.9 photo.jpg ~/Downloads
    """
    from footsort.sorting.pipeline import Pipeline, layout_for, policy_for
    from footsort.sorting.sorter import Sorter

    cfg = load_config(threshold=threshold, output=output, recursive=recursive, device=device, engine=engine)
    classifier = load_classifier(cfg, model_path, fuse="never")
    classes = classifier.classes
    items, skipped = _collect(paths, lambda inbox: layout_for(inbox, cfg, classes), cfg.sort.recursive)
    if len(items) >= FUSE_FROM:  # fusing costs a few seconds of CPU: worth it only over many photos
        getattr(classifier, "fuse_in_background", lambda: None)()
    for path, reason in skipped:
        click.echo(f"skipped {_p(path)}: {_p(reason)}", err=True)
    journal = open_journal(dry_run)
    host = plugin_host(cfg)
    counts: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    with quiet_logs(ctx):  # a bar (or dry-run lines) instead of a log line per file
        try:
            with Pipeline(classifier, Sorter(journal, dry_run=dry_run), journal, host, policy_for(cfg, classes),
                          batch_size=cfg.sort.batch_size, max_pixels=cfg.sort.max_pixels) as pipeline, \
                    progress(len(items), "Sorting") as bar:
                for outcome in pipeline.run(items):
                    bar.update(1)
                    counts[outcome.action] += 1
                    if outcome.action == "sort":
                        labels[outcome.label] += 1
                    if dry_run:
                        where = f" -> {_p(outcome.destination)}" if outcome.destination else " (stays)"
                        click.echo(f"{outcome.action:<9} {_p(outcome.source)}{where}"
                                   + (f"  [{_p(outcome.reason)}]" if outcome.reason else ""))
        finally:
            host.close()
            journal.close()
    click.echo(_summary(counts, labels, dry_run))
    if counts["error"]:
        raise FootsortError(f"{counts['error']} file(s) could not be moved; see the messages above")


def _summary(counts: Counter[str], labels: Counter[str], dry_run: bool) -> str:
    from footsort.sorting.pipeline import summary

    return ("dry run, nothing moved: " if dry_run else "") + summary(counts, labels)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


def parse_since(text: str, now: float | None = None) -> float:
    """A time as a unix timestamp: `30m`, `2h`, `1d`, `1w` ago, or an ISO date/time (local)."""
    now = time.time() if now is None else now
    match = _RELATIVE.match(text.strip().lower())
    if match:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match[2]]
        return now - float(match[1]) * unit
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise FootsortError(f"--since {text!r} is not a time: use e.g. 30m, 2h, 1d or 2024-05-01T14:00") from None


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--last", type=click.IntRange(min=1), default=None, help="Undo the last N moves.")
@click.option("--since", default=None, help="Undo moves since a time: 30m, 2h, 1d or 2024-05-01T14:00.")
@click.option("--dry-run", is_flag=True, help="Print what would be put back; touch nothing.")
def undo(paths: tuple[Path, ...], last: int | None, since: str | None, dry_run: bool) -> None:
    """Put sorted files back where they came from (never overwriting); default: the last run.

    PATH... undoes the moves of those sorted files (or of every file under a folder).

    \b
    Example:
      footsort undo                 # the whole last run
      footsort undo --last 3
      footsort undo --since 2h
      footsort undo ~/inbox/review/IMG_0042.jpg
    """
    from footsort.sorting.sorter import Sorter
    from footsort.sorting.sorter import undo as undo_entries

    if sum(x is not None and x != () for x in (last, since, paths)) > 1:
        raise FootsortError("use one of --last, --since or PATH... at a time")
    journal = open_journal(dry_run)
    try:
        wanted = [Path(os.path.abspath(p.expanduser())) for p in paths]
        entries = journal.undoable(last=last, since=parse_since(since) if since else None, paths=wanted)
        if not entries:
            click.echo("nothing to undo")
            return
        results = undo_entries(entries, Sorter(journal, dry_run=dry_run))
    finally:
        journal.close()
    verb = "would put back" if dry_run else "put back"
    for r in results:
        if r.restored is not None:
            click.echo(f"{verb} {_p(r.entry.destination)} -> {_p(r.restored)}")
        else:
            click.echo(f"not undone: {_p(r.entry.destination)}: {_p(r.problem)}", err=True)
    done = sum(r.restored is not None for r in results)
    click.echo(f"{verb} {done} of {len(results)} file(s)")


@click.command("log")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many actions.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def log_cmd(limit: int, as_json: bool) -> None:
    """Show recent actions from the journal, oldest first.

    \b
    Example:
      footsort log
      footsort log -n 100 --json | jq .destination
    """
    import json

    from footsort.learning.corrections import HUMAN
    from footsort.sorting.journal import Journal

    with Journal.open(readonly=True) as journal:
        entries = list(reversed(journal.recent(limit)))
    if not entries:
        click.echo("the journal is empty: nothing has been sorted yet")
        return
    for e in entries:
        when = datetime.fromtimestamp(e.finished or e.started).strftime("%Y-%m-%d %H:%M:%S")
        if as_json:
            click.echo(json.dumps({
                "id": e.id, "time": when, "action": e.action, "state": e.state, "source": _p(e.source),
                "destination": _p(e.destination) if e.destination else None, "label": e.details.label,
                "confidence": e.details.confidence, "probabilities": dict(e.details.probabilities),
                "model_version": e.details.model_version, "hash": e.hash, "reason": _p(e.details.reason),
                "undone_by": e.undone_by,
            }, ensure_ascii=False))
            continue
        by_hand = (e.action == "sort" and e.details.label and e.details.confidence is None
                   and e.details.model_version == HUMAN)
        action = "labelled" if by_hand else e.action  # footsort review: a person chose the class
        what = action if e.state == "done" else f"{action} ({e.state})"
        if e.undone_by:
            what += " (undone)"
        if by_hand:
            conf = f" {e.details.label} (by hand)"
        else:
            conf = f" {e.details.label} {e.details.confidence:.2f}" if e.details.confidence is not None else ""
        dest = f" -> {_p(e.destination)}" if e.destination else ""
        reason = f"  [{_p(e.details.reason)}]" if e.details.reason and e.action != "sort" else ""
        click.echo(f"{when}  #{e.id:<5} {what:<10}{conf}  {_p(e.source)}{dest}{reason}")


COMMANDS = [watch, sort_cmd, undo, log_cmd]
