"""corrections: the person's file moves read against the journal (pure judging, then a real sort with a fake model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes import BLUE, MUDDY, RED, ColourClassifier, RecordingHost, write_image

from footsort.learning import corrections as cr
from footsort.learning.corrections import Correction, Decision, LabelledExample
from footsort.sorting.decide import Policy
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Layout, Pipeline
from footsort.sorting.sorter import Sorter, undo

CLASSES = ColourClassifier.classes
P = Path("/lib/sapatos/a.jpg")


def d(action: str, label: str, version: str = "v1", i: int = 1) -> Decision:
    return Decision(i, action, label, version, Path(f"/lib/{label if action == 'sort' else 'review'}/a.jpg"))


# -- pure judging ------------------------------------------------------------------------------------

def test_moved_from_another_class_folder_is_a_correction() -> None:
    got = cr.judge(P, "h", "sapatos", [d("sort", "tsinelas")])
    assert got == Correction(P, "h", "tsinelas", "sapatos", guess="tsinelas", model_version="v1", entry_id=1)


def test_moved_out_of_review_is_a_correction_even_when_the_guess_was_right() -> None:
    got = cr.judge(P, "h", "sapatos", [d("review", "sapatos")])
    assert isinstance(got, Correction) and (got.old_label, got.new_label, got.guess) == ("review", "sapatos", "sapatos")


def test_left_where_the_model_put_it_is_an_accepted_example() -> None:
    assert cr.judge(P, "h", "sapatos", [d("sort", "sapatos")]) == LabelledExample(P, "h", "sapatos", "accepted")


def test_never_seen_by_footsort_is_an_added_example() -> None:
    assert cr.judge(P, "h", "sapatos", []) == LabelledExample(P, "h", "sapatos", "added")


def test_a_hand_labelled_row_does_not_hide_the_models_decision() -> None:
    # `footsort review` journals its move as a sort with no model version: the model's review still counts
    history = [d("review", "tsinelas", i=1), d("sort", "sapatos", version=cr.HUMAN, i=2)]
    got = cr.judge(P, "h", "sapatos", history)
    assert isinstance(got, Correction) and got.old_label == "review" and got.entry_id == 1


def test_the_latest_model_decision_wins() -> None:
    history = [d("sort", "tsinelas", "v1", 1), d("sort", "sapatos", "v2", 2)]
    assert isinstance(cr.judge(P, "h", "sapatos", history), LabelledExample)


def test_find_judges_each_content_once_and_leaves_out_contradictions() -> None:
    files = [(Path("/l/sapatos/a.jpg"), "h1", "sapatos"), (Path("/l/sapatos/a (1).jpg"), "h1", "sapatos"),
             (Path("/l/sapatos/b.jpg"), "h2", "sapatos"), (Path("/l/tsinelas/b.jpg"), "h2", "tsinelas"),
             (Path("/l/tsinelas/c.jpg"), "h3", "tsinelas")]
    found = cr.find(files, {"h3": [d("sort", "sapatos")]})
    assert [e.hash for e in found.examples] == ["h1"]  # two copies of one photo: one example
    assert [(c.path.name, c.old_label, c.new_label) for c in found.corrections] == [("c.jpg", "sapatos", "tsinelas")]
    assert sorted(p.name for p in found.conflicts) == ["b.jpg", "b.jpg"]
    assert found.pairs() == {("sapatos", "tsinelas"): 1}


# -- against a real journal, after a real sort --------------------------------------------------------

@pytest.fixture
def sorted_inbox(tmp_path: Path) -> Path:
    """red -> tsinelas/, blue -> sapatos/, muddy -> review/, all journaled by the pipeline."""
    inbox = tmp_path / "inbox"
    files = [write_image(inbox / "red.jpg", RED, 1), write_image(inbox / "blue.jpg", BLUE, 2),
             write_image(inbox / "blue2.jpg", BLUE, 3), write_image(inbox / "muddy.jpg", MUDDY, 4)]
    with Journal.open() as journal, Pipeline(ColourClassifier(), Sorter(journal), journal, RecordingHost(),
                                             Policy(0.8, CLASSES)) as p:
        list(p.run(Item(f, Layout(inbox, CLASSES)) for f in files))
    assert (inbox / "review/muddy.jpg").exists() and (inbox / "tsinelas/red.jpg").exists()
    return inbox


def test_scan_finds_moves_out_of_class_and_review_folders(sorted_inbox: Path) -> None:
    inbox = sorted_inbox
    (inbox / "tsinelas/red.jpg").rename(inbox / "sapatos/red.jpg")  # the model was wrong
    (inbox / "review/muddy.jpg").rename(inbox / "tsinelas/muddy.jpg")  # labelled from the review queue
    (inbox / "sapatos/blue2.jpg").unlink()  # deleting is not a label
    write_image(inbox / "tsinelas/mine.jpg", RED, 9)  # dropped straight into a class folder
    (inbox / "sapatos/.hidden.jpg").write_bytes(b"x")
    history = cr.read_history()
    assert cr.library_roots([], history) == [inbox]
    found = cr.scan([inbox], CLASSES, history=history)
    got = {(c.path.name, c.old_label, c.new_label, c.guess) for c in found.corrections}
    assert got == {("red.jpg", "tsinelas", "sapatos", "tsinelas"), ("muddy.jpg", "review", "tsinelas", "tsinelas")}
    assert {(e.path.name, e.source) for e in found.examples} == {("blue.jpg", "accepted"), ("mine.jpg", "added")}


def test_an_undone_sort_is_no_evidence(sorted_inbox: Path) -> None:
    inbox = sorted_inbox
    with Journal.open() as journal:
        entry = next(e for e in journal.undoable(last=10) if e.source.name == "red.jpg")
        undo([entry], Sorter(journal))
    shutil.move(inbox / "red.jpg", inbox / "sapatos/red.jpg")  # then the person filed it by hand
    found = cr.scan([inbox], CLASSES)
    assert not found.corrections
    assert ("red.jpg", "added") in {(e.path.name, e.source) for e in found.examples}


def test_no_journal_means_every_photo_is_an_added_example(tmp_path: Path) -> None:
    write_image(tmp_path / "lib/sapatos/a.jpg", BLUE, 1)
    assert cr.read_history() == {}
    found = cr.scan([tmp_path / "lib"], CLASSES)
    assert [(e.label, e.source) for e in found.examples] == [("sapatos", "added")]


def test_corrections_are_announced_to_plugins_once(sorted_inbox: Path) -> None:
    (sorted_inbox / "tsinelas/red.jpg").rename(sorted_inbox / "sapatos/red.jpg")
    found = cr.scan([sorted_inbox], CLASSES)
    host = RecordingHost()
    assert cr.announce(found.corrections, host, dry_run=True) == list(found.corrections)
    assert host.events == []
    cr.announce(found.corrections, host)
    cr.announce(found.corrections, host)
    assert host.names() == ["correction_seen"]
    e = host.events[0]
    assert (e.path, e.old_label, e.new_label) == (sorted_inbox / "sapatos/red.jpg", "tsinelas", "sapatos")
