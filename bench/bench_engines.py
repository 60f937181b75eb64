"""torch against ONNX Runtime on the same model and photos: sort throughput, idle memory, classify, agreement.

    python bench/bench_engines.py [--model FILE] [--photos 120] [--out DIR] [--skip-naive]

With the same model file and the same photos, each command in a fresh process (start-up and model load
included), for --engine torch and --engine onnx:
  - `footsort sort` of --photos phone-sized JPEGs (bench_sort's photos; the naive loop once, for the ratio);
  - the idle RSS of `footsort watch` after it sorted a few photos;
  - the wall time of `footsort classify` of one photo (best of 3);
then, in this process, both engines label every shared validation photo (../shared/data/footwear-street):
agreement printed, every disagreement listed.

Without --model it copies the model in use (else the shipped one) into --out and exports the copy there;
nothing is written beside the shipped model. Run it on a quiet machine: `taskset -c 0,1 python ...`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STREET = REPO.parent / "shared" / "data" / "footwear-street"
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from bench_sort import NAIVE, env_for, fresh_inbox, make_photos, timed, watch_latency  # noqa: E402

ENGINES = ("torch", "onnx")


def prepared_model(given: str | None, work: Path) -> Path:
    """The model file to compare, with its ONNX export (a copy of the model in use when none is given)."""
    from footsort.model import onnx_export, registry

    if given:
        model = Path(given)
    else:
        model = work / "model" / "bench.safetensors"
        model.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(registry.in_use_path(), model)
    if onnx_export.find_export(model) is None:
        report = onnx_export.export(model, photos=sorted(STREET.glob("*/*.jpg"))[::30])
        print(f"exported {report.path} in {report.seconds:.0f} s (max logit difference {report.max_abs_diff:.2g})")
    return model


def with_engine(engine: str) -> None:
    """Every footsort process started from now on runs this engine (bench_sort's helpers copy os.environ)."""
    os.environ["FOOTSORT_MODEL_ENGINE"] = engine


def classify_once(model: Path, photo: Path, home: Path, tries: int = 3) -> float:
    """Best wall time of `footsort classify` of one photo, start-up included."""
    cmd = [sys.executable, "-m", "footsort.cli", "classify", "--model", str(model), str(photo)]
    return min(timed(cmd, env_for(home)) for _ in range(tries))


def agreement(model: Path) -> dict:
    """Both engines on every shared validation photo: labels, agreement, disagreements, accuracy."""
    from footsort.errors import UnreadableImage
    from footsort.model.engine import load_classifier

    photos = sorted(STREET.glob("*/*"))
    photos = [p for p in photos if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")]
    out: dict = {"photos": len(photos)}
    labels: dict[str, dict[Path, tuple[str, float]]] = {}
    for engine in ENGINES:
        clf = load_classifier(model, engine=engine, device="cpu", fuse="now")
        start = time.perf_counter()
        labels[engine] = {p: (r.label, r.confidence) for p, r in clf.iter_paths(photos)
                          if not isinstance(r, UnreadableImage)}
        out[f"{engine}_seconds"] = round(time.perf_counter() - start, 1)
        right = sum(lab == p.parent.name for p, (lab, _) in labels[engine].items())
        out[f"{engine}_accuracy"] = round(right / max(1, len(labels[engine])), 4)
    both = labels["torch"].keys() & labels["onnx"].keys()
    differ = sorted(p for p in both if labels["torch"][p][0] != labels["onnx"][p][0])
    out["compared"] = len(both)
    out["agreement"] = round(1 - len(differ) / max(1, len(both)), 4)
    out["max_confidence_difference"] = round(max((abs(labels["torch"][p][1] - labels["onnx"][p][1]) for p in both),
                                                 default=0.0), 6)
    out["disagreements"] = [{"photo": str(p), "torch": labels["torch"][p], "onnx": labels["onnx"][p]} for p in differ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file with or without an export (default: a copy of the model in use)")
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--drops", type=int, default=3, help="photos dropped into the watched inbox before measuring RSS")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "footsort-bench-engines")
    ap.add_argument("--skip-naive", action="store_true", help="leave out the naive loop (slow on 12 MP photos)")
    args = ap.parse_args()
    work = args.out
    work.mkdir(parents=True, exist_ok=True)
    model = prepared_model(args.model, work)
    photos = make_photos(work / "photos", args.photos)
    n = len(photos)
    homes = Path(tempfile.mkdtemp(prefix="footsort-bench-"))
    result: dict = {"photos": n, "model": str(model), "cpus": len(os.sched_getaffinity(0))}
    if not args.skip_naive:
        naive_s = timed([sys.executable, "-c", NAIVE, str(model), str(fresh_inbox(photos, work / "naive"))],
                        env_for(homes / "naive"))
        result["naive_seconds"] = round(naive_s, 2)
    for engine in ENGINES:
        with_engine(engine)
        home = homes / engine
        sort_s = timed([sys.executable, "-m", "footsort.cli", "-q", "sort", "--model", str(model),
                        str(fresh_inbox(photos, work / f"sort-{engine}"))], env_for(home))
        latencies, rss = watch_latency(str(model), photos, work, 1.0, args.drops)
        result[engine] = {"sort_seconds": round(sort_s, 2), "sort_images_per_s": round(n / sort_s, 2),
                          "ratio_to_naive": round(result["naive_seconds"] / sort_s, 2) if "naive_seconds" in result else None,
                          "watch_idle_rss_mib": round(rss / 1024, 1),
                          "watch_latency_median_s": round(statistics.median(latencies), 3),
                          "classify_one_photo_s": round(classify_once(model, photos[0], home), 2)}
    os.environ.pop("FOOTSORT_MODEL_ENGINE", None)
    result["agreement"] = agreement(model)
    (work / "bench_engines.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"{n} photos on {result['cpus']} CPUs, model {model}")
    if "naive_seconds" in result:
        print(f"  naive loop            {result['naive_seconds']:7.2f} s")
    print(f"  {'':<20}{'torch':>10}{'onnx':>10}")
    for key, label in (("sort_seconds", "sort (s)"), ("sort_images_per_s", "images/s"), ("ratio_to_naive", "x naive"),
                       ("watch_idle_rss_mib", "watch idle RSS MiB"), ("classify_one_photo_s", "classify 1 photo s"),
                       ("watch_latency_median_s", "watch latency s")):
        print(f"  {label:<20}" + "".join(f"{str(result[e][key]):>10}" for e in ENGINES))
    a = result["agreement"]
    print(f"  validation photos: {a['compared']} compared, agreement {a['agreement']:.4f}, accuracy torch "
          f"{a['torch_accuracy']:.4f} / onnx {a['onnx_accuracy']:.4f}, max confidence difference "
          f"{a['max_confidence_difference']:.2g}; labelling took torch {a['torch_seconds']} s, onnx {a['onnx_seconds']} s")
    for d in a["disagreements"]:
        print(f"    differ: {d['photo']}  torch {d['torch']}  onnx {d['onnx']}")
    print(f"  written {work / 'bench_engines.json'}")
    shutil.rmtree(homes, ignore_errors=True)


if __name__ == "__main__":
    main()
