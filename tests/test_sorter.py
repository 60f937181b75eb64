"""sorter: moves that never overwrite, copies across filesystems, crash repair, undo."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from footsort.sorting import sorter
from footsort.sorting.journal import Journal
from footsort.sorting.sorter import (
    Move,
    Sorter,
    Vanished,
    file_hash,
    recover,
    rename_noreplace,
    settle,
    undo,
)


@pytest.fixture
def journal():
    with Journal.open() as j:
        yield j


def make(path: Path, data: bytes = b"content") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_rename_noreplace_refuses_to_replace(tmp_path: Path) -> None:
    a, b = make(tmp_path / "a", b"A"), make(tmp_path / "b", b"B")
    with pytest.raises(FileExistsError):
        rename_noreplace(a, b)
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    rename_noreplace(a, tmp_path / "c")
    assert not a.exists() and (tmp_path / "c").read_bytes() == b"A"


@pytest.mark.parametrize("fallback", ["link", "check-then-rename"])
def test_fallbacks_refuse_to_replace_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: str) -> None:
    monkeypatch.setattr(sorter, "_native_noreplace", lambda s, d: False)
    if fallback == "check-then-rename":
        def no_links(*a, **k):
            raise OSError(errno.EPERM, "no hard links here")
        monkeypatch.setattr(os, "link", no_links)
    a, b = make(tmp_path / "a", b"A"), make(tmp_path / "b", b"B")
    with pytest.raises(FileExistsError):
        rename_noreplace(a, b)
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    rename_noreplace(a, tmp_path / "c")
    assert not a.exists() and (tmp_path / "c").read_bytes() == b"A"


def test_move_takes_a_free_name_and_journals(tmp_path: Path, journal: Journal) -> None:
    make(tmp_path / "out/a.jpg", b"old")
    src = make(tmp_path / "in/a.jpg", b"new")
    dest = Sorter(journal).move(Move(src, tmp_path / "out", "sort", file_hash(src), 3))
    assert dest == tmp_path / "out/a (1).jpg"
    assert dest.read_bytes() == b"new" and (tmp_path / "out/a.jpg").read_bytes() == b"old"
    assert not src.exists()
    (entry,) = journal.recent(1)
    assert (entry.state, entry.method, entry.destination) == ("done", "rename", dest)


def test_name_taken_at_the_last_moment_gets_the_next_name(tmp_path: Path, journal: Journal,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = make(tmp_path / "in/a.jpg", b"mine")
    real = sorter.rename_noreplace
    calls = []

    def racing(s: Path, d: Path) -> None:
        if not calls:
            make(d, b"theirs")  # another program creates the very name we chose
        calls.append(d)
        real(s, d)

    monkeypatch.setattr(sorter, "rename_noreplace", racing)
    dest = Sorter(journal).move(Move(src, tmp_path / "out", "sort"))
    assert dest == tmp_path / "out/a (1).jpg" and dest.read_bytes() == b"mine"
    assert (tmp_path / "out/a.jpg").read_bytes() == b"theirs"
    assert journal.recent(1)[0].destination == dest


def test_copy_path_verifies_and_removes_the_source_last(tmp_path: Path, journal: Journal) -> None:
    src = make(tmp_path / "in/a.jpg", os.urandom(3000))
    h = file_hash(src)
    (tmp_path / "out").mkdir()
    dest = Sorter(journal)._journaled(Move(src, tmp_path / "out", "sort", h, 3000), "a.jpg", copy=True)
    assert file_hash(dest) == h and not src.exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.jpg"]  # no temporary left
    entry = journal.recent(1)[0]
    assert entry.method == "copy" and entry.state == "done" and entry.temp.name.startswith(".footsort-")


def test_copy_of_a_changing_file_is_abandoned(tmp_path: Path, journal: Journal) -> None:
    src = make(tmp_path / "in/a.jpg", b"now")
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError, match="changed"):
        Sorter(journal)._journaled(Move(src, tmp_path / "out", "sort", "hash-of-before"), "a.jpg", copy=True)
    assert src.read_bytes() == b"now"
    assert list((tmp_path / "out").iterdir()) == []
    assert journal.recent(1)[0].state == "aborted"


def test_across_real_filesystems(tmp_path: Path, journal: Journal) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) here")
    src = make(shm / f"footsort-test-{os.getpid()}.jpg", os.urandom(2000))
    h = file_hash(src)
    dest = Sorter(journal).move(Move(src, tmp_path / "out", "sort", h))
    assert file_hash(dest) == h and not src.exists()
    assert journal.recent(1)[0].method == "copy"


def test_vanished_source(tmp_path: Path, journal: Journal) -> None:
    with pytest.raises(Vanished):
        Sorter(journal).move(Move(tmp_path / "gone.jpg", tmp_path / "out", "sort"))


def test_dry_run_touches_nothing_and_plans_distinct_names(tmp_path: Path, journal: Journal) -> None:
    a, b = make(tmp_path / "in1/a.jpg"), make(tmp_path / "in2/a.jpg")
    s = Sorter(None, dry_run=True)
    assert s.move(Move(a, tmp_path / "out", "sort")) == tmp_path / "out/a.jpg"
    assert s.move(Move(b, tmp_path / "out", "sort")) == tmp_path / "out/a (1).jpg"
    assert a.exists() and b.exists() and not (tmp_path / "out").exists()


# -- crash repair: every state a crash can leave ---------------------------------------------------

def pending(journal: Journal, src: Path, dst: Path, method: str = "rename", data: bytes = b"content",
            temp: Path | None = None) -> int:
    import hashlib

    return journal.begin("sort", src, dst, method=method, hash=hashlib.sha256(data).hexdigest(),
                         size=len(data), temp=temp)


def test_settle_every_crash_state(tmp_path: Path) -> None:
    src, dst, tmp = tmp_path / "in/a.jpg", tmp_path / "out/a.jpg", tmp_path / "out/.footsort-x.part"
    with Journal.open() as j:
        def check(method: str, setup, expect_state: str, expect_src: bool, expect_dst: bool) -> None:
            for p in (src, dst, tmp):
                p.unlink(missing_ok=True)
            setup()
            state, _ = settle(j.get(pending(j, src, dst, method, temp=tmp if method == "copy" else None)))
            assert (state, src.exists(), dst.exists(), tmp.exists()) == (expect_state, expect_src, expect_dst, False)

        check("rename", lambda: make(src), "aborted", True, False)  # crashed before the rename
        check("rename", lambda: make(dst), "done", False, True)  # crashed after it
        check("rename", lambda: (make(src), os.link(src, dst)), "done", False, True)  # between link and unlink
        check("rename", lambda: (make(dst), make(src, b"a new file")), "done", True, True)  # new file, same name
        check("rename", lambda: (make(src), make(dst, b"someone else's")), "aborted", True, True)
        check("copy", lambda: (make(src), make(tmp, b"cont")), "aborted", True, False)  # partial copy
        check("copy", lambda: (make(src), make(tmp)), "aborted", True, False)  # full copy, not renamed
        check("copy", lambda: (make(src), make(dst)), "done", False, True)  # renamed, source not removed
        check("copy", lambda: make(dst), "done", False, True)
        check("copy", lambda: (make(src), make(dst, b"someone else's")), "aborted", True, True)
        check("copy", lambda: None, "vanished", False, False)


def test_recover_settles_rows_of_dead_processes(tmp_path: Path) -> None:
    src, dst = make(tmp_path / "in/a.jpg"), tmp_path / "out/a.jpg"
    dead = Journal.open()
    i = pending(dead, src, dst)
    dst.parent.mkdir()
    os.link(src, dst)
    dead.close()
    with Journal.open() as j:
        assert [e.id for e in recover(j)] == [i]
        assert j.get(i).state == "done" and "recovered" in j.get(i).details.reason
        assert not src.exists() and dst.exists()
        assert recover(j) == []


# -- undo -------------------------------------------------------------------------------------------

def test_undo_puts_back_never_overwriting(tmp_path: Path, journal: Journal) -> None:
    s = Sorter(journal)
    a, b = make(tmp_path / "in/a.jpg", b"A"), make(tmp_path / "in/b.jpg", b"B")
    da = s.move(Move(a, tmp_path / "out", "sort", file_hash(a)))
    db = s.move(Move(b, tmp_path / "out", "sort", file_hash(b)))
    make(a, b"a new a.jpg")  # the person dropped another a.jpg meanwhile
    db.write_bytes(b"edited")  # and edited the sorted b.jpg
    results = {r.entry.destination: r for r in undo(journal.undoable(), s)}
    assert results[da].restored == tmp_path / "in/a (1).jpg"
    assert (tmp_path / "in/a (1).jpg").read_bytes() == b"A" and a.read_bytes() == b"a new a.jpg"
    assert results[db].restored is None and "changed" in results[db].problem
    assert db.exists()
    assert [e.destination for e in journal.undoable()] == [db]  # only the one not undone is left


def test_undo_dry_run(tmp_path: Path, journal: Journal) -> None:
    a = make(tmp_path / "in/a.jpg")
    da = Sorter(journal).move(Move(a, tmp_path / "out", "sort", file_hash(a)))
    (r,) = undo(journal.undoable(), Sorter(journal, dry_run=True))
    assert r.restored == a and da.exists() and not a.exists()


@pytest.mark.parametrize("folder", ["tsinelas", "review", "failed"])
def test_a_linked_output_folder_is_not_followed(tmp_path: Path, journal: Journal, folder: str) -> None:
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    outside.mkdir()
    src = make(inbox / "a.jpg", b"A")
    (inbox / folder).symlink_to(outside, target_is_directory=True)
    action = "sort" if folder == "tsinelas" else folder
    for dry_run in (True, False):
        with pytest.raises(sorter.UnsafeFolder, match=f"{folder} is a symbolic link .*to {outside}.*real folder"):
            Sorter(journal, dry_run=dry_run).move(Move(src, inbox / folder, action))
    assert src.read_bytes() == b"A" and list(outside.iterdir()) == [] and not journal.recent(5)


def test_a_dangling_link_or_a_file_in_place_of_a_folder_is_refused(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    src = make(inbox / "a.jpg", b"A")
    (inbox / "review").symlink_to(tmp_path / "nowhere")
    make(inbox / "failed", b"a file")
    for name in ("review", "failed"):
        with pytest.raises(sorter.UnsafeFolder) as info:
            Sorter(None).move(Move(src, inbox / name, name))  # type: ignore[arg-type]
        assert isinstance(info.value, OSError) and "\n" not in str(info.value)
    assert src.exists() and not (tmp_path / "nowhere").exists()


def test_undo_back_into_a_linked_inbox_still_works(tmp_path: Path, journal: Journal) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "inbox").symlink_to(real, target_is_directory=True)
    src = make(tmp_path / "inbox" / "a.jpg", b"A")
    Sorter(journal).move(Move(src, real / "sapatos", "sort", hash=file_hash(src)))
    (restored,) = undo(journal.recent(1), Sorter(journal))
    assert restored.restored == src and src.read_bytes() == b"A"
