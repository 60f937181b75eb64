"""feature_cache: keys that never go stale, atomic entries, reuse across runs, LRU pruning (tiny model)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
from fakes import BLUE, RED, write_image

from footsort.learning.feature_cache import (
    EVAL,
    FeatureCache,
    FeatureKey,
    Request,
    View,
    augmented_views,
    backbone_digest,
    features,
    preprocess_key,
    view_input,
)
from footsort.model.presets import Preprocess
from footsort.sorting.sorter import file_hash
from footsort.system import paths
from tests.helpers_learn import one_torch_thread  # noqa: F401 (autouse fixture)
from tests.helpers_model import tiny_model

SPEC = Preprocess(size=64)


class CountingExtract:
    """An eager stand-in for trainer.extract_features (no TorchScript tracing), counting backbone inputs."""

    def __init__(self) -> None:
        self.inputs = 0

    def __call__(self, model, makers, size, batch=32, desc=""):
        self.inputs += len(makers)
        with torch.inference_mode():
            return model.forward_features(torch.stack([make() for make in makers])).to(torch.float16)


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def requests(files: list[Path], views) -> list[Request]:
    return [Request(f, file_hash(f), v) for f in files for v in views]


def test_every_part_of_the_key_changes_the_entry(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    base = FeatureKey("bb", "img", View(0).key(), preprocess_key(SPEC))
    others = [FeatureKey("bb2", "img", View(0).key(), base.preprocess),
              FeatureKey("bb", "img2", View(0).key(), base.preprocess),
              FeatureKey("bb", "img", View(1).key(), base.preprocess),
              FeatureKey("bb", "img", View(0, seed=1).key(), base.preprocess),
              FeatureKey("bb", "img", View(0, synth=0.5).key(), base.preprocess),
              FeatureKey("bb", "img", EVAL.key(), base.preprocess),
              FeatureKey("bb", "img", View(0).key(), preprocess_key(Preprocess(size=64, fit="pad")))]
    assert len({cache.path(k) for k in [base, *others]}) == 8
    assert cache.path(base) == cache.path(FeatureKey("bb", "img", View(0).key(), preprocess_key(SPEC)))


def test_put_get_round_trip_is_fp16_atomic_and_damage_is_a_miss(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    key = FeatureKey("bb", "img", "eval", "p")
    assert cache.get(key) is None and cache.misses == 1
    t = torch.randn(8, 2, 2)
    cache.put(key, t)
    got = cache.get(key)
    assert got.dtype == torch.float16 and torch.allclose(got.float(), t, atol=1e-2) and cache.hits == 1
    assert [p.name for p in cache.path(key).parent.iterdir()] == [cache.path(key).name]  # no temp file left
    cache.path(key).write_bytes(b"\x00" * 5)
    assert cache.get(key) is None and not cache.path(key).exists()


def test_default_root_is_in_the_cache_dir() -> None:
    assert FeatureCache().root == paths.cache_dir() / "features"


def test_views_are_seeded_by_content_not_by_position(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.jpg", RED, 1)
    a = view_input(img, "hash-a", View(0), SPEC)
    assert torch.equal(a, view_input(img, "hash-a", View(0), SPEC))
    assert not torch.equal(a, view_input(img, "hash-a", View(1), SPEC))
    assert torch.equal(view_input(img, "x", EVAL, SPEC), view_input(img, "y", EVAL, SPEC))
    assert a.shape == (3, 64, 64)


def test_mild_views_start_clean_and_are_keyed_apart_from_paper_views(tmp_path: Path) -> None:
    img = write_image(tmp_path / "a.jpg", RED, 1)
    mild = augmented_views(2, augment="mild")
    assert torch.equal(view_input(img, "h", mild[0], SPEC), view_input(img, "h", EVAL, SPEC))
    assert not torch.equal(view_input(img, "h", mild[1], SPEC), view_input(img, "h", EVAL, SPEC))
    assert mild[1].key() != augmented_views(2)[1].key()


def test_backbone_digest_follows_the_weights(model) -> None:
    before = backbone_digest(model)
    assert before == backbone_digest(model)
    other = tiny_model()
    with torch.no_grad():
        next(other.backbone.parameters()).add_(1e-3)
    assert backbone_digest(other) != before


def test_second_run_reads_everything_from_disk_and_gets_the_same_features(tmp_path: Path, model) -> None:
    files = [write_image(tmp_path / f"{i}.jpg", RED if i % 2 else BLUE, i) for i in range(3)]
    reqs = requests(files, [EVAL, *augmented_views(2)])
    extract = CountingExtract()
    cache = FeatureCache(tmp_path / "cache")
    first, bad = features(model, reqs, SPEC, cache, extract=extract)
    assert extract.inputs == 9 and not bad and first.shape[0] == 9 and first.dtype == torch.float16
    again, _ = features(model, reqs, SPEC, FeatureCache(tmp_path / "cache"), extract=extract)
    assert extract.inputs == 9  # nothing recomputed
    assert torch.equal(first, again)
    uncached, _ = features(model, reqs, SPEC, None, extract=extract)
    assert torch.allclose(first.float(), uncached.float(), atol=1e-3)


def test_a_changed_image_or_backbone_is_recomputed(tmp_path: Path, model) -> None:
    img = write_image(tmp_path / "a.jpg", RED, 1)
    extract = CountingExtract()
    cache = FeatureCache(tmp_path / "cache")
    features(model, requests([img], [EVAL]), SPEC, cache, extract=extract)
    write_image(img, BLUE, 2)  # same name, new content
    features(model, requests([img], [EVAL]), SPEC, cache, extract=extract)
    other = tiny_model()
    with torch.no_grad():
        next(other.backbone.parameters()).mul_(1.01)
    features(other, requests([img], [EVAL]), SPEC, cache, extract=extract)
    assert extract.inputs == 3


def test_unreadable_images_are_reported_not_cached(tmp_path: Path, model) -> None:
    good = write_image(tmp_path / "good.jpg", RED, 1)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    cache = FeatureCache(tmp_path / "cache")
    feats, unreadable = features(model, requests([good, bad], [EVAL]), SPEC, cache, extract=CountingExtract())
    assert unreadable == {1} and feats.shape[0] == 2
    assert len(list(cache.root.rglob("*.safetensors"))) == 1


def test_prune_drops_least_recently_used_first(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path)
    keys = [FeatureKey("bb", f"img{i}", "eval", "p") for i in range(3)]
    for i, k in enumerate(keys):
        cache.put(k, torch.zeros(64))
        os.utime(cache.path(k), (time.time() - 100 + i, time.time() - 100 + i))
    cache.get(keys[0])  # used just now: kept
    one = cache.path(keys[0]).stat().st_size
    assert cache.prune(max_bytes=2 * one) == 1
    assert cache.path(keys[0]).exists() and not cache.path(keys[1]).exists() and cache.path(keys[2]).exists()
