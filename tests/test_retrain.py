"""retrain: the plan (pure), the verdict (pure), and a fine-tune of a tiny model in use, cached and not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from fakes import RecordingHost

from footsort.learning.corrections import Correction, Findings, LabelledExample
from footsort.learning.feature_cache import FeatureCache
from footsort.learning.retrain import (
    Comparison,
    NothingToLearn,
    Options,
    TrainItem,
    finish,
    last_gate,
    make_plan,
    repeats,
    retrain,
    training_rows,
    verdict,
)
from footsort.model import checkpoint, registry
from footsort.sorting.sorter import file_hash
from tests.helpers_learn import eager_extract, one_torch_thread  # noqa: F401 (autouse fixture)
from tests.helpers_model import make_image_folder, tiny_meta, tiny_model

CLASSES = ("sapatos", "tsinelas")


def corr(i: int, new: str = "sapatos") -> Correction:
    return Correction(Path(f"/l/{new}/c{i}.jpg"), f"c{i}", "tsinelas" if new == "sapatos" else "sapatos", new)


def ex(i: int, label: str, source: str = "accepted") -> LabelledExample:
    return LabelledExample(Path(f"/l/{label}/{source}{i}.jpg"), f"{label}{source}{i}", label, source)  # type: ignore[arg-type]


# -- the plan ------------------------------------------------------------------------------------------

def test_plan_holds_out_corrections_too_and_never_uses_a_photo_twice() -> None:
    found = Findings(corrections=tuple(corr(i) for i in range(5)),
                     examples=tuple(ex(i, c) for c in CLASSES for i in range(10)))
    extra = [TrainItem(Path("/d/sapatos/c0.jpg"), "c0", "sapatos", "data"),
             TrainItem(Path("/d/tsinelas/x.jpg"), "x", "tsinelas", "data")]
    plan = make_plan(found, CLASSES, Options(val_split=0.2, correction_weight=4), extra, "/d")
    everything = plan.train + plan.validation
    assert len({it.content for it in everything}) == len(everything) == 5 + 20 + 1
    assert [it.kind for it in everything if it.content == "c0"] == ["correction"]
    assert sum(it.kind == "correction" for it in plan.validation) == 1
    assert {it.label for it in plan.validation} == set(CLASSES)
    summary = plan.summary()
    assert summary["correction_weight"] == 4 and summary["extra_data"] == "/d"
    assert summary["train"]["correction"] == {"sapatos": 4, "tsinelas": 0}


def test_plan_is_reproducible_and_the_seed_changes_it() -> None:
    found = Findings(corrections=tuple(corr(i) for i in range(6)), examples=tuple(ex(i, "tsinelas") for i in range(20)))
    a, b = make_plan(found, CLASSES, Options()), make_plan(found, CLASSES, Options())
    assert a == b
    assert make_plan(found, CLASSES, Options(seed=1)).validation != a.validation


def test_replay_is_balanced_prefers_hand_added_photos_and_is_capped() -> None:
    examples = ([ex(i, "sapatos", "accepted") for i in range(30)] + [ex(i, "sapatos", "added") for i in range(3)]
                + [ex(i, "tsinelas", "accepted") for i in range(4)])
    plan = make_plan(Findings(corrections=(corr(0),), examples=tuple(examples)), CLASSES, Options(replay=12, val_split=0))
    replay = [it for it in plan.train if it.kind == "example"]
    assert len(replay) == 12 and plan.unused_examples == 37 - 12
    assert sum(it.label == "tsinelas" for it in replay) == 4  # all of the smaller class
    assert sum("added" in it.path.name for it in replay) == 3  # every hand-added one
    assert plan.validation == ()


def test_nothing_to_learn_without_corrections_hand_added_photos_or_data() -> None:
    with pytest.raises(NothingToLearn):
        make_plan(Findings(examples=(ex(0, "sapatos"), ex(1, "tsinelas"))), CLASSES, Options())
    assert make_plan(Findings(examples=(ex(0, "sapatos", "added"),)), CLASSES, Options()).train


# -- the verdict ---------------------------------------------------------------------------------------

def comparison(n: int, fixed: int, broke: int, both_right: int) -> Comparison:
    return Comparison(n, both_right + fixed, both_right + broke, fixed, broke)


@pytest.mark.parametrize("c, force, promote, words", [
    (comparison(40, 8, 1, 25), False, True, "better than"),  # p = 10/512
    (comparison(40, 3, 1, 30), False, False, "not yet significant"),  # p = 5/16
    (comparison(40, 0, 0, 36), False, False, "not better"),  # equal: no reason to switch
    (comparison(40, 1, 4, 30), False, False, "not better"),
    (comparison(40, 1, 4, 30), True, True, "--force"),
    (comparison(6, 2, 0, 4), False, False, "too few"),  # the reported case: 2 corrections, 6 held out, "1.0000"
    (comparison(6, 2, 0, 4), True, True, "--force"),
])
def test_verdict_needs_evidence(c: Comparison, force: bool, promote: bool, words: str) -> None:
    v = verdict(c, force)
    assert v.promote is promote and words in v.reason
    assert f"{c.candidate:.4f}" in v.reason and f"on {c.n} held-out photos" in v.reason or "too few" in v.reason


def test_a_rejection_says_how_many_more_photos_would_do() -> None:
    assert "120 more" in verdict(comparison(6, 2, 0, 4), False).reason  # (30 - 6) / 0.2
    assert "more corrected or labelled photos would settle it" in verdict(comparison(40, 3, 1, 30), False).reason
    # the bench's case: 4 fixed, 0 broken on 30; at that rate 34 held-out photos give 4.5 -> 5 fixed (p = 1/32)
    assert "about 20 more" in verdict(comparison(30, 4, 0, 23), False).reason  # 4 more held out / 0.2


def test_mcnemar_p_value_by_hand() -> None:
    assert comparison(40, 8, 1, 25).p_value() == pytest.approx(10 / 512)
    assert comparison(40, 0, 0, 40).p_value() == 1.0
    assert Comparison.of([True, True, False], [False, True, True]) == Comparison(3, 2, 2, 1, 1)


def test_the_comparison_counts_each_class_on_its_own() -> None:
    c = Comparison.of([True, False, True, True, False], [True, True, False, True, False],
                      ["sapatos", "sapatos", "tsinelas", "tsinelas", "tsinelas"], ("sapatos", "tsinelas", "botas"))
    assert (c.n, c.candidate_right, c.current_right, c.fixed, c.broke) == (5, 3, 3, 1, 1)
    shoes, flipflops, boots = c.per_class
    assert (shoes.label, shoes.n, shoes.candidate, shoes.current) == ("sapatos", 2, 0.5, 1.0)
    assert (flipflops.n, flipflops.candidate_right, flipflops.current_right) == (3, 2, 1)
    assert (boots.n, boots.candidate, boots.current) == (0, None, None)  # no held-out photo: no accuracy, not 0
    assert flipflops.as_json() == {"n": 3, "val_accuracy": 0.6667, "parent_val_accuracy": 0.3333}
    assert sum(s.n for s in c.per_class) == c.n


def test_an_interrupted_retrain_is_not_promoted_unless_forced() -> None:
    assert not verdict(comparison(50, 10, 0, 30), False, interrupted=True).promote
    assert verdict(comparison(50, 10, 0, 30), True, interrupted=True).promote


def test_training_rows_repeat_whole_photos_and_skip_unreadable_ones() -> None:
    items = (TrainItem(Path("c"), "c", "sapatos", "correction"), TrainItem(Path("e"), "e", "tsinelas", "example"),
             TrainItem(Path("x"), "x", "tsinelas", "example"))
    plan = make_plan(Findings(), CLASSES, Options(val_split=0), items)
    order = [it.content for it in plan.train]
    rows, labels = training_rows(plan, Options(views=2, correction_weight=2, balance=False), {order.index("x")})
    c, e = order.index("c"), order.index("e")
    assert sorted(rows) == sorted([2 * c, 2 * c + 1] * 2 + [2 * e, 2 * e + 1])
    assert labels.count("sapatos") == 4 and labels.count("tsinelas") == 2


# -- fine-tuning the model in use -------------------------------------------------------------------------

@pytest.fixture
def in_use() -> str:
    model = tiny_model()
    meta = tiny_meta(model)
    registry.add_version(model, meta)
    registry.use(meta.version)
    return meta.version


def library_plan(root: Path, options: Options):
    lib = make_image_folder(root, per_class=5)
    files = sorted(lib.rglob("*.jpg"))
    # two photos the model got wrong, the rest labelled by hand
    found = Findings(
        corrections=tuple(Correction(p, file_hash(p), "tsinelas", "sapatos") for p in files[:2]),
        examples=tuple(LabelledExample(p, file_hash(p), p.parent.name, "added") for p in files[2:]), roots=(lib,))
    return make_plan(found, CLASSES, options)


def test_retrain_fine_tunes_only_blocks_and_head_of_the_model_in_use(tmp_path: Path, in_use: str) -> None:
    options = Options(epochs=2, batch_size=4, lr=1e-3, views=2)
    plan = library_plan(tmp_path / "lib", options)
    parent, _ = checkpoint.load(registry.in_use_path())
    result = retrain(plan, options, cache=None, extract=eager_extract)
    cand = result.model.state_dict()
    assert all(torch.equal(v, cand[k]) for k, v in parent.state_dict().items() if k.startswith("backbone."))
    assert any(not torch.equal(v, cand[k]) for k, v in parent.state_dict().items() if k.startswith("blocks."))
    assert any(not torch.equal(v, cand[k]) for k, v in parent.state_dict().items() if k.startswith("head."))
    meta = result.meta
    assert meta.parent == in_use and result.parent == in_use
    assert meta.data["train"]["correction"]["sapatos"] >= 1 and meta.data["kind"] == "retrain"
    assert {"val_accuracy", "parent_val_accuracy", "promoted", "reason", "history"} <= set(meta.metrics)
    assert meta.recipe["retrain"]["epochs"] == 2 and len(meta.metrics["history"]) == 2
    assert result.validation_n == len(plan.validation) >= 2
    per_class = meta.metrics["per_class"]  # stored with the version: both models, per true class, with its n
    assert list(per_class) == list(CLASSES)
    assert sum(v["n"] for v in per_class.values()) == meta.metrics["validation_n"]
    held = {c: sum(it.label == c for it in plan.validation) for c in CLASSES}
    assert {c: v["n"] for c, v in per_class.items()} == held
    right = sum(v["val_accuracy"] * v["n"] for v in per_class.values() if v["n"])
    assert right / result.validation_n == pytest.approx(result.candidate_accuracy, abs=1e-3)


def test_corrections_are_weighted_up(tmp_path: Path, in_use: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import footsort.learning.trainer as trainer

    seen = {}
    real = trainer.train_on_features

    def spy(model, feats, labels, views, *a, **kw):
        seen["rows"], seen["views"] = len(labels), views
        return real(model, feats, labels, views, *a, **kw)

    monkeypatch.setattr(trainer, "train_on_features", spy)
    options = Options(epochs=1, batch_size=4, views=2, correction_weight=5, val_split=0, balance=False)
    plan = library_plan(tmp_path / "lib", options)
    retrain(plan, options, extract=eager_extract)
    assert seen == {"rows": (2 * 5 + 8) * 2, "views": 2}
    retrain(plan, replace(options, balance=True), extract=eager_extract)
    assert seen["rows"] == 2 * (2 * 5 + 3) * 2  # tsinelas (5 photos) repeated up to sapatos' weight (13)


def test_repeats_weight_corrections_then_balance_classes() -> None:
    items = ([TrainItem(Path(f"c{i}"), f"c{i}", "tsinelas", "correction") for i in range(3)]
             + [TrainItem(Path(f"t{i}"), f"t{i}", "tsinelas", "example") for i in range(2)]
             + [TrainItem(Path(f"s{i}"), f"s{i}", "sapatos", "example") for i in range(4)])
    assert repeats(items, 3, balance=False) == [3, 3, 3, 1, 1, 1, 1, 1, 1]
    balanced = repeats(items, 3, balance=True)
    assert sum(balanced[:5]) == sum(balanced[5:]) == 11
    assert balanced[:5] == [3, 3, 3, 1, 1] and all(n >= 2 for n in balanced[5:])
    assert repeats(items, 3, balance=True) == balanced  # reproducible


def test_a_second_retrain_reads_cached_features_and_learns_the_same(tmp_path: Path, in_use: str) -> None:
    options = Options(epochs=2, batch_size=4, lr=1e-3, views=2)
    plan = library_plan(tmp_path / "lib", options)
    first = retrain(plan, options, cache=FeatureCache(), extract=eager_extract)
    second = retrain(plan, options, cache=FeatureCache(), extract=eager_extract)
    assert first.cache_misses == len(plan.train) * 2 + len(plan.validation) and first.cache_hits == 0
    assert second.cache_hits == first.cache_misses and second.cache_misses == 0
    assert second.candidate_accuracy == first.candidate_accuracy
    assert second.meta.metrics["history"][-1]["train_loss"] == pytest.approx(first.meta.metrics["history"][-1]["train_loss"], rel=1e-3)


def test_finish_promotes_stores_and_tells_plugins(tmp_path: Path, in_use: str) -> None:
    options = Options(epochs=1, batch_size=4, views=1, force=True)
    result = retrain(library_plan(tmp_path / "lib", options), options, extract=eager_extract)
    host = RecordingHost()
    done = finish(result, host)
    assert registry.current_version() == result.meta.version and done.path == registry.version_path(result.meta.version)
    assert host.names() == ["model_promoted"]
    assert (host.events[0].version, host.events[0].previous) == (result.meta.version, in_use)
    assert registry.rollback() == in_use


def test_a_rejected_candidate_is_not_stored_unless_kept(tmp_path: Path, in_use: str) -> None:
    options = Options(epochs=1, batch_size=4, views=1)
    result = retrain(library_plan(tmp_path / "lib", options), options, extract=eager_extract)
    rejected = replace(result, verdict=verdict(comparison(10, 0, 8, 1), False))
    host = RecordingHost()
    assert finish(rejected, host).path is None
    assert [m.version for _, m in registry.list_versions()] == [in_use] and host.events == []
    gate = last_gate()  # not stored as a version, but its verdict is kept for the review page
    assert gate is not None and gate["version"] == result.meta.version and gate["parent"] == in_use
    assert gate["stored"] is False and gate["promoted"] is False and gate["reason"] == rejected.verdict.reason
    assert set(gate["per_class"]) == set(CLASSES) and gate["validation_n"] == result.validation_n
    kept = finish(rejected, host, keep=True)
    assert kept.path is not None and registry.current_version() == in_use and host.events == []


def test_classes_must_match_the_model_in_use(tmp_path: Path, in_use: str) -> None:
    from footsort.errors import FootsortError

    options = Options(epochs=1, views=1)
    plan = replace(library_plan(tmp_path / "lib", options), classes=("botas", "sapatos"))
    with pytest.raises(FootsortError, match="classes"):
        retrain(plan, options, extract=eager_extract)


@pytest.mark.parametrize("tuned", [0, 2])
def test_a_model_with_the_imagenet_prior_keeps_it_through_a_retrain(tmp_path: Path, tuned: int) -> None:
    from tests.helpers_model import tiny_prior_model

    model, _ = tiny_prior_model(tmp_path, 2.0, tuned)
    meta = tiny_meta(model)
    registry.add_version(model, meta)
    registry.use(meta.version)
    options = Options(epochs=1, batch_size=4, lr=1e-3, views=1)
    result = retrain(library_plan(tmp_path / "lib", options), options, cache=None, extract=eager_extract)
    assert result.meta.arch["prior_rows"] == 4 and result.meta.arch["prior_weight"] == 2.0
    assert result.meta.arch["prior_stages"] == tuned
    parent, _ = checkpoint.load(registry.in_use_path())
    cand = result.model.state_dict()
    assert all(torch.equal(v, cand[k]) for k, v in parent.state_dict().items() if k.startswith("prior."))
    assert parent.state_dict()["prior.weight"].abs().sum() > 0  # ImageNet's rows, not zeros
