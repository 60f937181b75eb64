"""Training speed: the paper's recipe vs footsort's fast recipe, on the shared dev set, same run.

    python bench/bench_train.py [--paper-images 200] [--paper-epochs 1]

The paper recipe (paper blocks, 300 px, batch 1, Adam 1e-4, online augmentation through the frozen
backbone every step, 20 epochs) costs about a second per step on 2 CPU cores, i.e. ~18 hours for
20 epochs over 3,200 images; this bench runs it on a subset, reports seconds per image-epoch and the
extrapolated full wall time, and the accuracy it reached on the dev validation split. The fast recipe
(lite blocks, 224 px, 4 views per image - one clean, mild augmentations, 35 % synthetic household
scenes - whose backbone input to the last 4 stages is computed once; those stages, the blocks and the
head train for 6 epochs, batch 64, cosine lr 1e-3; the shipped model uses a longer variant, see
build_default_model.py) runs on the full training split. Both are scored on the same 800 held-out images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from footsort.learning.datasets import scan, stratified_split  # noqa: E402
from footsort.learning.trainer import (  # noqa: E402
    Recipe,
    eval_inputs,
    extract_features,
    head_logits,
    make_model,
    train,
)

SHARED = REPO.parent / "shared"


def accuracy(model, val, recipe) -> float:
    """Accuracy on `val` with the recipe's eval preprocessing."""
    import torch

    spec = recipe.preprocess()
    feats = extract_features(model, eval_inputs(val, spec), spec.size)
    labels = torch.tensor([s.label for s in val.samples])
    return float((head_logits(model, feats).argmax(1) == labels).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paper-images", type=int, default=200, help="training images for the paper recipe's timed run")
    ap.add_argument("--paper-epochs", type=int, default=1)
    ap.add_argument("--fast-epochs", type=int, default=6)
    args = ap.parse_args()
    weights = str(SHARED / "weights" / "mobilenet_v2_imagenet.pth")
    dev = scan(SHARED / "data" / "footwear-dev", ("sapatos", "tsinelas"))
    tr, va = stratified_split(dev, 0.2, seed=0)
    out = {"train_images": len(tr), "val_images": len(va)}

    fast = Recipe(mode="cached", preset="lite", size=224, fit="pad", views=4, synth=0.35, augment="mild", batch_size=64,
                  lr=1e-3, schedule="cosine", weight_decay=1e-4, label_smoothing=0.1, finetune_backbone=4,
                  finetune_lr=1e-4, epochs=args.fast_epochs)
    model, _ = make_model(dev.classes, fast, weights)
    t0 = time.perf_counter()
    train(model, tr, None, fast)
    out["fast_seconds"] = round(time.perf_counter() - t0, 1)
    out["fast_val_accuracy"] = round(accuracy(model, va, fast), 4)
    print(json.dumps(out), flush=True)

    paper = Recipe()  # the paper's defaults
    sub, _ = stratified_split(tr, 1 - args.paper_images / len(tr), seed=1) if args.paper_images < len(tr) else (tr, None)
    model, _ = make_model(dev.classes, paper, weights)
    t0 = time.perf_counter()
    train(model, sub, None, paper.__class__(**{**paper.__dict__, "epochs": args.paper_epochs}))
    spent = time.perf_counter() - t0
    per_image_epoch = spent / (len(sub) * args.paper_epochs)
    out.update({
        "paper_subset_images": len(sub), "paper_subset_epochs": args.paper_epochs,
        "paper_subset_seconds": round(spent, 1),
        "paper_seconds_per_image_epoch": round(per_image_epoch, 3),
        "paper_full_estimated_hours": round(per_image_epoch * len(tr) * 20 / 3600, 1),
        "paper_subset_val_accuracy": round(accuracy(model, va, paper), 4),
    })
    out["speedup_full_recipe"] = round(per_image_epoch * len(tr) * 20 / out["fast_seconds"], 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
