"""`footsort corrections / review / retrain / models` through CliRunner; then the whole loop end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import BLUE, MUDDY, RED, write_image

from footsort.cli import main
from footsort.commands.learn_cmds import COMMANDS
from footsort.learning import corrections
from footsort.model import registry
from footsort.sorting.journal import Journal
from tests.helpers_learn import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.helpers_model import make_image_folder, tiny_meta, tiny_model


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture
def fake_model(fake_cli: dict) -> None:
    """Commands get the colour-reading fake instead of a real model (red: tsinelas, blue: sapatos)."""


@pytest.fixture
def sorted_inbox(tmp_path: Path, fake_model: None) -> Path:
    """`footsort sort` has put red.jpg in tsinelas/, blue.jpg in sapatos/, muddy*.jpg in review/."""
    inbox = tmp_path / "inbox"
    write_image(inbox / "red.jpg", RED, 1)
    write_image(inbox / "blue.jpg", BLUE, 2)
    write_image(inbox / "muddy1.jpg", MUDDY, 3)
    write_image(inbox / "muddy2.jpg", MUDDY, 4)
    result = invoke("sort", inbox)
    assert result.exit_code == 0, result.output
    assert (inbox / "review/muddy1.jpg").exists() and (inbox / "tsinelas/red.jpg").exists()
    return inbox


def test_every_command_has_help_with_an_example() -> None:
    names = [["retrain"], ["review"], ["corrections"], ["models"], ["models", "list"], ["models", "show"],
             ["models", "use"], ["models", "rollback"]]
    assert {c.name for c in COMMANDS} == {"retrain", "review", "corrections", "models"}
    for name in names:
        result = invoke(*name, "--help")
        assert result.exit_code == 0 and "Example" in result.output, name


def test_help_and_listing_need_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, footsort.cli, footsort.learning.corrections, footsort.sorting.hashes, footsort.sorting.reloading; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_corrections_lists_moves_and_hand_added_photos(sorted_inbox: Path) -> None:
    inbox = sorted_inbox
    (inbox / "tsinelas/red.jpg").rename(inbox / "sapatos/red.jpg")
    write_image(inbox / "tsinelas/mine.jpg", RED, 7)
    result = invoke("corrections")
    assert result.exit_code == 0, result.output
    assert "tsinelas -> sapatos" in result.output and str(inbox / "sapatos/red.jpg") in result.output
    assert "1 correction(s)" in result.output and "1 added by hand, 1 sorted by the model and kept" in result.output
    rows = [json.loads(line) for line in invoke("corrections", "--json", inbox).stdout.splitlines()]
    assert [(r["old_label"], r["new_label"]) for r in rows] == [("tsinelas", "sapatos")]
    assert json.loads(corrections.seen_file().read_text()) == [f"{rows[0]['hash']}:sapatos"]  # told plugins once


def test_review_moves_skips_opens_and_quits(sorted_inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = sorted_inbox
    opened: list[str] = []
    monkeypatch.setattr("click.launch", lambda url, **kw: opened.append(url))
    result = invoke("review", input="xo1q")  # unknown key, open, label muddy1 sapatos, quit before muddy2
    assert result.exit_code == 0, result.output
    assert "model fake-1: tsinelas 0.6" in result.output  # the prediction journaled when it was sorted
    assert "[1] sapatos  [2] tsinelas  [o]pen  [s]kip  [q]uit" in result.output and "unknown key 'x'" in result.output
    assert opened == [str(inbox / "review/muddy1.jpg")]
    assert (inbox / "sapatos/muddy1.jpg").exists() and (inbox / "review/muddy2.jpg").exists()
    assert "labelled 1, skipped 0" in result.output
    with Journal.open(readonly=True) as j:
        row = j.recent(1)[0]
    assert (row.action, row.details.label, row.details.model_version) == ("sort", "sapatos", "")
    assert "labelled by hand" in row.details.reason
    listed = invoke("corrections").output
    assert "review (tsinelas) -> sapatos" in listed
    undone = invoke("undo", "--last", "1")  # a review choice is an ordinary journaled move: back to review/
    assert undone.exit_code == 0 and (inbox / "review/muddy1.jpg").exists()
    assert "0 correction(s)" in invoke("corrections").output


def test_review_skip_and_dry_run_move_nothing(sorted_inbox: Path) -> None:
    result = invoke("review", "--dry-run", input="2s")
    assert result.exit_code == 0, result.output
    assert "would move to" in result.output and "labelled 1, skipped 1 (dry run" in result.output
    assert sorted(p.name for p in (sorted_inbox / "review").iterdir()) == ["muddy1.jpg", "muddy2.jpg"]


def test_review_with_an_empty_queue(tmp_path: Path, fake_model: None) -> None:
    (tmp_path / "lib/review").mkdir(parents=True)
    assert "nothing to review" in invoke("review", tmp_path / "lib").output


def test_retrain_explains_when_there_is_nothing_to_learn(sorted_inbox: Path) -> None:
    result = invoke("retrain")
    assert result.exit_code == 1
    assert "nothing to learn from" in result.output and str(sorted_inbox) in result.output


def test_retrain_dry_run_shows_the_plan_and_trains_nothing(sorted_inbox: Path) -> None:
    inbox = sorted_inbox
    (inbox / "tsinelas/red.jpg").rename(inbox / "sapatos/red.jpg")
    (inbox / "review/muddy1.jpg").rename(inbox / "tsinelas/muddy1.jpg")
    result = invoke("retrain", "--dry-run", "--val-split", "0.5")
    assert result.exit_code == 0, result.output
    assert "corrections: 2 (1 review -> tsinelas, 1 tsinelas -> sapatos)" in result.output
    assert "train correction" in result.output and "dry run: nothing trained" in result.output
    assert not registry.list_versions() and not corrections.seen_file().exists()


def test_models_list_show_use_rollback(tmp_path: Path) -> None:
    versions = []
    for _ in range(2):
        model = tiny_model()
        meta = tiny_meta(model)
        registry.add_version(model, meta)
        versions.append(meta.version)
    a, b = versions
    assert invoke("models", "use", a).exit_code == 0
    result = invoke("models", "use", b)
    assert f"model {b} is now in use (was {a})" in result.output
    listing = invoke("models", "list").output
    assert f"* {b}" in listing and f"  {a}" in listing and "default (shipped)" in listing
    shown = json.loads(invoke("models", "show", b, "--json").output)
    assert shown["version"] == b and shown["classes"] == ["sapatos", "tsinelas"]
    shown_text = invoke("models", "show", b).output
    assert f"{b}  (in use)" in shown_text and "parent" in shown_text and "metrics" in shown_text
    assert f"model {a} is now in use (was {b})" in invoke("models", "rollback").output
    assert registry.current_version() == a
    bad = invoke("models", "use", "nope")
    assert bad.exit_code == 1 and "no stored model version 'nope'" in bad.output and a in bad.output
    invoke("models", "rollback")
    nothing = invoke("models", "rollback")
    assert nothing.exit_code == 1 and "nothing to roll back to" in nothing.output


# -- the whole loop, as a new user would do it --------------------------------------------------------------

def weak_model(weights: Path) -> str:
    """A small real-backbone model whose head says `sapatos` for (almost) everything; stored and in use."""
    import torch

    from footsort.model.hybrid import Architecture, FootwearNet, load_backbone_weights

    torch.manual_seed(0)
    model = FootwearNet(Architecture(preset="lite", width=16, hidden=32))
    origin = load_backbone_weights(model, weights)
    with torch.no_grad():
        model.head[-1].bias.copy_(torch.tensor([5.0, -5.0]))
    meta = tiny_meta(model)
    from dataclasses import replace

    meta = replace(meta, backbone_origin=origin)
    registry.add_version(model, meta)
    registry.use(meta.version)
    return meta.version


def accuracy(folder: Path) -> float:
    result = invoke("evaluate", folder, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["accuracy"]


def fix_by_hand(inbox: Path) -> int:
    """Move every photo in the wrong class folder to the right one (the class is the file-name prefix)."""
    moved = 0
    for folder in ("sapatos", "tsinelas"):
        for p in sorted((inbox / folder).glob("*.jpg")):
            truth = p.name.split("_")[0]
            if truth != folder:
                (inbox / truth).mkdir(exist_ok=True)
                p.rename(inbox / truth / p.name)
                moved += 1
    return moved


@pytest.mark.real
def test_end_to_end_weak_model_sort_fix_retrain_switch_rollback(tmp_path: Path, shared_weights: Path) -> None:
    from footsort.model.classifier import Classifier
    from footsort.sorting.reloading import follow_in_use
    from footsort.system.config import load as load_config

    weak = weak_model(shared_weights)
    pool = make_image_folder(tmp_path / "pool", per_class=36, seed=1)  # enough held out for the promotion gate
    heldout = make_image_folder(tmp_path / "heldout", per_class=8, seed=2)  # never trained on
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    later = sorted((pool / "tsinelas").glob("*.jpg"))[:4]
    for p in sorted(pool.rglob("*.jpg")):
        if p not in later:
            shutil.copy(p, inbox / p.name)
    before = accuracy(heldout)
    daemon_model = follow_in_use(Classifier.load(), load_config())  # what `footsort watch` would hold
    assert daemon_model.version == weak

    assert invoke("sort", inbox).exit_code == 0
    fixed = fix_by_hand(inbox)
    assert fixed >= 5  # the weak model put (nearly) every tsinelas among the sapatos
    for p in later:  # a second batch goes to review/, labelled there
        shutil.copy(p, inbox / p.name)
    assert invoke("sort", inbox, "--threshold", "1.0").exit_code == 0
    queue = sorted((inbox / "review").glob("*.jpg"))
    keys = "".join("1" if p.name.startswith("sapatos") else "2" for p in queue)
    assert invoke("review", input=keys).exit_code == 0
    assert not list((inbox / "review").glob("*.jpg"))
    listed = invoke("corrections").output
    assert f"{fixed + len(queue)} correction(s)" in listed

    result = invoke("retrain", "--epochs", "8", "--lr", "1e-3", "--batch-size", "8", "--views", "2", "--val-split", "0.45")
    assert result.exit_code == 0, result.output
    assert "is now in use" in result.output, result.output
    per_class = [line.split() for line in result.output.splitlines() if " -> new " in line]
    assert [words[0] for words in per_class] == ["sapatos", "tsinelas"], result.output  # before/after, per class
    assert all(words[-1] == "photos" and int(words[-2]) > 0 for words in per_class)
    new = registry.current_version()
    assert new != weak and registry.version_path(new).is_file()
    after = accuracy(heldout)
    assert after > before and after >= 0.9, (before, after, result.output)
    assert daemon_model.reload_if_changed().version == new  # the running daemon switches before its next batch
    assert json.loads(invoke("models", "show", new, "--json").output)["parent"] == weak

    assert f"model {weak} is now in use" in invoke("models", "rollback").output
    assert daemon_model.reload_if_changed().version == weak
    assert accuracy(heldout) == before

    again = invoke("retrain", "--epochs", "8", "--lr", "1e-3", "--batch-size", "8", "--views", "2", "--val-split", "0.45")
    assert again.exit_code == 0 and " 0 computed" in again.output, again.output  # every feature from the cache


def test_models_list_shows_each_accuracy_with_its_sample_size() -> None:
    from footsort.learning.evaluation import held_out_text

    assert held_out_text({"val_accuracy": 1.0, "validation_n": 6}) == "1.0000 (n=6)"
    assert held_out_text({"val_accuracy": 0.97, "n_val": 1453}) == "0.9700 (n=1453)"
    assert held_out_text({"validation": {"accuracy": 0.5, "n": 4}}) == "0.5000 (n=4)"
    assert held_out_text({}) == "-"
    listed = invoke("models", "list").output
    assert "default (shipped)" in listed and "(n=" in listed  # the shipped model says on how many photos
