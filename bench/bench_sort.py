"""Throughput of `footsort sort` against a naive per-image loop, watch latency and idle memory.

    python bench/bench_sort.py [--model FILE] [--photos 120] [--rounds 3] [--settle 1.0] [--out .bench-out/sort]

Makes phone-sized photos (4032x3024 JPEGs, upscaled from ../shared/data/footwear-dev), then times,
with the same model file and start-up and model load included, each in a fresh process:
  (a) a naive loop in the style of the paper's code: PIL open, full decode, Resize(300) +
      CenterCrop(300), one forward pass per image, shutil.move;
  (b) `footsort sort` on a copy of the same photos.
(a) and (b) alternate --rounds times (each run on a fresh copy of the photos, (b) in a fresh FOOTSORT_HOME),
so that a load that comes and goes weighs on both alike; the ratio is that of the median times, and each
round's own ratio is printed beside it. It prints which engine `footsort sort` ran (ONNX Runtime when it
is installed and the model has an export, else torch), images/second for both and the ratio, then starts
`footsort watch`, drops photos one at a time and reports the latency from a file landing in the inbox to
its move, and the daemon's memory when idle. Run it on a quiet machine (torch's threads in the naive loop
slow down far more than footsort under load, which inflates the ratio); pin CPUs to compare with the
issue's 2-core goal: `taskset -c 0,1 python bench/bench_sort.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DEV = REPO.parent / "shared" / "data" / "footwear-dev"
PHONE = (4032, 3024)

NAIVE = r'''
import shutil, sys, time
from pathlib import Path
t0 = time.perf_counter()
import torch
from PIL import Image
from torchvision import transforms
from footsort.model.checkpoint import load
model, meta = load(sys.argv[1])
model.eval()
classes = list(meta.classes)
tf = transforms.Compose([transforms.Resize(300), transforms.CenterCrop(300), transforms.ToTensor(),
                         transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
inbox = Path(sys.argv[2])
for path in sorted(inbox.glob("*.jpg")):
    image = Image.open(path).convert("RGB")
    with torch.no_grad():
        label = classes[int(model(tf(image).unsqueeze(0)).argmax(1))]
    (inbox / label).mkdir(exist_ok=True)
    shutil.move(str(path), str(inbox / label / path.name))
print(time.perf_counter() - t0)
'''


def make_photos(folder: Path, n: int) -> list[Path]:
    """n phone-sized JPEGs made by upscaling shared dev images (kept between runs)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.jpg"))
    if len(have) >= n:
        return have[:n]
    sources = sorted(SHARED_DEV.glob("*/*.jpg"))
    if not sources:
        sys.exit(f"no photos in {SHARED_DEV}: the benchmark needs ../shared beside the checkout")
    step = max(1, len(sources) // n)
    for i, src in enumerate(sources[::step][:n]):
        with Image.open(src) as im:
            im.convert("RGB").resize(PHONE, Image.BICUBIC).save(folder / f"{src.parent.name}_{i:03d}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))[:n]


def fresh_inbox(photos: list[Path], where: Path) -> Path:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    for p in photos:
        shutil.copy(p, where / p.name)
    return where


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "FOOTSORT_HOME": str(home), "PYTHONPATH": str(REPO)}


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def watch_latency(model: str, photos: list[Path], work: Path, settle: float, drops: int) -> tuple[list[float], int]:
    """Seconds from a photo landing in a watched inbox to its move; the daemon's idle RSS in KiB."""
    inbox, home = work / "watch-inbox", work / "watch-home"
    shutil.rmtree(inbox, ignore_errors=True)
    inbox.mkdir(parents=True)
    log = open(work / "watch.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "footsort.cli", "watch", "--model", model, "--settle",
                             str(settle), str(inbox)], env=env_for(home), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 300
        while "watching" not in (work / "watch.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        latencies = []
        for p in photos[:drops]:
            tmp = inbox / (p.name + ".part")
            shutil.copy(p, tmp)
            start = time.perf_counter()
            os.rename(tmp, inbox / p.name)
            while (inbox / p.name).exists():
                time.sleep(0.005)
            latencies.append(time.perf_counter() - start)
            time.sleep(0.5)
        time.sleep(3)
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS")) if Path("/proc").is_dir() else 0
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    return latencies, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file (default: the model in use, else the shipped one)")
    ap.add_argument("--photos", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3, help="naive loop and `footsort sort` runs, alternated")
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--drops", type=int, default=5, help="photos dropped one by one for the latency")
    ap.add_argument("--out", type=Path, default=REPO / ".bench-out" / "sort")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.model is None:
        from footsort.model import registry

        args.model = str(registry.in_use_path())
    work = args.out
    photos = make_photos(work / "photos", args.photos)
    n = len(photos)
    tmp_home = Path(tempfile.mkdtemp(prefix="footsort-bench-"))

    from footsort.model.engine import describe

    engine = describe(args.model, os.environ.get("FOOTSORT_MODEL_ENGINE", "auto"),  # what `footsort sort` runs
                      os.environ.get("FOOTSORT_MODEL_DEVICE", "auto")).engine
    naive_times, ours_times = [], []
    for r in range(args.rounds):
        naive_inbox = fresh_inbox(photos, work / "naive")
        naive_times.append(timed([sys.executable, "-c", NAIVE, args.model, str(naive_inbox)],
                                 env_for(tmp_home / f"naive-{r}")))
        ours_inbox = fresh_inbox(photos, work / "footsort")
        ours_times.append(timed([sys.executable, "-m", "footsort.cli", "-q", "sort", "--model", args.model,
                                 str(ours_inbox)], env_for(tmp_home / f"sort-{r}")))
        print(f"  round {r + 1}/{args.rounds}: naive {naive_times[-1]:.2f} s, footsort sort {ours_times[-1]:.2f} s, "
              f"{naive_times[-1] / ours_times[-1]:.2f}x", flush=True)
    naive_s, ours_s = statistics.median(naive_times), statistics.median(ours_times)
    latencies, rss = watch_latency(args.model, photos, work, args.settle, args.drops)

    result = {
        "photos": n, "size": f"{PHONE[0]}x{PHONE[1]}", "model": args.model, "engine": engine,
        "cpus": len(os.sched_getaffinity(0)), "rounds": args.rounds,
        "naive_seconds_each": [round(t, 2) for t in naive_times],
        "footsort_seconds_each": [round(t, 2) for t in ours_times],
        "naive_seconds": round(naive_s, 2), "naive_images_per_s": round(n / naive_s, 2),
        "footsort_seconds": round(ours_s, 2), "footsort_images_per_s": round(n / ours_s, 2),
        "ratio": round(naive_s / ours_s, 2),
        "watch_latency_median_s": round(statistics.median(latencies), 3), "settle_s": args.settle,
        "watch_latency_minus_settle_s": round(statistics.median(latencies) - args.settle, 3),
        "idle_rss_mib": round(rss / 1024, 1),
    }
    (work / "bench_sort.json").write_text(json.dumps(result, indent=2))
    print(f"{n} photos {result['size']} on {result['cpus']} CPUs, model {args.model} ({engine} engine), "
          f"medians of {args.rounds} round(s)")
    print(f"  naive loop     {naive_s:7.2f} s  {result['naive_images_per_s']:6.2f} images/s")
    print(f"  footsort sort  {ours_s:7.2f} s  {result['footsort_images_per_s']:6.2f} images/s")
    print(f"  ratio          {result['ratio']:.2f}x (goal >= 8)")
    print(f"  watch latency  {result['watch_latency_median_s']:.3f} s median over {len(latencies)} drops "
          f"(settle {args.settle:g} s + {result['watch_latency_minus_settle_s']:.3f} s; goal settle + 0.5 s)")
    print(f"  idle memory    {result['idle_rss_mib']} MiB RSS")
    shutil.rmtree(tmp_home, ignore_errors=True)


if __name__ == "__main__":
    main()
