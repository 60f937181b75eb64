"""journal: intent-first rows, orphan claiming, lookups, undo selection."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from footsort.errors import FootsortError
from footsort.sorting.journal import Details, Journal
from footsort.system import paths


def test_wal_journal_in_the_data_dir_with_a_run_lock(tmp_path: Path) -> None:
    with Journal.open() as j:
        assert paths.journal_file().exists()
        mode = sqlite3.connect(paths.journal_file()).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        lock = paths.data_dir() / "runs" / f"{j.run}.lock"
        assert lock.exists()
    assert not lock.exists()


def test_intent_then_finish_records_everything(tmp_path: Path) -> None:
    with Journal.open() as j:
        d = Details("tsinelas", 0.93, {"tsinelas": 0.93, "sapatos": 0.07}, "v3", "")
        i = j.begin("sort", tmp_path / "a.jpg", tmp_path / "tsinelas/a.jpg", method="rename", hash="h1", size=10, details=d)
        e = j.get(i)
        assert e.state == "pending" and e.finished is None
        j.finish(i, "done")
        e = j.get(i)
        assert (e.state, e.hash, e.size, e.details.label, e.details.model_version) == ("done", "h1", 10, "tsinelas", "v3")
        assert e.details.probabilities == {"tsinelas": 0.93, "sapatos": 0.07}
        assert e.source == tmp_path / "a.jpg" and e.destination == tmp_path / "tsinelas/a.jpg"
        assert e.finished >= e.started


def test_only_rows_of_dead_runs_are_claimed(tmp_path: Path) -> None:
    dead = Journal.open()
    dead_id = dead.begin("sort", tmp_path / "a.jpg", tmp_path / "t/a.jpg")
    dead.close()  # the process is gone: its run lock is free
    alive = Journal.open()
    alive_id = alive.begin("sort", tmp_path / "b.jpg", tmp_path / "t/b.jpg")
    with Journal.open() as me:
        own = me.begin("sort", tmp_path / "c.jpg", tmp_path / "t/c.jpg")
        claimed = [e.id for e in me.claim_orphans()]
        assert claimed == [dead_id]
        assert alive_id not in claimed and own not in claimed
        with Journal.open() as other:  # a second repairer does not get rows being repaired
            assert other.claim_orphans() == []
    alive.close()


def test_sorted_copy_and_left_in_place(tmp_path: Path) -> None:
    with Journal.open() as j:
        a = j.begin("sort", tmp_path / "a.jpg", tmp_path / "t/a.jpg", hash="h")
        assert j.sorted_copy("h") is None  # pending is not sorted yet
        j.finish(a, "done")
        assert j.sorted_copy("h").id == a
        assert j.sorted_copy("other") is None
        u = j.begin("undo", tmp_path / "t/a.jpg", tmp_path / "a.jpg", hash="h", undo_of=a)
        j.finish(u, "done")
        assert j.get(a).undone_by == u
        assert j.sorted_copy("h") is None
        assert j.left_in_place(tmp_path / "a.jpg", "h").id == u
        assert j.left_in_place(tmp_path / "a.jpg", "changed") is None
        d = j.note("duplicate", tmp_path / "b.jpg", hash="h2", destination=tmp_path / "t/x.jpg")
        assert j.left_in_place(tmp_path / "b.jpg", "h2").id == d


def test_undoable_selections(tmp_path: Path) -> None:
    first = Journal.open()
    old = first.begin("sort", tmp_path / "old.jpg", tmp_path / "t/old.jpg")
    first.finish(old, "done")
    first.close()
    cut = time.time()
    with Journal.open() as j:
        ids = []
        for name, action in [("a", "sort"), ("b", "review"), ("c", "failed")]:
            i = j.begin(action, tmp_path / f"{name}.jpg", tmp_path / f"{action}/{name}.jpg")
            j.finish(i, "done")
            ids.append(i)
        j.note("duplicate", tmp_path / "d.jpg", hash="x")
        aborted = j.begin("sort", tmp_path / "e.jpg", tmp_path / "t/e.jpg")
        j.finish(aborted, "aborted")
        assert [e.id for e in j.undoable()] == ids[::-1]  # the last run, newest first
        assert [e.id for e in j.undoable(last=2)] == ids[:0:-1]
        assert {e.id for e in j.undoable(since=cut)} == set(ids)
        assert [e.id for e in j.undoable(paths=[tmp_path / "review"])] == [ids[1]]
        assert [e.id for e in j.undoable(paths=[tmp_path / "t/old.jpg"])] == [old]
        assert [e.id for e in j.recent(2)] == [aborted, aborted - 1]


def test_read_only_journal(tmp_path: Path) -> None:
    with Journal.open(readonly=True) as j:
        assert j.recent() == []
        assert not paths.journal_file().exists()
        with pytest.raises(FootsortError):
            j.begin("sort", tmp_path / "a.jpg", None)
    Journal.open().close()
    with Journal.open(readonly=True) as j:
        assert j.recent() == []


def test_a_journal_that_cannot_be_written_stops_with_a_clear_error(tmp_path: Path) -> None:
    j = Journal.open()
    j._conn.close()  # as good as a full disk or a damaged file, for the caller
    with pytest.raises(FootsortError, match="cannot write the journal .*journal.sqlite3"):
        j.begin("sort", tmp_path / "a.jpg", tmp_path / "t/a.jpg")
    j.close()


def test_what_the_library_and_corrections_read(tmp_path: Path) -> None:
    with Journal.open() as j:
        model = Details("tsinelas", 0.9, {"tsinelas": 0.9, "sapatos": 0.1}, "v1")
        a = j.begin("sort", tmp_path / "a.jpg", tmp_path / "lib/tsinelas/a.jpg", hash="ha", size=3, details=model)
        j.finish(a, "done")
        b = j.begin("review", tmp_path / "b.jpg", tmp_path / "lib/review/b.jpg", hash="hb", details=model)
        j.finish(b, "done")
        human = j.begin("sort", tmp_path / "lib/review/b.jpg", tmp_path / "lib/sapatos/b.jpg", hash="hb",
                        details=Details("sapatos"))
        j.finish(human, "done")
        j.begin("sort", tmp_path / "c.jpg", tmp_path / "lib/tsinelas/c.jpg", hash="hc")  # pending: not placed
        run = j.run
    with Journal.open(readonly=True) as j:
        assert [e.id for e in j.placed()] == [a, b, human]
        assert set(j.placed_at([str(tmp_path / "lib/review/b.jpg"), str(tmp_path / "nowhere.jpg")])) == \
            {str(tmp_path / "lib/review/b.jpg")}
        assert {h: e.id for h, e in j.decided_by_model(["ha", "hb", "hc"]).items()} == {"ha": a, "hb": b}
        assert [e.id for e in j.model_sorts("tsinelas", 5)] == [a] and j.model_sorts("sapatos", 5) == []
        assert j.moved_by(run, tmp_path / "lib/sapatos/b.jpg") == human and j.moved_by("other", tmp_path) is None
        assert j.get(a).details.probabilities == {"tsinelas": 0.9, "sapatos": 0.1}


def test_peek_creates_nothing_and_reads_a_damaged_or_empty_journal_as_empty(tmp_path: Path) -> None:
    with Journal.peek() as j:
        assert j.recent() == [] and j.placed_at(["/x.jpg"]) == {}
    assert not paths.journal_file().exists()
    paths.journal_file().parent.mkdir(parents=True, exist_ok=True)
    paths.journal_file().write_bytes(b"")  # an empty file: no table yet
    with Journal.open(readonly=True) as j:
        assert j.placed() == []
    paths.journal_file().write_bytes(b"this is not a database" * 100)
    with Journal.peek() as j:
        assert j.recent() == [] and j.moved_by("run", tmp_path) is None
    with pytest.raises(FootsortError, match="damaged"):
        Journal.open(readonly=True)
