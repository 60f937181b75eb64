"""Build (and honestly measure) the shipped default model from ../shared data.

    python bench/build_default_model.py [--views 4] [--epochs 12] [--out footsort/data/default.safetensors]

Sources: footwear-dev (catalogue, white background) and footwear-street (worn, outdoors), each split
80/20 (stratified, seed 0); nothing is ever scored on images it trained on. Each image gets one clean view
and mild augmentations (large crops, flips, small rotations, colour jitter); a share of the dev views
are synthetic household scenes (footsort.synth). Reports accuracy per source, on
a synthetic household version of the dev validation split, on boots when trained without boots, and on
each source when trained without it. The frozen backbone runs once per view (features cached in
.bench-out/), so every variant below trains in seconds to minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from footsort import checkpoint, __version__  # noqa: E402
from footsort.datasets import scan, stratified_split  # noqa: E402
from footsort.presets import Preprocess, eval_transform  # noqa: E402
from footsort.synth import household_view  # noqa: E402
from footsort.trainer import (Recipe, extract_features, eval_inputs, fit_temperature, head_logits,  # noqa: E402
                              make_model, recipe_dict, tail_start, train_on_features, train_views)

SHARED = REPO.parent / "shared"
CLASSES = ("sapatos", "tsinelas")


def household_eval_inputs(data, size: int, seed: int = 123):
    """Fixed synthetic household scenes of held-out images (the 'harder check')."""
    tf = eval_transform(Preprocess(size=size, fit="squash"))
    from footsort.imaging import load_rgb

    return [lambda p=s.path, i=i: tf(household_view(load_rgb(p), random.Random(seed * 100003 + i), size))
            for i, s in enumerate(data.samples)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--fit", default="pad", choices=("crop", "pad", "squash"))
    ap.add_argument("--augment", default="mild", choices=("paper", "mild"))
    ap.add_argument("--synth", type=float, default=0.5, help="share of dev training views that are household scenes")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=REPO / "footsort" / "data" / "default.safetensors")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench-out" / "default_features.pt")
    ap.add_argument("--schedule", default="cosine", choices=("constant", "cosine"))
    ap.add_argument("--tune-stages", type=int, default=5,
                    help="also train the last N backbone stages (their input is cached instead of the final features)")
    ap.add_argument("--tune-lr", type=float, default=1e-4, help="learning rate of the tuned backbone stages")
    ap.add_argument("--street-repeat", type=int, default=2, help="street images count this many times per epoch")
    ap.add_argument("--variants", default="all,no-street,no-dev,no-boots")
    ap.add_argument("--curves", default="all", help="variants whose per-epoch validation scores are printed")
    args = ap.parse_args()
    torch.manual_seed(0)
    weights = str(SHARED / "weights" / "mobilenet_v2_imagenet.pth")

    dev = scan(SHARED / "data" / "footwear-dev", CLASSES)
    street = scan(SHARED / "data" / "footwear-street", CLASSES)
    dev_tr, dev_va = stratified_split(dev, 0.2, seed=0)
    st_tr, st_va = stratified_split(street, 0.2, seed=0)
    print(f"dev train {dev_tr.counts()} val {dev_va.counts()}; street train {st_tr.counts()} val {st_va.counts()}")

    base = Recipe(mode="cached", preset="lite", width=args.width, size=args.size, fit=args.fit, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, views=args.views, seed=0, augment=args.augment,
                  weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                  finetune_backbone=args.tune_stages, finetune_lr=args.tune_lr, schedule=args.schedule)
    model, origin = make_model(CLASSES, base, weights)
    split = tail_start(model, base)
    if split is not None:
        args.cache = args.cache.with_name(f"mid{split}_{args.cache.name}")
    t0 = time.perf_counter()
    if args.cache.exists():
        F = torch.load(args.cache, weights_only=True)
        print(f"loaded cached features from {args.cache}")
    else:
        F = {}
        mk, lb = train_views(dev_tr, replace(base, synth=args.synth))
        F["dev_tr"], F["dev_tr_y"] = extract_features(model, mk, args.size, desc="dev train views", stop=split), torch.tensor(lb)
        mk, lb = train_views(st_tr, replace(base, synth=0.0))
        F["st_tr"], F["st_tr_y"] = extract_features(model, mk, args.size, desc="street train views", stop=split), torch.tensor(lb)
        for fit in ("crop", "pad", "squash"):
            spec = Preprocess(size=args.size, fit=fit)
            F[f"dev_va_{fit}"] = extract_features(model, eval_inputs(dev_va, spec), args.size, stop=split)
            F[f"st_va_{fit}"] = extract_features(model, eval_inputs(st_va, spec), args.size, stop=split)
        F["dev_va_house"] = extract_features(model, household_eval_inputs(dev_va, args.size), args.size, stop=split)
        F["dev_va_y"] = torch.tensor([s.label for s in dev_va.samples])
        F["st_va_y"] = torch.tensor([s.label for s in st_va.samples])
        F["dev_tr_boot"] = torch.tensor([s.path.name.startswith("boot_") for s in dev_tr.samples for _ in range(args.views)])
        F["dev_va_boot"] = torch.tensor([s.path.name.startswith("boot_") for s in dev_va.samples])
        args.cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(F, args.cache)
    print(f"features ready in {time.perf_counter() - t0:.0f} s")
    print(json.dumps({k: list(v.shape) for k, v in F.items()}))

    V = args.views
    fits = ("crop", "pad", "squash")

    def logits_of(m, feats):
        return head_logits(m, feats, start=split)

    def _acc(m, feats, labels) -> float:
        if len(labels) == 0:
            return float("nan")
        return float((logits_of(m, feats).argmax(1) == labels).float().mean())

    def evaluate(m) -> dict:
        out = {}
        for fit in fits:
            out[f"dev_{fit}"] = _acc(m, F[f"dev_va_{fit}"], F["dev_va_y"])
            out[f"street_{fit}"] = _acc(m, F[f"st_va_{fit}"], F["st_va_y"])
        out["dev_household"] = _acc(m, F["dev_va_house"], F["dev_va_y"])
        boots = F["dev_va_boot"]
        out["dev_boots"] = _acc(m, F["dev_va_crop"][boots], F["dev_va_y"][boots])
        return out

    results = {}
    final = None
    for variant in args.variants.split(","):
        parts_x, parts_y = [], []
        if variant != "no-dev":
            keep = ~F["dev_tr_boot"] if variant == "no-boots" else torch.ones(len(F["dev_tr_y"]), dtype=torch.bool)
            parts_x.append(F["dev_tr"][keep]); parts_y.append(F["dev_tr_y"][keep])
        if variant != "no-street":
            parts_x += [F["st_tr"]] * args.street_repeat; parts_y += [F["st_tr_y"]] * args.street_repeat
        X, Y = torch.cat(parts_x), torch.cat(parts_y)
        m, _ = make_model(CLASSES, base, weights)
        t1 = time.perf_counter()
        curve = []
        watch = variant in args.curves.split(",")

        def log(e, variant=variant, watch=watch) -> None:
            ev = evaluate(m) if watch else {}
            curve.append((e.epoch, round(e.train_acc, 4), ev))
            print(f"  [{variant}] epoch {e.epoch}: train {e.train_acc:.3f} ({e.seconds:.0f} s) "
                  + " ".join(f"{k} {v:.3f}" for k, v in ev.items()), flush=True)

        train_on_features(m, X, Y, V, None, None, base, log=log)
        results[variant] = {"n_train_images": len(Y) // V, "seconds": round(time.perf_counter() - t1, 1), **evaluate(m)}
        print(variant, json.dumps(results[variant]))
        if variant == "all":
            final = m
    print(json.dumps(results, indent=1))
    (args.cache.parent / "default_results.json").write_text(json.dumps(results, indent=1))
    if final is None:
        return
    # choose the eval fit on the validation splits, then calibrate on them
    r = results["all"]
    fit = max(fits, key=lambda f: r[f"dev_{f}"] + r[f"street_{f}"])
    logits = torch.cat([logits_of(final, F[f"dev_va_{fit}"]), logits_of(final, F[f"st_va_{fit}"]),
                        logits_of(final, F["dev_va_house"])])
    labels = torch.cat([F["dev_va_y"], F["st_va_y"], F["dev_va_y"]])
    temperature = fit_temperature(logits, labels)
    final.temperature.fill_(temperature)
    probs = torch.softmax(logits / temperature, 1)
    conf, pred = probs.max(1)
    calib = {}
    for th in (0.5, 0.7, 0.8, 0.9, 0.95):
        sel = conf >= th
        calib[str(th)] = {"coverage": round(float(sel.float().mean()), 4),
                          "accuracy": round(float((pred[sel] == labels[sel]).float().mean()) if sel.any() else 1.0, 4)}
    print("fit", fit, "temperature", round(temperature, 3), json.dumps(calib))
    meta = checkpoint.ModelVersion(
        version="default-" + checkpoint.new_version_id()[:8], classes=CLASSES,
        arch=dict(final.arch.__dict__), preprocess=Preprocess(size=args.size, fit=fit).to_dict(),
        temperature=temperature, recipe={**recipe_dict(base), "synth_share_dev": args.synth, "street_repeat": args.street_repeat, "fit": fit},
        data={"train": {"footwear-dev": dev_tr.counts(), "footwear-street": st_tr.counts()},
              "validation": {"footwear-dev": dev_va.counts(), "footwear-street": st_va.counts()}},
        metrics={"val_accuracy": round((r[f"dev_{fit}"] * len(dev_va) + r[f"street_{fit}"] * len(st_va)) / (len(dev_va) + len(st_va)), 4),
                 "validation": {k: round(v, 4) for k, v in results["all"].items() if isinstance(v, float)},
                 "held_out_source": {k: v for k, v in results.items() if k != "all"},
                 "calibration": calib},
        created=checkpoint.now_iso(), footsort_version=__version__, backbone_origin="mobilenet_v2_imagenet.pth "
        "(TensorFlow MobileNetV2 1.0/224 from google-coral/test_data, Apache-2.0)")
    checkpoint.save(final, meta, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
