"""Peak memory of sorting photos just under Pillow's decompression-bomb limit (about 89 Mpx).

    python bench/bench_large_images.py [--each 2] [--workers 4] [--fake] [--keep DIR]

Makes a corpus of large images in a temporary folder (10900 x 8200 = 89.4 Mpx each: PNG, PNG with
alpha, JPEG; `--each` of every kind), then sorts it (dry run: the same decodes, nothing moved) in a
fresh process with the shipped model and `--workers` loader threads (4: the default on any machine
with 4 or more cores), and prints that process's peak RSS. It runs twice: as footsort does
(one huge decode at a time) and with that gate lifted, to show what the gate saves. Aim: under 1.5 GB.
`--fake` uses a stand-in classifier without torch (decoding memory only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (10900, 8200)  # 89.38 Mpx, just under Pillow's limit of 89,478,485

CHILD = r'''
import json, resource, sys, time
from collections import Counter
from pathlib import Path

from footsort.system import config
from footsort.sorting import pipeline as pl
from footsort.sorting.decide import Policy
from footsort.sorting.pipeline import Item, Pipeline, layout_for, load_classifier
from footsort.sorting.sorter import Sorter

folder, workers, gate, fake = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "gate", sys.argv[4] == "fake"
if not gate:
    pl.HUGE_DECODE = 10 ** 12  # every decode may run at once, as before the gate
cfg = config.load()
if fake:
    from footsort.model.prediction import Prediction
    from footsort.model.presets import fit_image

    class Fake:
        classes, version, input_size = ("sapatos", "tsinelas"), "fake", 224
        def prepare(self, image):
            return fit_image(image, 224, "pad")
        def predict_images(self, images):
            return [Prediction("sapatos", 0.9, {"sapatos": 0.9, "tsinelas": 0.1}, "fake") for _ in images]
    clf = Fake()
else:
    clf = load_classifier(cfg, fuse="never")

class Host:
    def emit(self, event):
        pass

start = time.perf_counter()
layout = layout_for(folder, cfg, clf.classes)
items = [Item(p, layout) for p in sorted(folder.iterdir()) if p.is_file()]
with Pipeline(clf, Sorter(None, dry_run=True), None, Host(), Policy(0.8, tuple(clf.classes)),
              batch_size=cfg.sort.batch_size, workers=workers, max_pixels=cfg.sort.max_pixels) as p:
    counts = Counter(o.action for o in p.run(items))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({"peak_mb": round(peak), "seconds": round(time.perf_counter() - start, 1), "outcomes": counts}))
'''


def make_corpus(folder: Path, each: int) -> list[Path]:
    """`each` PNG, PNG-with-alpha and JPEG files of SIZE, each with distinct content (no duplicates)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    gradient = Image.linear_gradient("L").resize(SIZE)
    rgb = Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), gradient))
    rgba = rgb.copy()
    rgba.putalpha(gradient)
    out = []
    for i in range(each):
        for name, im, kw in ((f"scan{i}.png", rgb, {"compress_level": 1}),
                             (f"poster{i}.png", rgba, {"compress_level": 1}),
                             (f"camera{i}.jpg", rgb, {"quality": 85})):
            im.putpixel((i, 0), (i * 40 % 256, 1, 2, 255)[: len(im.mode)])
            path = folder / name
            im.save(path, **kw)
            out.append(path)
    return out


def run(folder: Path, workers: int, gate: bool, fake: bool) -> dict:
    """Sort `folder` (dry run) in a fresh process; its peak RSS, time and outcomes."""
    argv = [sys.executable, "-c", CHILD, str(folder), str(workers), "gate" if gate else "nogate",
            "fake" if fake else "model"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the sort failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--each", type=int, default=2, help="images of each kind (PNG, PNG with alpha, JPEG)")
    ap.add_argument("--workers", type=int, default=4, help="loader threads (footsort's default: min(4, cores))")
    ap.add_argument("--fake", action="store_true", help="a stand-in classifier without torch")
    ap.add_argument("--keep", type=Path, help="make the corpus here and keep it (reused when present)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="footsort-large-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        files = sorted(folder.glob("*.*")) or make_corpus(folder, args.each)
        print(f"corpus: {len(files)} images of {SIZE[0]}x{SIZE[1]} ({SIZE[0] * SIZE[1] / 1e6:.1f} Mpx) in {folder} "
              f"({time.perf_counter() - t0:.0f} s to make)")
        model = "stand-in classifier" if args.fake else "shipped model"
        for gate in (True, False):
            r = run(folder, args.workers, gate, args.fake)
            what = "one huge decode at a time" if gate else "gate lifted (all at once)"
            print(f"{what:<27} {args.workers} threads, {model}: peak RSS {r['peak_mb']} MB, "
                  f"{r['seconds']} s, {dict(r['outcomes'])}")


if __name__ == "__main__":
    main()
