"""Build (and honestly measure) the shipped default model from all three shared sources.

    python bench/build_default_model.py [--views 4] [--epochs 12] [--out footsort/data/default.safetensors]

Sources: footwear-dev (catalogue), footwear-street (worn, outdoors) and footwear-web (marketplace,
many angles). Near-duplicates are found with a difference hash: within footwear-web they are kept on
one side of its split (split by group), and photos that repeat across sources are left out of every
set. footwear-dev and footwear-street keep their 80/20 stratified splits (seed 0, as the tests expect).

What decides the recipe: leave-one-source-out checks. For each source, a model is trained on the two
others and scored on every photo of the held-out one; that is the honest estimate of a user's photos
from a source footsort never saw. The in-source validation splits are reported too.

Calibration: the temperature is fitted on the leave-one-source-out logits (never on in-source splits),
and the default threshold is the lowest one at which every held-out source's auto-sorted photos are
right at least --target-precision of the time. The backbone's early stages run once per view
(their output is cached in .bench-out/), so every variant trains in minutes.
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

from footsort import __version__  # noqa: E402
from footsort.learning.datasets import LabelledSet  # noqa: E402
from footsort.learning.metrics import risk_coverage, threshold_table  # noqa: E402
from footsort.learning.sources import SOURCES, split_sources  # noqa: E402
from footsort.learning.synth import household_view  # noqa: E402
from footsort.learning.trainer import (  # noqa: E402
    Recipe,
    eval_inputs,
    extract_features,
    fit_temperature,
    head_logits,
    make_model,
    recipe_dict,
    tail_start,
    train_on_features,
    train_views,
)
from footsort.model import checkpoint  # noqa: E402
from footsort.model.hybrid import with_prior  # noqa: E402
from footsort.model.presets import Preprocess, eval_transform  # noqa: E402

SHARED = REPO.parent / "shared"
CLASSES = ("sapatos", "tsinelas")
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)


def household_eval_inputs(data: LabelledSet, size: int, seed: int = 123):
    """Fixed synthetic household scenes of held-out images (a harder in-source check)."""
    tf = eval_transform(Preprocess(size=size, fit="squash"))
    from footsort.model.imaging import load_rgb

    return [lambda p=s.path, i=i: tf(household_view(load_rgb(p), random.Random(seed * 100003 + i), size))
            for i, s in enumerate(data.samples)]


def flipped_inputs(data: LabelledSet, spec: Preprocess):
    """The eval inputs mirrored left-right (test-time flip)."""
    return [lambda make=make: torch.flip(make(), dims=[2]) for make in eval_inputs(data, spec)]


def prepare_sets(args) -> dict[str, dict[str, LabelledSet]]:
    """Per source: train and validation sets (footsort.learning.sources: near-duplicates never straddle a split)."""
    t0 = time.perf_counter()
    splits = split_sources(SHARED / "data", CLASSES)
    print(f"near-duplicates (256-bit dhash, <= 12 bits apart): {splits.near_pairs_within} pairs within sources, "
          f"{splits.repeated_across} photos repeated across sources (left out everywhere); {time.perf_counter() - t0:.0f} s")
    sets: dict[str, dict[str, LabelledSet]] = {}
    for name, part in splits.sources.items():
        tr, va = part.train, part.val
        if args.limit:  # a quick smoke run of the whole script
            tr, va = tr.subset(tr.samples[::max(1, len(tr) // args.limit)]), va.subset(va.samples[::max(1, len(va) // args.limit)])
        sets[name] = {"train": tr, "val": va}
        print(f"{name}: train {tr.counts()} val {va.counts()}")
    return sets


def extract_all(args, sets, model, split: int | None) -> dict[str, torch.Tensor]:
    """Cached backbone inputs of the tuned stages for every view, validation input and check."""
    F: dict[str, torch.Tensor] = {}
    spec = Preprocess(size=args.size, fit=args.fit)
    base = Recipe(mode="cached", size=args.size, fit=args.fit, views=args.views, seed=0, augment=args.augment)
    for name, part in sets.items():
        tr, va = part["train"], part["val"]
        synth = {"dev": args.synth, "web": args.synth_web, "street": 0.0}[name]
        mk, lb = train_views(tr, replace(base, synth=synth))
        F[f"{name}_tr"] = extract_features(model, mk, args.size, desc=f"{name} train views", stop=split)
        F[f"{name}_tr_y"] = torch.tensor(lb)
        F[f"{name}_va"] = extract_features(model, eval_inputs(va, spec), args.size, desc=f"{name} val", stop=split)
        F[f"{name}_va_flip"] = extract_features(model, flipped_inputs(va, spec), args.size, desc=f"{name} val flip", stop=split)
        F[f"{name}_va_y"] = torch.tensor([s.label for s in va.samples])
        if name != "street":
            F[f"{name}_va_house"] = extract_features(model, household_eval_inputs(va, args.size), args.size,
                                                     desc=f"{name} household check", stop=split)
    return F


def precision_table(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Share sorted and accuracy of the sorted per threshold, and the coverage at 0.95 and 0.98 precision."""
    conf, pred = probs.max(1)
    right = (pred == labels).tolist()
    conf_l = conf.tolist()
    table = {str(r.threshold): {"sorted": round(r.sorted_share, 4),
                                "accuracy": None if r.sorted_accuracy is None else round(r.sorted_accuracy, 4)}
             for r in threshold_table(conf_l, right, THRESHOLDS)}
    curve = risk_coverage(conf_l, right)
    out = {"accuracy": round(float((pred == labels).float().mean()), 4), "n": len(labels), "thresholds": table}
    for target in (0.95, 0.98):
        best = max((c for c, acc, _ in curve if acc >= target), default=0.0)
        out[f"coverage_at_{target}"] = round(best, 4)
    return out


def lowest_threshold(per_source: list[tuple[torch.Tensor, torch.Tensor]], target: float) -> float:
    """The lowest threshold (0.005 steps) at which every source's sorted photos reach `target` accuracy."""
    for k in range(100, 200):
        th = k / 200
        ok = True
        for probs, labels in per_source:
            conf, pred = probs.max(1)
            sel = conf >= th
            if sel.any() and float((pred[sel] == labels[sel]).float().mean()) < target:
                ok = False
                break
        if ok:
            return th
    return 0.995


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--fit", default="pad", choices=("crop", "pad", "squash"))
    ap.add_argument("--augment", default="mild", choices=("paper", "mild"))
    ap.add_argument("--synth", type=float, default=0.5, help="share of dev training views that are household scenes")
    ap.add_argument("--synth-web", type=float, default=0.5, help="share of web training views that are household scenes")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=REPO / "footsort" / "data" / "default.safetensors")
    ap.add_argument("--cache", type=Path, default=REPO / ".bench-out" / "default3_features.pt")
    ap.add_argument("--schedule", default="cosine", choices=("constant", "cosine"))
    ap.add_argument("--tune-stages", type=int, default=5,
                    help="also train the last N backbone stages (their input is cached instead of the final features)")
    ap.add_argument("--tune-lr", type=float, default=1e-4, help="learning rate of the tuned backbone stages")
    ap.add_argument("--balance", default="source-class", choices=("none", "source-class"),
                    help="source-class: every source counts equally, each half tsinelas and half sapatos")
    ap.add_argument("--per-source", type=int, default=800, help="draws per source per epoch when balanced")
    ap.add_argument("--prior-weight", type=float, default=1.0,
                    help="weight of ImageNet's own sandal/shoe classes beside the head (footsort.model.prior); 0: none")
    ap.add_argument("--tta", action="store_true", help="score with a test-time flip (average of both logits)")
    ap.add_argument("--target-precision", type=float, default=0.95)
    ap.add_argument("--variants", default="no-dev,no-street,no-web,all")
    ap.add_argument("--keep-variants", action="store_true", help="also save every variant's model in .bench-out/")
    ap.add_argument("--reuse-variants", action="store_true",
                    help="load the variants an earlier --keep-variants run of this recipe saved instead of training them")
    ap.add_argument("--ship", default="all", help="the variant saved to --out (e.g. no-street for bench_retrain_household.py)")
    ap.add_argument("--limit", type=int, default=0, help="smoke run: about this many photos per split and source")
    args = ap.parse_args()
    torch.manual_seed(0)
    weights = str(SHARED / "weights" / "mobilenet_v2_imagenet.pth")
    sets = prepare_sets(args)
    base = Recipe(mode="cached", preset="lite", width=args.width, size=args.size, fit=args.fit, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, views=args.views, seed=0, augment=args.augment,
                  weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                  finetune_backbone=args.tune_stages, finetune_lr=args.tune_lr, schedule=args.schedule,
                  tta_flip=args.tta, prior_weight=args.prior_weight)
    model, origin = make_model(CLASSES, base, weights)
    split = tail_start(model, base)
    cache = args.cache.with_name(f"mid{split}_v{args.views}_s{args.synth}_{args.synth_web}_{args.size}{args.fit}_{args.cache.name}")
    t0 = time.perf_counter()
    if cache.exists():
        F = torch.load(cache, weights_only=True)
        print(f"loaded cached features from {cache}")
    else:
        F = extract_all(args, sets, model, split)
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(F, cache)
    print(f"features ready in {time.perf_counter() - t0:.0f} s", flush=True)
    V = args.views

    def logits_of(m, feats, flip=None, tta=None):
        out = head_logits(m, feats, start=split)
        if (args.tta if tta is None else tta) and flip is not None:
            out = (out + head_logits(m, flip, start=split)) / 2
        return out

    def whole_source(m, name):
        """Logits for every photo of a source (clean view 0 of train, plus val) and their labels."""
        clean = F[f"{name}_tr"][::V]
        logits = torch.cat([logits_of(m, clean, tta=False), logits_of(m, F[f"{name}_va"], tta=False)])
        return logits, torch.cat([F[f"{name}_tr_y"][::V], F[f"{name}_va_y"]])

    def acc(logits, labels) -> float:
        return round(float((logits.argmax(1) == labels).float().mean()), 4)

    results: dict[str, dict] = {}
    loso: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    final = None
    for variant in args.variants.split(","):
        held = variant[3:] if variant.startswith("no-") else None
        names = [n for n in SOURCES if n != held]
        X = torch.cat([F[f"{n}_tr"] for n in names])
        Y = torch.cat([F[f"{n}_tr_y"] for n in names])
        weights_per_image = None
        if args.balance == "source-class":
            w = []
            for n in names:
                y = F[f"{n}_tr_y"][::V]
                counts = torch.bincount(y, minlength=len(CLASSES)).clamp(min=1)
                w.append(args.per_source / (len(CLASSES) * counts[y].double()))
            weights_per_image = torch.cat(w)
        keep = args.cache.parent / f"variant-{variant}.safetensors"
        t1 = time.perf_counter()
        if args.reuse_variants and keep.exists():  # trained by an earlier run of the same recipe
            m, _ = checkpoint.load(keep)
            print(f"[{variant}] reused {keep}", flush=True)
            if args.prior_weight and m.prior is None:  # the prior never trains: it can join afterwards
                m = with_prior(m, CLASSES, args.prior_weight, args.tune_stages, weights)
            elif m.prior is not None:
                m.arch = replace(m.arch, prior_weight=args.prior_weight)
        else:
            m, _ = make_model(CLASSES, base, weights)

            def log(e, variant=variant) -> None:
                print(f"  [{variant}] epoch {e.epoch}: train {e.train_acc:.3f} ({e.seconds:.0f} s)", flush=True)

            train_on_features(m, X, Y, V, None, None, base, log=log, image_weights=weights_per_image)
        m.eval()
        r: dict = {"n_train_images": len(Y) // V, "seconds": round(time.perf_counter() - t1, 1)}
        for n in names:
            r[f"{n}_val"] = acc(logits_of(m, F[f"{n}_va"], F[f"{n}_va_flip"]), F[f"{n}_va_y"])
            if f"{n}_va_house" in F:
                r[f"{n}_household"] = acc(logits_of(m, F[f"{n}_va_house"]), F[f"{n}_va_y"])
        if held:
            logits, labels = whole_source(m, held)
            loso[held] = (logits, labels)
            r[f"{held}_unseen"] = acc(logits, labels)
            # test-time flip, measured on the held-out source's validation part (flipped inputs are cached for those)
            r[f"{held}_unseen_val"] = acc(logits_of(m, F[f"{held}_va"], tta=False), F[f"{held}_va_y"])
            r[f"{held}_unseen_val_tta"] = acc(logits_of(m, F[f"{held}_va"], F[f"{held}_va_flip"], tta=True), F[f"{held}_va_y"])
            per_class = {CLASSES[c]: acc(logits[labels == c], labels[labels == c]) for c in range(len(CLASSES))}
            r[f"{held}_unseen_per_class"] = per_class
        results[variant] = r
        print(variant, json.dumps(r), flush=True)
        if variant == args.ship:
            final = m
        if args.keep_variants:  # e.g. the model without street, for bench_retrain_household.py
            checkpoint.save(m, checkpoint.ModelVersion(
                version=f"{variant}-" + checkpoint.new_version_id()[:8], classes=CLASSES, arch=dict(m.arch.__dict__),
                preprocess=Preprocess(size=args.size, fit=args.fit).to_dict(), temperature=1.0,
                recipe=recipe_dict(base), metrics={"variant": r}, created=checkpoint.now_iso(),
                footsort_version=__version__), keep)
    summary_path = cache.parent / "default3_results.json"
    report: dict = {"variants": results}
    temperature = 1.0
    threshold = 0.8
    if loso:
        all_logits = torch.cat([v[0] for v in loso.values()])
        all_labels = torch.cat([v[1] for v in loso.values()])
        temperature = fit_temperature(all_logits, all_labels)
        per_source = {n: (torch.softmax(lg / temperature, 1), lb) for n, (lg, lb) in loso.items()}
        threshold = lowest_threshold(list(per_source.values()), args.target_precision)
        report["temperature"] = round(temperature, 4)
        report["threshold"] = threshold
        report["unseen_sources"] = {n: precision_table(p, lb) for n, (p, lb) in per_source.items()}
        for n, (p, lb) in per_source.items():
            (row,) = threshold_table(p.max(1)[0].tolist(), (p.argmax(1) == lb).tolist(), [threshold])
            report["unseen_sources"][n]["at_default"] = {
                "sorted": round(row.sorted_share, 4),
                "accuracy": None if row.sorted_accuracy is None else round(row.sorted_accuracy, 4)}
        from footsort.learning.metrics import expected_calibration_error

        report["unseen_ece"] = {n: round(expected_calibration_error(p.max(1)[0].tolist(), (p.argmax(1) == lb).tolist()), 4)
                                for n, (p, lb) in per_source.items()}
        print(f"temperature {temperature:.3f} (fitted on leave-one-source-out logits); threshold {threshold} "
              f"(every unseen source >= {args.target_precision} precision)")
    print(json.dumps(report, indent=1))
    summary_path.write_text(json.dumps(report, indent=1))
    if final is None:
        return
    final.temperature.fill_(temperature)
    trained = [n for n in SOURCES if args.ship != f"no-{n}"]
    meta = checkpoint.ModelVersion(
        version="default-" + checkpoint.new_version_id()[:8], classes=CLASSES,
        arch=dict(final.arch.__dict__), preprocess=Preprocess(size=args.size, fit=args.fit).to_dict(),
        temperature=temperature,
        recipe={**recipe_dict(base), "synth_share_dev": args.synth, "synth_share_web": args.synth_web,
                "balance": args.balance, "per_source": args.per_source},
        data={"train": {n: sets[n]["train"].counts() for n in trained},
              "validation": {n: sets[n]["val"].counts() for n in SOURCES}},
        metrics={"val_accuracy": round(sum(results[args.ship][f"{n}_val"] * len(sets[n]["val"]) for n in trained)
                                       / sum(len(sets[n]["val"]) for n in trained), 4),
                 "n_val": sum(len(sets[n]["val"]) for n in trained),
                 "validation": {k: v for k, v in results[args.ship].items() if isinstance(v, float)},
                 "held_out_source": {k: v for k, v in results.items() if k != "all"},
                 "threshold": threshold, "target_precision": args.target_precision,
                 "unseen_sources": report.get("unseen_sources", {})},
        created=checkpoint.now_iso(), footsort_version=__version__, backbone_origin="mobilenet_v2_imagenet.pth "
        "(TensorFlow MobileNetV2 1.0/224 from google-coral/test_data, Apache-2.0)")
    checkpoint.save(final, meta, args.out)
    print(f"saved {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
