"""Export the shipped model to ONNX beside it (footsort/data/default.onnx), checked on real photos.

    python bench/export_default_onnx.py [--model FILE] [--out FILE] [--photos DIR] [--limit 64]

Run it whenever footsort/data/default.safetensors is rebuilt, and commit both files together: the
export records the SHA-256 of the model file it came from, so a stale default.onnx is ignored (footsort
then sorts with torch) rather than used. The export stores its weights in fp16 exactly as the model file
does (onnxruntime computes in fp32), so it adds about the model file's size again, not twice that.
The export is refused, and nothing written, unless every logit on the photos (the shared validation
photos by default) and on made-up inputs is within onnx_export.ATOL + RTOL x |logit| of torch's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STREET = REPO.parent / "shared" / "data" / "footwear-street"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="model file (default: the shipped footsort/data/default.safetensors)")
    ap.add_argument("--out", type=Path, help="where the export goes (default: beside the model file, .onnx)")
    ap.add_argument("--photos", type=Path, default=STREET, help="folder of photos for the parity check")
    ap.add_argument("--limit", type=int, default=64, help="at most this many photos (spread over the folder)")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from footsort.model import onnx_export, registry
    from footsort.model.imaging import is_image_name

    model = args.model or registry.shipped_model_path()
    if not onnx_export.can_export():
        sys.exit("needs torch, onnx and onnxruntime: pip install -e '.[onnx]'")
    found = sorted(p for p in args.photos.rglob("*") if p.is_file() and is_image_name(p)) if args.photos.is_dir() else []
    photos = found[:: max(1, len(found) // args.limit)][: args.limit] if found else []
    if not photos:
        print(f"warning: no photos in {args.photos}; checking on made-up inputs only", file=sys.stderr)
    started = time.perf_counter()
    try:
        report = onnx_export.export(model, args.out, photos=photos)
    except onnx_export.ExportRefused as exc:
        sys.exit(f"refused: {exc}")
    size_in, size_out = model.stat().st_size, report.path.stat().st_size
    print(f"wrote {report.path} ({size_out / 1e6:.1f} MB; the model file is {size_in / 1e6:.1f} MB)")
    print(f"parity: {report.inputs} inputs ({len(photos)} photos), max logit difference to torch "
          f"{report.max_abs_diff:.2g} (allowed {onnx_export.ATOL:g} + {onnx_export.RTOL:g} x |logit|); "
          f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
