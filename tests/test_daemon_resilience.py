"""daemon under trouble (issue 9): failed moves retried, one watcher per inbox, undone failed/ files stay."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from fakes import RED, ColourClassifier, RecordingHost, jpeg_bytes
from loguru import logger
from test_daemon import Running, listing

from footsort.errors import FootsortError
from footsort.sorting import daemon, sorter
from footsort.sorting.journal import Journal
from footsort.sorting.sorter import Sorter, undo
from footsort.system.config import load as load_config


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemon, "RETRY_FIRST", 0.1, raising=False)


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).rstrip("\n")), level="DEBUG", format="{level} {message}")
    yield lines
    logger.remove(sink)


class Broken:
    """Makes every rename fail with `err` (say sapatos/ read-only) until `fixed()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, err: int = errno.EROFS) -> None:
        self.on = True
        self.tries = 0
        real = sorter.rename_noreplace

        def rename(src: Path, dst: Path) -> None:
            if self.on:
                self.tries += 1
                raise OSError(err, os.strerror(err), str(dst))
            real(src, dst)

        monkeypatch.setattr(sorter, "rename_noreplace", rename)

    def fixed(self) -> None:
        self.on = False


def pending_rows() -> list:
    with Journal.open(readonly=True) as j:
        return [e for e in j.recent(100) if e.state == "pending"]


def test_a_move_that_failed_is_retried_with_backoff_until_it_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     fast_retries: None, log_lines: list[str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    broken = Broken(monkeypatch)
    (inbox / "a.jpg").write_bytes(jpeg_bytes(RED, tag=1))
    d = Running(inbox, ColourClassifier())
    d.wait_for(lambda: broken.tries >= 3)  # tried again, more than once, while the folder is read-only
    assert listing(inbox) == {"a.jpg"}
    waits = [float(line.split("trying again in ")[1].split(" s")[0]) for line in log_lines if "trying again in" in line]
    assert waits[:3] == [0.1, 0.2, 0.4]  # backoff: each wait twice the one before
    broken.fixed()
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())  # no restart, no change to the file needed
    d.finish()
    assert listing(inbox) == {"tsinelas/a.jpg"}
    assert pending_rows() == []
    assert any("stopped; sorted 1 (tsinelas 1)" in line for line in log_lines)


def test_a_journal_that_cannot_be_written_does_not_stop_watch_and_its_rows_are_settled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_retries: None) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    broken = Broken(monkeypatch, errno.ENOSPC)
    real_finish = Journal.finish

    def finish(self: Journal, entry_id: int, state: str, reason: str | None = None) -> None:
        if broken.on:  # the disk is full: the journal cannot record that the move was given up
            raise FootsortError("cannot write the journal: database or disk is full")
        real_finish(self, entry_id, state, reason)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "finish", finish)
    (inbox / "a.jpg").write_bytes(jpeg_bytes(RED, tag=1))
    d = Running(inbox, ColourClassifier())
    d.wait_for(lambda: broken.tries >= 2)
    assert d.thread.is_alive() and pending_rows()  # still watching; the intent row could not be settled yet
    broken.fixed()
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())
    d.wait_for(lambda: not pending_rows())
    d.finish()
    with Journal.open(readonly=True) as j:
        states = sorted(e.state for e in j.recent(100))
    assert "done" in states and set(states) <= {"done", "aborted"}


def test_a_second_watcher_of_an_inbox_is_refused_with_the_pid(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "a.jpg").parent.mkdir()
    (inbox / "a.jpg").write_bytes(jpeg_bytes(RED, tag=1))
    d = Running(inbox, ColourClassifier())
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())  # the first watcher is at work
    cfg = load_config()
    stop = threading.Event()
    stop.set()  # a second watcher that did start would stop at once
    with Journal.open() as j, pytest.raises(FootsortError) as err:
        daemon.run([inbox], cfg, ColourClassifier(), host=RecordingHost(), journal=j, stop=stop)
    assert f"another footsort watch (PID {os.getpid()}) is already watching {inbox}" in str(err.value)
    assert "\n" not in str(err.value)
    d.finish()
    with Journal.open() as j:  # once the first one stopped, a new watcher may start
        daemon.run([inbox], cfg, ColourClassifier(), host=RecordingHost(), journal=j, stop=stop)
    assert listing(inbox) == {"tsinelas/a.jpg"}  # the lock lives in the data folder, not in the person's inbox


def test_files_undone_out_of_failed_stay_in_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = Running(inbox, ColourClassifier(), incomplete_seconds=0, rescan_seconds=0.2)
    (inbox / "notes.jpg").write_bytes(b"not a photo at all")
    d.wait_for(lambda: (inbox / "failed/notes.jpg").exists())
    d.wait_for(lambda: not pending_rows())  # the file is in place a moment before its row is marked done
    with Journal.open() as j:  # `footsort undo` from another terminal while the daemon runs
        results = undo(j.undoable(paths=[inbox / "failed/notes.jpg"]), Sorter(j))
    assert results[0].restored == inbox / "notes.jpg"
    time.sleep(1.5)  # several rescans and settle times
    d.finish()
    assert listing(inbox) == {"notes.jpg"}  # docs/daemon.md: a file undo put back is left alone


def test_the_exit_summary_is_in_plain_words(tmp_path: Path, log_lines: list[str]) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "photo.jpg").write_bytes(b"")  # a placeholder still being written: tried again and again
    d = Running(inbox, ColourClassifier(), settle_seconds=0.05)
    time.sleep(2.5)
    counts = d.finish()
    assert counts["retry"] >= 2
    stopped = [line for line in log_lines if "stopped;" in line][-1]
    assert stopped.endswith("stopped; 1 file still in the inbox, to be tried again"), stopped
    assert "retry" not in stopped


def test_footsort_watch_on_a_watched_inbox_is_one_line(tmp_path: Path, fake_cli: dict) -> None:
    from click.testing import CliRunner

    from footsort.cli import main

    inbox = tmp_path / "inbox"
    (inbox / "a.jpg").parent.mkdir()
    (inbox / "a.jpg").write_bytes(jpeg_bytes(RED, tag=1))
    d = Running(inbox, ColourClassifier())
    d.wait_for(lambda: (inbox / "tsinelas/a.jpg").exists())
    try:
        result = CliRunner().invoke(main, ["watch", str(inbox)], catch_exceptions=False)
    finally:
        d.finish()
        logger.remove()  # the CLI pointed loguru at CliRunner's (now closed) stderr
        logger.add(sys.stderr, level="WARNING")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1
    assert errors[0].startswith(f"error: another footsort watch (PID {os.getpid()}) is already watching {inbox}")
