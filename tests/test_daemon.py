"""daemon: startup scan, following the inbox, hot model swap, duplicates, undo, clean stop."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from fakes import (
    BLUE,
    MUDDY,
    RED,
    ColourClassifier,
    RecordingHost,
    jpeg_bytes,
    write_image,
)

from footsort.sorting import daemon
from footsort.sorting.journal import Journal
from footsort.sorting.sorter import Sorter, undo
from footsort.system.config import load as load_config


class Running:
    """A daemon in a thread, with helpers to wait for results."""

    def __init__(self, inbox: Path, classifier: object, **watch: float) -> None:
        self.inbox = inbox
        self.cfg = load_config(overrides={"watch": {"settle_seconds": 0.1, "rescan_seconds": 0.5,
                                                    "incomplete_seconds": 5, **watch}})
        self.host = RecordingHost()
        self.journal = Journal.open()
        self.stop = threading.Event()
        self.counts: Counter[str] = Counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.classifier = classifier
        self.thread.start()

    def _run(self) -> None:
        self.counts = daemon.run([self.inbox], self.cfg, self.classifier, host=self.host,
                                 journal=self.journal, stop=self.stop)

    def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    def finish(self) -> Counter[str]:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.journal.close()
        return self.counts


def listing(inbox: Path) -> set[str]:
    return {str(p.relative_to(inbox)) for p in inbox.rglob("*") if p.is_file()}


def test_sorts_what_is_there_then_what_arrives(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write_image(inbox / "old.jpg", RED, 1)
    d = Running(inbox, ColourClassifier())
    d.wait_for(lambda: (inbox / "tsinelas/old.jpg").exists())
    write_image(inbox / "new.jpg", BLUE, 2)
    write_image(inbox / "unsure.jpg", MUDDY, 3)
    (inbox / "notes.txt").write_text("not a photo")
    d.wait_for(lambda: listing(inbox) >= {"sapatos/new.jpg", "review/unsure.jpg"})
    counts = d.finish()
    assert listing(inbox) == {"tsinelas/old.jpg", "sapatos/new.jpg", "review/unsure.jpg", "notes.txt"}
    assert counts == Counter(sort=2, review=1)
    assert d.host.names()[0] == "daemon_started" and d.host.names()[-1] == "daemon_stopped"


def test_a_new_model_is_used_between_batches_without_restart(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    current = {"clf": ColourClassifier("v1")}
    d = Running(inbox, lambda: current["clf"])
    write_image(inbox / "a.jpg", RED, 1)
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())
    current["clf"] = ColourClassifier("v2")  # what the registry's holder does after `models use`
    write_image(inbox / "b.jpg", RED, 2)
    d.wait_for(lambda: (inbox / "tsinelas/b.jpg").exists())
    d.finish()
    with Journal.open() as j:
        versions = {e.source.name: e.details.model_version for e in j.recent(5) if e.action == "sort"}
    assert versions == {"a.jpg": "v1", "b.jpg": "v2"}


def test_duplicates_and_undone_files_are_left_alone_across_rescans(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    a = write_image(inbox / "a.jpg", RED, 1)
    d = Running(inbox, ColourClassifier(), rescan_seconds=0.2)
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())
    (inbox / "again.jpg").write_bytes((inbox / "tsinelas/a.jpg").read_bytes())
    d.wait_for(lambda: d.host.events and sum(1 for e in d.journal.recent(10) if e.action == "duplicate") == 1)
    with Journal.open() as j:  # `footsort undo` from another terminal while the daemon runs
        undo(j.undoable(paths=[inbox / "tsinelas/a.jpg"]), Sorter(j))
    d.wait_for(lambda: a.exists())
    time.sleep(1.0)  # several rescans
    counts = d.finish()
    assert listing(inbox) == {"a.jpg", "again.jpg"}
    assert counts["sort"] == 1 and counts["duplicate"] == 1
    with Journal.open() as j:
        assert sum(1 for e in j.recent(20) if e.action == "duplicate") == 1  # noted once, not per rescan


def test_a_placeholder_that_is_filled_later_is_not_failed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = Running(inbox, ColourClassifier(), settle_seconds=0.1)
    (inbox / "photo.jpg").write_bytes(b"")  # Firefox creates an empty placeholder first
    time.sleep(0.8)  # settled, does not decode: waited for, not failed
    assert (inbox / "photo.jpg").exists() and not (inbox / "failed").exists()
    (inbox / "photo.jpg.part").write_bytes(jpeg_bytes(RED, tag=5))
    os.replace(inbox / "photo.jpg.part", inbox / "photo.jpg")
    d.wait_for(lambda: (inbox / "tsinelas/photo.jpg").exists())
    d.finish()
    assert listing(inbox) == {"tsinelas/photo.jpg"}


def test_stop_on_signals_sets_the_stop_event() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with daemon.stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 2
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stop.is_set()
    assert signal.getsignal(signal.SIGTERM) == before


def test_layout_of_picks_the_deepest_inbox(tmp_path: Path) -> None:
    from footsort.sorting.pipeline import Layout

    outer, inner = Layout(tmp_path, ()), Layout(tmp_path / "x", ())
    layouts = {tmp_path: outer, tmp_path / "x": inner}
    assert daemon.layout_of(tmp_path / "x" / "a.jpg", layouts) is inner
    assert daemon.layout_of(tmp_path / "a.jpg", layouts) is outer
