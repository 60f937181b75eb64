"""pipeline: load -> predict in batches -> decide -> move + journal -> events, with a fake model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fakes import BLUE, MUDDY, RED, ColourClassifier, RecordingHost, write_image

from footsort.plugins import events
from footsort.sorting import pipeline as pl
from footsort.sorting.decide import Policy
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Layout, Pipeline, as_provider, layout_for
from footsort.sorting.sorter import Sorter
from footsort.system.config import load as load_config

CLASSES = ColourClassifier.classes


@pytest.fixture
def journal():
    with Journal.open() as j:
        yield j


def run(paths, layout, journal=None, clf=None, host=None, dry_run=False, **kw):
    clf = clf or ColourClassifier()
    host = host if host is not None else RecordingHost()
    policy = Policy(threshold=kw.pop("threshold", 0.8), classes=CLASSES, duplicates=kw.pop("duplicates", "skip"))
    with Pipeline(clf, Sorter(journal, dry_run=dry_run), journal, host, policy, **kw) as p:
        return list(p.run(Item(Path(x), layout) for x in paths))


def test_sorts_reviews_and_fails_with_journal_and_events(tmp_path: Path, journal: Journal) -> None:
    inbox = tmp_path / "inbox"
    files = [write_image(inbox / "red.jpg", RED, 1), write_image(inbox / "blue.png", BLUE, 2),
             write_image(inbox / "muddy.jpg", MUDDY, 3)]
    bad = inbox / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    host = RecordingHost()
    outcomes = {o.source.name: o for o in run([*files, bad], Layout(inbox, CLASSES), journal, host=host)}
    assert outcomes["red.jpg"].destination == inbox / "tsinelas/red.jpg"
    assert outcomes["blue.png"].destination == inbox / "sapatos/blue.png"
    assert outcomes["muddy.jpg"].destination == inbox / "review/muddy.jpg"
    assert outcomes["muddy.jpg"].label == "tsinelas" and "below the threshold" in outcomes["muddy.jpg"].reason
    assert outcomes["bad.jpg"].destination == inbox / "failed/bad.jpg"
    assert "not a recognised image" in outcomes["bad.jpg"].reason
    assert sorted(os.listdir(inbox)) == ["failed", "review", "sapatos", "tsinelas"]
    rows = {e.source.name: e for e in journal.recent(10)}
    assert rows["red.jpg"].details.model_version == "fake-1" and rows["red.jpg"].hash
    assert set(rows["red.jpg"].details.probabilities) == {"tsinelas", "sapatos"}
    assert "not a recognised image" in rows["bad.jpg"].details.reason
    assert sorted(host.names()) == ["file_failed", "file_reviewed", "file_sorted", "file_sorted"]
    sorted_event = next(e for e in host.events if isinstance(e, events.FileSorted) and e.label == "tsinelas")
    assert sorted_event.destination == inbox / "tsinelas/red.jpg" and sorted_event.confidence > 0.9


def test_batches_and_a_new_model_between_batches(tmp_path: Path, journal: Journal) -> None:
    inbox = tmp_path / "inbox"
    files = [write_image(inbox / f"{i}.jpg", RED, i) for i in range(7)]
    old, new = ColourClassifier("v1"), ColourClassifier("v2")
    calls = []

    def provider():
        calls.append(1)
        return old if len(calls) <= 2 else new  # promoted after the first batch

    outcomes = run(files, Layout(inbox, CLASSES), journal, clf=provider, batch_size=3)
    assert [o.model_version for o in outcomes] == ["v1"] * 3 + ["v2"] * 4
    assert old.batches == [3] and new.batches == [3, 1]
    assert len({o.destination for o in outcomes}) == 7 and all(o.action == "sort" for o in outcomes)


def test_loading_overlaps_with_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    files = [write_image(inbox / f"{i}.jpg", RED, i) for i in range(6)]
    loaded: list[str] = []
    real_load = pl.load
    monkeypatch.setattr(pl, "load", lambda item, m, *rest: (loaded.append(item.path.name), real_load(item, m, *rest))[1])
    seen_during_first_batch: list[int] = []

    class Slow(ColourClassifier):
        def predict_images(self, images):
            if not seen_during_first_batch:
                time.sleep(0.3)
                seen_during_first_batch.append(len(loaded))
            return super().predict_images(images)

    run(files, Layout(inbox, CLASSES), clf=Slow(), batch_size=2, dry_run=True)
    assert seen_during_first_batch[0] >= 4  # the next batches were decoded while the model ran


def test_duplicates_skip_policy_in_one_batch_and_across_runs(tmp_path: Path, journal: Journal) -> None:
    inbox = tmp_path / "inbox"
    a = write_image(inbox / "a.jpg", RED, 1)
    b = inbox / "b.jpg"
    b.write_bytes(a.read_bytes())
    first = run([a, b], Layout(inbox, CLASSES), journal)
    assert [o.action for o in first] == ["sort", "duplicate"]
    assert b.exists() and "tsinelas/a.jpg" in first[1].reason
    c = inbox / "c.jpg"
    c.write_bytes((inbox / "tsinelas/a.jpg").read_bytes())
    assert [o.action for o in run([c], Layout(inbox, CLASSES), journal)] == ["duplicate"]
    assert [o.action for o in run([b], Layout(inbox, CLASSES), journal)] == ["skip"]  # already noted
    (inbox / "tsinelas/a.jpg").unlink()  # the person deleted the sorted copy: c is no longer a duplicate
    assert [o.action for o in run([c], Layout(inbox, CLASSES), journal)] == ["sort"]


@pytest.mark.parametrize("policy, action, folder", [("review", "review", "review"), ("sort", "sort", "tsinelas")])
def test_other_duplicate_policies(tmp_path: Path, journal: Journal, policy: str, action: str, folder: str) -> None:
    inbox = tmp_path / "inbox"
    a = write_image(inbox / "a.jpg", RED, 1)
    b = inbox / "b.jpg"
    b.write_bytes(a.read_bytes())
    out = run([a, b], Layout(inbox, CLASSES), journal, duplicates=policy)
    assert out[1].action == action and out[1].destination == inbox / folder / "b.jpg"


def test_files_that_do_not_decode_yet_are_retried_while_recent(tmp_path: Path, journal: Journal) -> None:
    inbox = tmp_path / "inbox"
    partial = inbox / "partial.jpg"
    partial.parent.mkdir()
    partial.write_bytes(write_image(tmp_path / "whole.jpg", RED).read_bytes()[:300])
    (o,) = run([partial], Layout(inbox, CLASSES), journal, incomplete_seconds=30)
    assert o.action == "retry" and partial.exists()
    old = time.time() - 60
    os.utime(partial, (old, old))
    (o,) = run([partial], Layout(inbox, CLASSES), journal, incomplete_seconds=30)
    assert o.action == "failed" and o.destination == inbox / "failed/partial.jpg"


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    a = write_image(inbox / "a.jpg", RED, 1)
    b = inbox / "b.jpg"
    b.write_bytes(a.read_bytes())
    host = RecordingHost()
    out = run([a, b], Layout(inbox, CLASSES), None, host=host, dry_run=True)
    assert [o.action for o in out] == ["sort", "duplicate"]
    assert out[0].destination == inbox / "tsinelas/a.jpg"
    assert sorted(os.listdir(inbox)) == ["a.jpg", "b.jpg"] and host.events == []


def test_output_root_and_configured_folder_names(tmp_path: Path, journal: Journal) -> None:
    cfg = load_config(overrides={"sort": {"output": str(tmp_path / "library"), "review_folder": "check"}})
    layout = layout_for(tmp_path / "inbox", cfg, CLASSES)
    files = [write_image(tmp_path / "inbox/a.jpg", RED, 1), write_image(tmp_path / "inbox/m.jpg", MUDDY, 2)]
    out = run(files, layout, journal)
    assert [o.destination for o in out] == [tmp_path / "library/tsinelas/a.jpg", tmp_path / "library/check/m.jpg"]
    assert layout.outputs() >= {tmp_path / "library/tsinelas", tmp_path / "library/check", tmp_path / "library/failed"}


def test_a_failing_model_leaves_files_in_place(tmp_path: Path, journal: Journal) -> None:
    class Broken(ColourClassifier):
        def predict_images(self, images):
            raise RuntimeError("CUDA out of memory")

    a = write_image(tmp_path / "inbox/a.jpg", RED, 1)
    host = RecordingHost()
    (o,) = run([a], Layout(tmp_path / "inbox", CLASSES), journal, clf=Broken(), host=host)
    assert o.action == "error" and o.left_in_place and "out of memory" in o.reason and a.exists()
    assert host.names() == ["file_failed"]


def test_vanished_files_are_reported_not_failed(tmp_path: Path, journal: Journal) -> None:
    (o,) = run([tmp_path / "inbox/gone.jpg"], Layout(tmp_path / "inbox", CLASSES), journal)
    assert o.action == "vanished" and not (tmp_path / "inbox/failed").exists()


def test_undo_is_honoured_only_when_asked(tmp_path: Path, journal: Journal) -> None:
    from footsort.sorting.sorter import undo

    inbox = tmp_path / "inbox"
    a = write_image(inbox / "a.jpg", RED, 1)
    run([a], Layout(inbox, CLASSES), journal)
    undo(journal.undoable(), Sorter(journal))
    assert a.exists()
    assert [o.action for o in run([a], Layout(inbox, CLASSES), journal, honour_undo=True)] == ["skip"]
    assert [o.action for o in run([a], Layout(inbox, CLASSES), journal)] == ["sort"]


def test_as_provider_accepts_classifiers_holders_and_functions() -> None:
    clf = ColourClassifier()
    assert as_provider(clf)() is clf
    assert as_provider(lambda: clf)() is clf

    class Holder(ColourClassifier):
        def __init__(self):
            super().__init__()
            self.checks = 0
            self.replacement = None

        def reload_if_changed(self):
            self.checks += 1
            return self.replacement

    h = Holder()
    provide = as_provider(h)
    assert provide() is h and h.checks == 1
    h.replacement = clf
    assert provide() is clf
    with pytest.raises(TypeError):
        as_provider(42)


def test_the_real_classifier_plugs_in(tmp_path: Path, journal: Journal) -> None:
    """The one torch test here: a tiny random model through the pipeline (mechanics, not accuracy)."""
    pytest.importorskip("torch")
    from helpers_model import tiny_meta, tiny_model

    from footsort.model.classifier import Classifier

    model = tiny_model()
    meta = tiny_meta(model)
    clf = Classifier(model, meta, device="cpu", fuse="never")
    inbox = tmp_path / "inbox"
    files = [write_image(inbox / f"{i}.jpg", RED if i % 2 else BLUE, i) for i in range(3)]
    outcomes = run(files, Layout(inbox, tuple(meta.classes)), journal, clf=clf, threshold=0.0)
    assert all(o.action == "sort" and o.destination.parent.name in meta.classes for o in outcomes)
    assert {o.model_version for o in outcomes} == {meta.version}
    assert all(abs(sum(o.probabilities.values()) - 1) < 1e-4 for o in outcomes)
