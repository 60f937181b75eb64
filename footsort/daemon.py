"""The watch daemon: repair, startup scan, watch loop, clean stop; the model is asked for per batch."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from loguru import logger

from footsort import events
from footsort.config import Config
from footsort.journal import Journal
from footsort.pipeline import Item, Layout, Pipeline, as_provider, layout_for, policy_for
from footsort.sorter import Sorter
from footsort.watcher import Watcher


def layout_of(path: Path, layouts: dict[Path, Layout]) -> Layout:
    """The layout of the inbox that holds `path` (the deepest one when inboxes nest)."""
    owners = [inbox for inbox in layouts if inbox in path.parents]
    return layouts[max(owners, key=lambda p: len(p.parts))]


def run(inboxes: Sequence[Path], cfg: Config, classifier: object, *, host: object, journal: Journal | None,
        stop: threading.Event, dry_run: bool = False, watcher: Watcher | None = None) -> Counter[str]:
    """Sort what is in the inboxes, then follow them until `stop` is set; counts of outcomes.

    The journal should already be repaired (sorter.recover) by whoever opened it.
    """
    inboxes = [Path(os.path.abspath(p)) for p in inboxes]
    provider = as_provider(classifier)
    clf = provider()
    layouts = {inbox: layout_for(inbox, cfg, clf.classes) for inbox in inboxes}
    outputs = frozenset().union(*(lay.outputs() for lay in layouts.values()))
    if watcher is None:
        watcher = Watcher(inboxes, outputs=outputs, settle=cfg.watch.settle_seconds, poll=cfg.watch.poll,
                          rescan=cfg.watch.rescan_seconds, recursive=cfg.sort.recursive)
    retry_delay = max(cfg.watch.settle_seconds, 1.0)
    counts: Counter[str] = Counter()
    pipeline = Pipeline(provider, Sorter(journal, dry_run=dry_run), journal, host, policy_for(cfg, clf.classes),
                        batch_size=cfg.sort.batch_size, incomplete_seconds=cfg.watch.incomplete_seconds,
                        honour_undo=True)
    host.emit(events.DaemonStarted(tuple(inboxes), getattr(clf, "version", "")))  # type: ignore[attr-defined]
    mode = "polling" if watcher.polling else "watching"
    logger.info(f"{mode} {', '.join(map(str, inboxes))} (threshold {cfg.sort.threshold:.2f}"
                f"{', dry run' if dry_run else ''}); stop with Ctrl+C")
    try:
        with pipeline:
            for batch in watcher.batches(stop):
                for outcome in pipeline.run(Item(p, layout_of(p, layouts)) for p in batch):
                    counts[outcome.action] += 1
                    if outcome.action == "retry":
                        watcher.retry(outcome.source, retry_delay)
                    elif outcome.left_in_place or dry_run:
                        watcher.leave(outcome.source)
                    if stop.is_set():
                        break  # the rest of the batch stays in the inbox for next time
    finally:
        watcher.stop()
        host.emit(events.DaemonStopped(tuple(inboxes)))  # type: ignore[attr-defined]
        done = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing"
        logger.info(f"stopped; handled: {done}")
    return counts


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGINT/SIGTERM (a second Ctrl+C interrupts at once); restore handlers after."""
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logger.info(f"{signal.Signals(signum).name}: finishing the current file, then stopping")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
