"""learning.retraining: the steps of `footsort retrain` before any training (libraries, findings, plan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import BLUE, RED, RecordingHost, write_image

from footsort.errors import FootsortError
from footsort.learning import retraining
from footsort.learning.retrain import Options
from footsort.sorting.journal import Journal
from footsort.sorting.pipeline import Item, Pipeline, layout_for, policy_for
from footsort.sorting.sorter import Sorter
from footsort.system.config import Config

CLASSES = ("sapatos", "tsinelas")


def sort_with(load, inbox: Path) -> None:
    """`footsort sort` as library calls, with the classifier `load` gives."""
    cfg = Config()
    with Journal.open() as journal, Pipeline(load(cfg), Sorter(journal), journal, RecordingHost(),
                                             policy_for(cfg, CLASSES)) as pipeline:
        layout = layout_for(inbox, cfg, CLASSES)
        list(pipeline.run([Item(p, layout) for p in sorted(inbox.glob("*.jpg"))]))


def test_a_library_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FootsortError, match="library .*nowhere is not a folder"):
        retraining.libraries([tmp_path / "nowhere"], Config(), {})


def test_find_reads_corrections_and_the_plan_trains_on_them(tmp_path: Path, fake_factory) -> None:
    inbox = tmp_path / "inbox"
    for i in range(3):
        write_image(inbox / f"red{i}.jpg", RED, i)
        write_image(inbox / f"blue{i}.jpg", BLUE, 10 + i)
    sort_with(fake_factory, inbox)
    (inbox / "tsinelas/red0.jpg").rename(inbox / "sapatos/red0.jpg")  # the person says: a shoe
    findings = retraining.find([], Config(), CLASSES)  # the libraries the journal knows
    assert findings.roots == (inbox,) and [(c.old_label, c.new_label) for c in findings.corrections] == \
        [("tsinelas", "sapatos")]
    plan = retraining.plan(findings, CLASSES, Options(val_split=0.0))
    assert [it.path.name for it in plan.train if it.kind == "correction"] == ["red0.jpg"]


def test_nothing_to_learn_says_where_it_looked_and_what_to_do(tmp_path: Path, fake_factory) -> None:
    inbox = tmp_path / "inbox"
    write_image(inbox / "red.jpg", RED, 1)
    sort_with(fake_factory, inbox)
    findings = retraining.find([inbox], Config(), CLASSES)
    with pytest.raises(FootsortError, match=f"nothing to learn from in {inbox}: .*--data DIR"):
        retraining.plan(findings, CLASSES, Options())
