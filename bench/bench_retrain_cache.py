"""Retrain speed with and without the feature cache, same run, same data, same seeds.

    python bench/bench_retrain_cache.py [--images 400] [--threads 1] [--epochs 6] [--views 4]

Takes `--images` shared dev photos (half tsinelas, half sapatos, a fixed sample), builds a weak
starting model in a temporary FOOTSORT_HOME (lite blocks, 224 px, head trained briefly on 40 other
dev photos), then runs `footsort retrain`'s core on the sample (as --data, default knobs, 20 %
stratified held out) three times:
- no cache: every backbone feature is computed in this run (what a retrain costs without the cache);
- cache, cold: the same, also writing the cache (the first retrain ever);
- cache, warm: every feature read from disk (a repeated retrain; new corrections would add a few
  computed ones).
Prints seconds, the held-out accuracy of each and the ratio no-cache / warm. The goal is >= 10x at
equal accuracy (within 1 point). The same views (seeded by content) and the same training seed are
used each time, so accuracy should match exactly up to fp16 rounding of stored features.
Nothing is written outside a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
DEV = SHARED / "data" / "footwear-dev"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet.pth"
CLASSES = ("sapatos", "tsinelas")


def sample(n_per_class: int, skip: int, seed: int) -> list[tuple[Path, str]]:
    """A fixed random sample of dev photos per class, after the first `skip` of the shuffled list."""
    out = []
    for c in CLASSES:
        files = sorted((DEV / c).glob("*.jpg"))
        random.Random(seed).shuffle(files)
        out += [(f, c) for f in files[skip:skip + n_per_class]]
    return out


def start_model(photos: list[tuple[Path, str]], size: int) -> str:
    """A weak model in use: ImageNet backbone, lite blocks, head trained 3 epochs on a few photos."""
    from footsort.learning.datasets import LabelledSet, Sample
    from footsort.learning.trainer import Recipe, make_model, recipe_dict, train
    from footsort.model import checkpoint, registry

    recipe = Recipe(mode="cached", preset="lite", size=size, views=2, batch_size=16, lr=1e-3, epochs=3)
    data = LabelledSet(tuple(Sample(p, CLASSES.index(c)) for p, c in photos), CLASSES)
    model, origin = make_model(CLASSES, recipe, str(WEIGHTS))
    train(model, data, None, recipe)
    meta = checkpoint.ModelVersion(
        version=checkpoint.new_version_id(), classes=CLASSES, arch=dict(model.arch.__dict__),
        preprocess=recipe.preprocess().to_dict(), recipe=recipe_dict(recipe), created=checkpoint.now_iso(),
        backbone_origin=origin)
    registry.add_version(model, meta)
    registry.use(meta.version)
    return meta.version


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    os.environ["FOOTSORT_HOME"] = tempfile.mkdtemp(prefix="footsort-bench-")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from footsort.learning.corrections import Findings
    from footsort.learning.feature_cache import FeatureCache
    from footsort.learning.retrain import Options, TrainItem, make_plan, retrain
    from footsort.sorting.hashes import ContentHashes

    half = args.images // 2
    photos = sample(half, skip=0, seed=0)
    parent = start_model(sample(20, skip=half, seed=0), args.size)
    hashes = ContentHashes(None)
    items = [TrainItem(p, hashes.of(p), c, "data") for p, c in photos]
    options = Options(epochs=args.epochs, views=args.views)
    plan = make_plan(Findings(), CLASSES, options, items, str(DEV))
    out: dict = {"images": len(photos), "train": len(plan.train), "held_out": len(plan.validation),
                 "views": args.views, "epochs": args.epochs, "size": args.size, "threads": torch.get_num_threads(),
                 "start_model": parent}
    print(json.dumps(out), flush=True)

    runs = {}
    for name, cache in (("no_cache", None), ("cache_cold", FeatureCache()), ("cache_warm", FeatureCache())):
        t0 = time.perf_counter()
        result = retrain(plan, options, cache=cache)
        runs[name] = {"seconds": round(time.perf_counter() - t0, 1),
                      "features_seconds": round(result.seconds["features"], 1),
                      "train_seconds": round(result.seconds["train"], 1),
                      "held_out_accuracy": round(result.candidate_accuracy, 4),
                      "start_model_accuracy": round(result.current_accuracy, 4),
                      "cached": result.cache_hits,
                      "computed": result.cache_misses if cache is not None else len(plan.train) * args.views + len(plan.validation)}
        print(name, json.dumps(runs[name]), flush=True)
    ratio = runs["no_cache"]["seconds"] / max(runs["cache_warm"]["seconds"], 1e-9)
    gap = abs(runs["no_cache"]["held_out_accuracy"] - runs["cache_warm"]["held_out_accuracy"]) * 100
    out.update(runs=runs, speedup_warm_vs_no_cache=round(ratio, 2), accuracy_gap_points=round(gap, 2),
               cache_mb=round(FeatureCache().size() / 2**20, 1))
    print(json.dumps(out, indent=1))
    verdict = "meets" if ratio >= 10 and gap <= 1 else "misses"
    print(f"warm cache is {ratio:.1f}x faster than no cache (accuracy gap {gap:.1f} points): {verdict} the >= 10x goal")


if __name__ == "__main__":
    main()
