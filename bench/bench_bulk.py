"""Throughput of `footsort bulk`: the local engine against Ray Data on this machine, and what each stage costs.

    python bench/bench_bulk.py [--photos 1000] [--model FILE] [--work /tmp/footsort-bench-bulk] [--skip-ray]

Lists the same photos from ../shared/data/footwear-*/ (read in place, never copied or moved) into a
Parquet manifest, then, with the shipped model (or --model) and the default batch sizes:
  (1) stage costs on one core: decode (hash + decode at reduced scale + fit to the model's square)
      and predict (the model on batches), in ms per photo;
  (2) `footsort bulk MANIFEST --engine local`: photos/s, and seconds per stage summed over threads;
  (3) `footsort bulk MANIFEST --engine ray` on a local Ray: photos/s with and without Ray's start-up,
      and Ray Data's own per-operator times.
From (1) a cluster's pace can be estimated: photos/s ~ min(decode cores / decode s, model actors / predict s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def pick_photos(n: int) -> list[str]:
    """n photos spread evenly over every shared set and class (sorted, so every run takes the same ones)."""
    found = sorted(str(p) for p in SHARED.glob("footwear-*/*/*") if p.suffix.lower() in SUFFIXES)
    if len(found) < n:
        sys.exit(f"only {len(found)} photos under {SHARED}/footwear-*/: the benchmark needs ../shared beside the checkout")
    step = len(found) / n
    return [found[int(i * step)] for i in range(n)]


def stage_costs(uris: list[str], model: Path | None, sample: int = 100) -> tuple[float, float]:
    """Seconds per photo for decode and for predict, on one thread."""
    import torch

    from footsort.bulk.stages import DecodeSpec, Predict, decode
    from footsort.sorting.pipeline import load_classifier, policy_for
    from footsort.system import config

    torch.set_num_threads(1)
    cfg = config.load()
    clf = load_classifier(cfg, model, fuse="now")
    spec = DecodeSpec.of(clf, cfg.sort.max_pixels)
    start = time.perf_counter()
    decoded = [decode(u, spec) for u in uris[:sample]]
    decode_s = (time.perf_counter() - start) / sample
    predict = Predict(clf, policy_for(cfg, clf.classes))
    predict(decoded[:32])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(decoded), 32):
        predict(decoded[i:i + 32])
    predict_s = (time.perf_counter() - start) / len(decoded)
    torch.set_num_threads(os.cpu_count() or 1)
    return decode_s, predict_s


def run(manifest: Path, out: Path, engine: str, model: Path | None):
    from footsort.bulk.job import BulkJob, run_bulk
    from footsort.bulk.manifest import parse_source
    from footsort.system import config

    return run_bulk(BulkJob(parse_source(str(manifest)), str(out), engine), config.load(), model)  # type: ignore[arg-type]


def operator_lines(detail: str) -> list[str]:
    """The lines of Ray Data's statistics that say what each operator cost."""
    keep = ("Operator", "Remote wall time", "Remote cpu time", "Output num rows")
    return [line.strip() for line in detail.splitlines() if line.strip().startswith(keep)
            or "wall time" in line.lower() and "total" in line.lower()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--model", type=Path, default=None, help="model file (default: the shipped one)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "footsort-bench-bulk")
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("FOOTSORT_HOME", str(args.work / "home"))  # the shipped model, not this user's
    import pyarrow as pa
    import pyarrow.parquet as pq

    args.work.mkdir(parents=True, exist_ok=True)
    uris = pick_photos(args.photos)
    manifest = args.work / "manifest.parquet"
    pq.write_table(pa.table({"uri": uris}), manifest)
    print(f"{len(uris)} photos from {SHARED}/footwear-*/ ({os.cpu_count()} CPUs)")

    decode_s, predict_s = stage_costs(uris, args.model)
    print(f"stage costs, one thread: decode {1000 * decode_s:.1f} ms/photo, predict {1000 * predict_s:.1f} ms/photo "
          f"(batches of 32)")

    local = run(manifest, args.work / "local.parquet", "local", args.model)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in local.stages.items())
    print(f"local: {local.photos} photos in {local.seconds:.1f} s = {local.rate():.1f} photos/s "
          f"(model load included); per stage, summed over threads: {stages}")
    if args.skip_ray:
        return
    from footsort.bulk import ray_engine

    start = time.perf_counter()
    ray_engine.connect(None)
    ray_start = time.perf_counter() - start
    try:
        remote = run(manifest, args.work / "ray.parquet", "ray", args.model)
    finally:
        import ray

        ray.shutdown()
    total = remote.seconds + ray_start
    print(f"ray:   {remote.photos} photos in {total:.1f} s = {remote.photos / total:.1f} photos/s "
          f"(Ray start {ray_start:.1f} s included); without the start: {remote.rate():.1f} photos/s")
    for line in operator_lines(remote.detail):
        print(f"  {line}")
    from footsort.bulk.results import all_rows

    a = {r.uri: (r.action, r.label) for r in all_rows(str(args.work / "local.parquet"))}
    b = {r.uri: (r.action, r.label) for r in all_rows(str(args.work / "ray.parquet"))}
    same = sum(a[u] == b.get(u) for u in a)
    print(f"same action and label from both engines: {same} of {len(a)}")


if __name__ == "__main__":
    main()
