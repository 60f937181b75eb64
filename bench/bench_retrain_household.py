"""Does `footsort retrain` learn a new home's photos from a few corrections? The whole loop, through the CLI.

    python bench/build_default_model.py --variants no-street --ship no-street --out .bench-out/no_street.safetensors
    python bench/bench_retrain_household.py --model .bench-out/no_street.safetensors [--max-corrections 60]

footwear-street stands in for a home the model never saw: the model is built without it. Street is
split in halves (stratified, seed 1). Photos of the first half go into an inbox, in a shuffled order,
as many as keep the corrections at or under --max-corrections; `footsort sort` sorts them; every
wrong file and every file in review/ is moved by hand to its true folder (a correction, as a user
would); `footsort retrain` fine-tunes; `footsort evaluate` scores the second half before and after.

Prints: accuracy before and after on the unseen half, the share of errors removed, and how much of the
gap to a model that trained on street (--reference, the in-source street accuracy the build printed)
was closed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from footsort.learning.datasets import scan, stratified_split  # noqa: E402

SHARED = REPO.parent / "shared"
CLASSES = ("sapatos", "tsinelas")


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI as a user would (a fresh process each time)."""
    done = subprocess.run([str(Path(sys.executable).parent / "footsort"), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"footsort {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def link_folder(root: Path, samples, classes) -> Path:
    """An ImageFolder of symlinks to the given samples."""
    for s in samples:
        folder = root / classes[s.label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / s.path.name).symlink_to(s.path)
    return root


def accuracy(env: dict, folder: Path) -> float:
    """`footsort evaluate --json` accuracy of the model in use on `folder`."""
    return json.loads(cli(env, "evaluate", str(folder), "--json").stdout)["accuracy"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=REPO / ".bench-out" / "no_street.safetensors")
    ap.add_argument("--max-corrections", type=int, default=60)
    ap.add_argument("--reference", type=float, default=None,
                    help="street accuracy of a model that trained on street (default: read from the model build's results)")
    ap.add_argument("--retrain-args", default="", help="extra flags for `footsort retrain`, e.g. '--epochs 10'")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="footsort-household-"))
    env = {**os.environ, "FOOTSORT_HOME": str(work / "home"), "HOME": str(work)}
    env.pop("FOOTSORT_MODEL_PATH", None)
    t0 = time.perf_counter()

    # the model without street becomes the model in use, as a stored version
    os.environ.update({"FOOTSORT_HOME": env["FOOTSORT_HOME"]})
    from footsort.model import checkpoint, registry

    model, meta = checkpoint.load(args.model)
    results = REPO / ".bench-out" / "default3_results.json"
    built = json.loads(results.read_text()) if results.is_file() else {}
    if "temperature" in built:  # the calibration the build fitted on sources held out of training
        from dataclasses import replace

        model.temperature.fill_(built["temperature"])
        meta = replace(meta, temperature=built["temperature"])
    registry.add_version(model, meta)
    registry.use(meta.version)

    street = scan(SHARED / "data" / "footwear-street", CLASSES)
    first, second = stratified_split(street, 0.5, seed=1)
    scored = link_folder(work / "scored", second.samples, CLASSES)
    before = accuracy(env, scored)

    # which photos of the first half would need a hand correction (wrong, or sent to review)?
    out = cli(env, "classify", "--json", *[str(s.path) for s in first.samples]).stdout
    rows = {r["path"]: r for r in map(json.loads, out.splitlines()) if "label" in r}
    from footsort.system.config import load as load_config

    threshold = float(built.get("threshold", load_config().sort.threshold))
    order = list(first.samples)
    random.Random(0).shuffle(order)
    chosen, needs = [], 0
    for s in order:
        r = rows.get(str(s.path))
        fix = r is None or r["label"] != CLASSES[s.label] or r["confidence"] < threshold
        if needs + fix > args.max_corrections:
            break
        chosen.append(s)
        needs += fix
    inbox = work / "inbox"
    inbox.mkdir()
    for s in chosen:
        shutil.copy(s.path, inbox / s.path.name)
    cli(env, "sort", str(inbox), "--threshold", str(threshold))
    corrections = 0
    truth = {s.path.name: CLASSES[s.label] for s in chosen}
    for folder in ("review", *CLASSES):
        for p in sorted((inbox / folder).glob("*")) if (inbox / folder).is_dir() else []:
            true = truth.get(p.name)
            if true and true != folder:
                (inbox / true).mkdir(exist_ok=True)
                p.rename(inbox / true / p.name)
                corrections += 1
    retrain = cli(env, "retrain", str(inbox), *args.retrain_args.split())
    after = accuracy(env, scored)

    reference = args.reference
    if reference is None:
        reference = built.get("variants", {}).get("all", {}).get("street_val")
    print(f"model {meta.version} (T={float(meta.temperature):.3f}), threshold {threshold}")
    print(f"inbox: {len(chosen)} street photos sorted, {corrections} corrected by hand (limit {args.max_corrections}); "
          f"scored on the other half: {len(second)} photos")
    print("retrain said: " + " | ".join(line for line in retrain.stdout.splitlines() if line.strip()))
    err_before, err_after = 1 - before, 1 - after
    print(f"accuracy on unseen street photos: before {before:.4f}, after {after:.4f} "
          f"(errors {err_before:.4f} -> {err_after:.4f}: {(err_before - err_after) / err_before:.0%} of them gone)")
    if reference is not None:
        gap = reference - before
        print(f"gap to a model that trained on street ({reference:.4f}): {gap:.4f}; closed "
              f"{(after - before) / gap:.0%}" if gap > 0 else f"no gap to close (reference {reference:.4f})")
    print(f"total {time.perf_counter() - t0:.0f} s; work folder {work}")


if __name__ == "__main__":
    main()
