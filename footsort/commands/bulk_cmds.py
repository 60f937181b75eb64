"""`footsort bulk` and `footsort apply`: classify many photos into a results file, then carry it out."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click

from footsort.commands.options import (
    device_option,
    injected_factory,
    load_config,
    model_option,
    open_journal,
    plugin_host,
    quiet_logs,
)
from footsort.errors import FootsortError
from footsort.system.safe_text import printable as _p


@click.command("bulk")
@click.argument("source")
@click.option("--out", "out", required=True, help="Results file to write (.parquet; a local path or s3://... URL).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one process, no Ray; ray: Ray Data, on a local Ray or the cluster at --address.")
@click.option("--address", default=None, help="Ray cluster to join (e.g. ray://head:10001 or auto); default: start a local Ray.")
@model_option
@device_option()
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Confidence needed to sort; below it the action is review (default 0.885).")
@click.option("--recursive", is_flag=True, help="SOURCE is a folder: include its subfolders.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Photos per model call (default: local 32, ray 64 on CPUs / 256 on GPUs).")
@click.option("--actors", type=click.IntRange(min=1), default=None,
              help="ray: model copies (default: one per GPU, else about half the cores).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="local: decoding threads.")
@click.pass_context
def bulk(ctx: click.Context, source: str, out: str, engine: str, address: str | None, model_path: Path | None,
         device: str | None, threshold: float | None, recursive: bool, batch_size: int | None,
         actors: int | None, workers: int) -> None:
    """Classify every photo of SOURCE into a Parquet results file; nothing is moved (see `footsort apply`).

    SOURCE is a folder, a glob ('photos/**/*.jpg') or a manifest: a .parquet or .csv file with a `uri`
    column of paths (relative ones are relative to the manifest) or URLs (s3://, gs://, ... when the
    fsspec package for that store is installed). One row per photo: uri, label, confidence, action
    (sort / review / failed), reason, error, model_version, content_hash, probabilities.

    \b
    Example:
      footsort bulk ~/archive --recursive --out archive.parquet
      footsort bulk manifest.parquet --out results.parquet --engine ray --address auto
      footsort apply archive.parquet
    """
    from footsort.bulk.job import BulkJob, run_bulk
    from footsort.bulk.manifest import parse_source

    if address and engine != "ray":
        raise FootsortError("--address joins a Ray cluster: add --engine ray")
    cfg = load_config(threshold=threshold, device=device)
    job = BulkJob(parse_source(source, recursive), out, engine, address,  # type: ignore[arg-type]
                  batch_size, workers, actors, progress=sys.stderr.isatty())
    with quiet_logs(ctx):  # a summary instead of a log line per photo
        stats = run_bulk(job, cfg, model_path, load=injected_factory())
    click.echo(f"{_p(out)}: to apply: {stats.summary()}")
    if stats.stages:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in stats.stages.items())
        click.echo(f"time per stage (summed over threads): {parts}", err=True)
    if stats.photos:
        click.echo(f"carry it out with: footsort apply {_p(out)}   (preview: --dry-run)", err=True)


@click.command("apply")
@click.argument("results")
@click.option("--dry-run", is_flag=True, help="Print what would happen; move nothing, write nothing.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Library root for tsinelas/ sapatos/ review/ failed/ (default: beside each photo).")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Object storage: where the copy plan goes (default: RESULTS.copy-plan.csv).")
@click.option("--plan-prefix", default=None,
              help="Object storage: copy into PREFIX/<folder>/ (default: beside each photo).")
@click.pass_context
def apply_cmd(ctx: click.Context, results: str, dry_run: bool, output: Path | None, plan_path: Path | None,
              plan_prefix: str | None) -> None:
    """Carry out a `footsort bulk` results file: move local photos into their folders.

    Moves go through the same journal as `footsort sort`: collision-safe, undoable with
    `footsort undo`, plugins told. A photo that changed since `bulk` looked at it is left alone.
    Photos in object storage are not moved: a copy plan (CSV: source, destination, ...) is written.

    \b
    Example:
      footsort apply results.parquet --dry-run
      footsort apply results.parquet
      footsort undo                      # puts back what the last apply moved
    """
    from footsort.bulk.apply import CopyPlan, Mover, apply_rows, default_plan_path
    from footsort.bulk.results import read_rows
    from footsort.sorting.sorter import Sorter

    cfg = load_config(output=output)
    plan = CopyPlan(plan_path or default_plan_path(results), cfg, plan_prefix, dry_run)
    batches = read_rows(results)
    first = next(batches, None)  # a missing or foreign results file is said before the journal opens
    journal = open_journal(dry_run)
    host = plugin_host(cfg)
    counts: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    with quiet_logs(ctx):
        try:
            mover = Mover(cfg, Sorter(journal, dry_run=dry_run), journal, host)
            for done in apply_rows(_chain(first, batches) if first is not None else iter(()), mover, plan):
                counts[done.action] += 1
                if done.action == "sort":
                    labels[done.label] += 1
                if dry_run or done.action in ("skip", "error", "vanished"):
                    where = f" -> {_p(done.destination)}" if done.destination else ""
                    click.echo(f"{done.action:<9} {_p(done.uri)}{where}"
                               + (f"  [{_p(done.reason)}]" if done.reason else ""), err=not dry_run)
        finally:
            host.close()
            journal.close()
    from footsort.sorting.pipeline import summary

    planned = counts.pop("planned", 0)
    said = summary(counts, labels) if counts else ""
    if planned:
        verb = "would write" if dry_run else "wrote"
        said = (said + "; " if said else "") + f"{verb} a copy plan for {planned} photo(s) in object storage: {_p(plan.path)}"
    click.echo(("dry run, nothing moved: " if dry_run else "") + (said or "nothing to apply"))
    if counts["error"]:
        raise FootsortError(f"{counts['error']} file(s) could not be moved; see the messages above")


def _chain(first, rest):
    yield first
    yield from rest


COMMANDS = [bulk, apply_cmd]
