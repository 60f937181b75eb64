"""learning.review: the review queue, the model's guess per photo and a person's label, without a terminal."""

from __future__ import annotations

from pathlib import Path

from fakes import MUDDY, RED, ColourClassifier, RecordingHost, write_image

from footsort.learning import corrections, review
from footsort.model.prediction import Prediction
from footsort.sorting.journal import Journal
from footsort.sorting.sorter import Sorter, file_hash


def test_the_queue_is_the_images_of_each_review_folder_by_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_image(a / "review/z.jpg", RED, 1)
    write_image(a / "review/m.png", RED, 2)
    (a / "review/notes.txt").write_text("hi")
    write_image(a / "review/.hidden.jpg", RED, 3)
    write_image(a / "review/deeper/x.jpg", RED, 4)
    write_image(b / "sapatos/s.jpg", RED, 5)
    assert review.waiting([a, b], "review") == [review.Waiting(a, a / "review/m.png"), review.Waiting(a, a / "review/z.jpg")]


def test_the_journaled_guess_is_used_and_the_model_loads_only_when_needed(tmp_path: Path) -> None:
    photo = write_image(tmp_path / "review/a.jpg", MUDDY, 1)
    history = {"h1": [corrections.Decision(1, "review", "tsinelas", "v7", photo, 0.6, {"tsinelas": 0.6, "sapatos": 0.4}),
                      corrections.Decision(2, "sort", "sapatos", corrections.HUMAN, photo, None, {"sapatos": 1.0})]}
    loads: list[int] = []
    guesses = review.Guesses(history, lambda: loads.append(1) or ColourClassifier())
    said = guesses.of(photo, "h1")
    assert said == Prediction("tsinelas", 0.6, {"tsinelas": 0.6, "sapatos": 0.4}, "v7") and not loads
    asked = guesses.of(photo, "not journaled")
    assert asked is not None and asked.label == "tsinelas" and asked.model_version == "fake-1"
    guesses.of(photo, "still not journaled")
    assert loads == [1]
    (tmp_path / "review/broken.jpg").write_bytes(b"not a photo")
    assert guesses.of(tmp_path / "review/broken.jpg", "h9") is None


def test_a_label_is_a_journaled_human_move_and_one_correction_for_plugins(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    photo = write_image(root / "review/a.jpg", MUDDY, 1)
    content = file_hash(photo)
    said = Prediction("tsinelas", 0.6, {"tsinelas": 0.6, "sapatos": 0.4}, "v7")
    host = RecordingHost()
    with Journal.open() as journal:
        dest = review.label(Sorter(journal), review.Waiting(root, photo), content, "sapatos", said, host)
        entry = journal.recent(1)[0]
    assert dest == root / "sapatos/a.jpg" and dest.exists() and not photo.exists()
    assert (entry.action, entry.details.label, entry.details.model_version) == ("sort", "sapatos", corrections.HUMAN)
    assert entry.details.reason == "labelled by hand in footsort review (the model said tsinelas 0.60)"
    assert [(e.name, e.old_label, e.new_label) for e in host.events] == [("correction_seen", "review", "sapatos")]


def test_a_dry_run_label_moves_nothing_and_tells_no_one(tmp_path: Path) -> None:
    root = tmp_path / "inbox"
    photo = write_image(root / "review/a.jpg", MUDDY, 1)
    host = RecordingHost()
    with Journal.open() as journal:
        dest = review.label(Sorter(journal, dry_run=True), review.Waiting(root, photo), file_hash(photo), "sapatos",
                            None, host)
    assert dest == root / "sapatos/a.jpg" and photo.exists() and not dest.exists() and not host.events
