"""Nothing lost, ever: a crash at every step of a move, and a real daemon killed with SIGKILL.

After any crash and a restart (repair + sort again), every original file (by hash) exists exactly
once, no temporary copy is left, no journal row is pending, and the journal's finished moves point
at exactly the files in the output folders.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from fakes import BLUE, RED, ColourClassifier, RecordingHost, jpeg_bytes, write_image

from footsort.sorting import sorter
from footsort.sorting.decide import Policy
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Layout, Pipeline
from footsort.sorting.watcher import ignore_reason

REPO = Path(__file__).resolve().parents[1]
CLASSES = ColourClassifier.classes


class Crash(BaseException):
    """The process dies here (BaseException: no `except Exception` in footsort can swallow it)."""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def check_invariants(originals: dict[str, str], roots: list[Path], layouts: list[Layout],
                     untouched: frozenset[Path] = frozenset()) -> None:
    """Every original exactly once; no temporaries; no pending rows; the journal matches the disk."""
    files = all_files(*roots)
    assert not [p for p in files if p.name.startswith(sorter.TEMP_PREFIX)], "temporary copy left behind"
    counts = Counter(digest(p) for p in files)
    for name, h in originals.items():
        assert counts[h] == 1, f"{name}: found {counts[h]} times"
    assert sum(counts.values()) == len(originals), "a file appeared from nowhere"
    outputs = frozenset().union(*(lay.outputs() for lay in layouts))
    in_outputs = {p for p in files if any(parent in outputs for parent in p.parents)} - untouched
    with Journal.open(readonly=True) as j:
        assert not j._query("SELECT * FROM actions WHERE state = 'pending'"), "a move was left pending"
        moved = j._query("SELECT * FROM actions WHERE state = 'done' AND action IN ('sort', 'review', 'failed')"
                         " AND undone_by IS NULL")
    destinations = Counter(e.destination for e in moved)
    assert all(n == 1 for n in destinations.values())
    assert set(destinations) == in_outputs, "journal and disk disagree"
    for e in moved:
        assert e.hash is None or digest(e.destination) == e.hash


# -- a crash at every step, in process --------------------------------------------------------------

class Failpoints:
    """Counts steps (before and after each wrapped call) and crashes at step `at`."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.step = 0

    def tick(self) -> None:
        self.step += 1
        if self.step == self.at:
            raise Crash(f"crash at step {self.at}")

    def wrap(self, fn):
        def wrapped(*args, **kwargs):
            self.tick()
            result = fn(*args, **kwargs)
            self.tick()
            return result
        return wrapped


def sort_inbox(inbox: Path, layout: Layout) -> None:
    """Recover, then sort every candidate file in the inbox (what a restarted daemon does)."""
    with Journal.open() as j:
        sorter.recover(j)
        items = [Item(p, layout) for p in sorted(inbox.iterdir())
                 if p.is_file() and ignore_reason(p, inbox, layout.outputs()) is None]
        with Pipeline(ColourClassifier(), sorter.Sorter(j), j, RecordingHost(), Policy(0.8, CLASSES), batch_size=3) as p:
            list(p.run(items))


def make_inbox(inbox: Path, layout: Layout) -> dict[str, str]:
    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        write_image(inbox / f"photo{i}.jpg", RED if i % 2 else BLUE, i)
    write_image(layout.root / "tsinelas" / "photo1.jpg", RED, 99)  # a name collision with a file already there
    (inbox / "broken.jpg").write_bytes(b"not an image")
    originals = {str(p): digest(p) for p in all_files(inbox, layout.root)}
    (inbox / "photo0 copy.jpg").write_bytes((inbox / "photo0.jpg").read_bytes())  # a duplicate
    return originals


@pytest.mark.parametrize("where", ["same filesystem", "across filesystems"])
def test_a_crash_at_any_step_is_repaired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    if where == "across filesystems":
        shm = Path("/dev/shm")
        if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("no second filesystem (/dev/shm) here")
    at, crashes = 0, 0
    while True:
        at += 1
        base = (Path("/dev/shm") / f"footsort-crash-{os.getpid()}-{at}") if where == "across filesystems" \
            else tmp_path / f"run{at}"
        inbox, library = base / "inbox", tmp_path / f"library{at}"
        layout = Layout(library, CLASSES)
        monkeypatch.setenv("FOOTSORT_HOME", str(tmp_path / f"home{at}"))  # a fresh journal per try
        try:
            originals = make_inbox(inbox, layout)
            duplicate_hash = digest(inbox / "photo0.jpg")
            fp = Failpoints(at)
            with monkeypatch.context() as m:
                for name in ("rename_noreplace", "_fsync_dir", "_copy_verified"):
                    m.setattr(sorter, name, fp.wrap(getattr(sorter, name)))
                for name in ("link", "unlink"):
                    m.setattr(os, name, fp.wrap(getattr(os, name)))
                for name in ("begin", "finish", "redirect", "note"):
                    m.setattr(Journal, name, fp.wrap(getattr(Journal, name)))
                try:
                    sort_inbox(inbox, layout)
                    finished = True
                except Crash:
                    finished, crashes = False, crashes + 1
            sort_inbox(inbox, layout)  # restart: repair, then sort what is left
            left = [p for p in inbox.iterdir() if p.is_file()]
            assert [digest(p) for p in left] == [duplicate_hash], f"crash at step {at}: inbox holds {left}"
            left[0].unlink()  # the duplicate stays in the inbox by policy; the rest must be exactly once
            check_invariants(originals, [inbox, library], [layout], frozenset({library / "tsinelas/photo1.jpg"}))
            assert digest(library / "tsinelas/photo1.jpg") == originals[str(library / "tsinelas/photo1.jpg")]
        finally:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
        if finished:
            break
    print(f"{where}: {crashes} crash points exercised")
    assert crashes >= 30, f"only {crashes} crash points were exercised"


# -- a real daemon, killed with SIGKILL ---------------------------------------------------------------

def start_daemon(inbox: Path, home: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "FOOTSORT_HOME": str(home)}
    with open(log, "ab") as err:  # footsort with the fake model (tests/fake_footsort.py)
        return subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_footsort.py"), "watch", "--settle", "0.2",
                                 str(inbox)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)


def wait_until(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


KILLS = 8


def test_sigkill_at_random_moments_during_bursts(tmp_path: Path, isolated_home: Path) -> None:
    rng = random.Random(1234)
    inbox, log = tmp_path / "inbox", tmp_path / "daemon.log"
    inbox.mkdir()
    originals: dict[str, str] = {}
    n = 0
    proc = start_daemon(inbox, isolated_home, log)
    try:
        for burst in range(KILLS):
            moved_before = log.read_text().count(" -> ")
            for _ in range(40):
                data = jpeg_bytes(RED if n % 3 else BLUE, tag=n)
                tmp = inbox / f"img{n}.jpg.part"
                tmp.write_bytes(data)
                os.rename(tmp, inbox / f"img{n}.jpg")  # arrives complete, as from a browser
                originals[f"img{n}.jpg"] = hashlib.sha256(data).hexdigest()
                n += 1
            if burst % 2:
                time.sleep(rng.uniform(0.1, 2.0))  # anywhere: start-up, settling, scanning, moving
            else:  # in the middle of moving files
                wait_until(lambda: log.read_text().count(" -> ") > moved_before, 15)
                time.sleep(rng.uniform(0.0, 0.05))
            proc.kill()
            proc.wait()
            proc = start_daemon(inbox, isolated_home, log)
        started = log.read_text().count("watching ")
        assert wait_until(lambda: log.read_text().count("watching ") > started, 30), log.read_text()[-2000:]
        assert wait_until(lambda: not any(p.is_file() for p in inbox.iterdir()), 60), "files left unsorted"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_invariants(originals, [inbox], [Layout(inbox, CLASSES)])
    with Journal.open(readonly=True) as j:
        repaired = j._query("SELECT * FROM actions WHERE reason LIKE 'recovered after a crash%'")
    print(f"{len(originals)} files, {KILLS} kills, {len(repaired)} interrupted moves repaired")
