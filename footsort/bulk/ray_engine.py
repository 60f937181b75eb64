"""The Ray engine: the bulk stages on Ray Data.

    dataset of uris (manifest read by Ray, or a listing) -> map_batches(decode_batch): CPU tasks
    -> map_batches(RayPredict): an actor pool, one model copy per actor, a GPU each when there are GPUs
    -> streamed back to the driver, appended to the results file

Batches are bounded at both stages, so memory stays flat however many photos there are; a photo that
cannot be read is a row with an error, never a failed task.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from footsort.bulk.manifest import Source
from footsort.bulk.stages import Decoded, DecodeSpec, ModelSource, Predict, decode
from footsort.bulk.stats import Stats
from footsort.errors import FootsortError
from footsort.sorting.decide import Policy

INSTALL_RAY = "pip install 'footsort[ray]'"
DECODE_MEMORY = 512 * 2**20  # bytes reserved per decode task: a batch of photos decoded at reduced scale


def require_ray():
    """ray (with Ray Data), or a one-line way to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise FootsortError(f"--engine ray needs Ray Data, which is not installed: {INSTALL_RAY}") from None
    return ray


@dataclass(frozen=True)
class RayPlan:
    """How the work is spread: actors, their CPUs and GPUs, and the batch sizes of both stages."""

    actors: int
    actor_cpus: float
    actor_gpus: float
    batch_size: int  # photos per model call
    decode_batch: int  # photos per decode task call

    @classmethod
    def for_cluster(cls, resources: dict, device: str = "auto", actors: int | None = None,
                    batch_size: int | None = None, decode_batch: int = 32) -> "RayPlan":
        """GPUs: one actor per GPU, big batches. CPUs only: about half the cores run the model, half decode."""
        gpus = int(resources.get("GPU", 0)) if device in ("auto", "cuda") else 0
        cpus = max(1, int(resources.get("CPU", 1)))
        if device == "cuda" and not gpus:
            raise FootsortError("--device cuda asked for, but the Ray cluster has no GPU; use --device auto or cpu")
        if gpus:
            return cls(actors or gpus, 1, 1, batch_size or 256, decode_batch)
        actor_cpus = 2 if cpus >= 8 else 1
        return cls(actors or max(1, cpus // (2 * actor_cpus)), actor_cpus, 0, batch_size or 64, decode_batch)


def decode_batch(batch: dict[str, Any], spec: DecodeSpec) -> dict[str, Any]:
    """Stage 1 on a Ray CPU task: a batch of uris -> hashes, errors and RGB arrays (size x size for a model file)."""
    import numpy as np

    uris = [str(u) if u is not None else "" for u in batch["uri"]]
    side = int(spec.size or spec.min_side or 1)
    placeholder = np.zeros((side, side, 3), dtype=np.uint8)  # unreadable photos: ok = False
    images, ok, hashes, errors, resolved = [], [], [], [], []
    for uri in uris:
        d = decode(uri, spec)
        images.append(np.asarray(d.image, dtype=np.uint8) if d.image is not None else placeholder)
        ok.append(d.image is not None)
        hashes.append(d.content_hash or "")
        errors.append(d.error)
        resolved.append(d.uri)
    if len({a.shape for a in images}) == 1:
        column = np.stack(images)
    else:  # a classifier that resizes by itself: photos of any size (a ragged tensor column)
        column = np.empty(len(images), dtype=object)
        for i, a in enumerate(images):
            column[i] = a
    return {"uri": np.array(resolved, dtype=object), "content_hash": np.array(hashes, dtype=object),
            "error": np.array(errors, dtype=object), "ok": np.array(ok, dtype=bool), "image": column}


class RayPredict:
    """Stage 2 on a Ray actor: the model is loaded once, in __init__, from bytes the driver sent."""

    def __init__(self, model: ModelSource, policy: Policy, device: str = "auto", threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.predict = Predict(model.load(device=device, fuse="now"), policy)

    def __call__(self, batch: dict[str, Any]):
        from PIL import Image

        from footsort.bulk.results import table

        decoded = [Decoded(str(u), h or None, Image.fromarray(img) if ok else None, str(e))
                   for u, h, e, ok, img in zip(batch["uri"], batch["content_hash"], batch["error"],
                                                batch["ok"], batch["image"])]
        return table(self.predict(decoded))


def connect(address: str | None) -> bool:
    """Join the cluster at `address`, or start a local Ray; True when this call started it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address or None, include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise FootsortError(f"no Ray cluster at {address}: {exc}; start one with `ray start --head` "
                            "or leave out --address to run a local one") from None
    return True


def dataset(source: Source, listing: Iterable[str] | None, plan: RayPlan):
    """The uris as a Ray dataset in blocks of about one decode batch: a manifest read by Ray, else the listing."""
    import ray

    if source.kind == "parquet":
        ds = ray.data.read_parquet(source.text).select_columns(["uri"])  # Ray reads only that column
    elif source.kind == "csv":
        import pyarrow as pa
        import pyarrow.csv as pacsv

        ds = ray.data.read_csv(source.text, convert_options=pacsv.ConvertOptions(
            include_columns=["uri"], column_types={"uri": pa.string()}))
    else:
        items = [{"uri": u} for u in (listing or ())]
        if not items:
            return None
        blocks = max(1, min(1000, math.ceil(len(items) / plan.decode_batch)))
        return ray.data.from_items(items, override_num_blocks=blocks)
    # a manifest file is one block per file or row group: split it, or one task would decode everything
    return ds.repartition(target_num_rows_per_block=plan.decode_batch).select_columns(["uri"])


def run(source: Source, listing: Iterable[str] | None, model: ModelSource, policy: Policy, spec: DecodeSpec,
        plan: RayPlan, *, progress: bool = False, stats: Stats | None = None) -> Iterator[Any]:
    """pyarrow tables of result rows as the cluster produces them (order not kept)."""
    import ray

    stats = stats if stats is not None else Stats("ray")
    ray.data.DataContext.get_current().enable_progress_bars = progress
    logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.WARNING)
    ds = dataset(source, listing, plan)
    if ds is None:
        return
    # the memory reservation bounds how many decodes share a node, and (remote args that differ from the
    # actors') keeps Ray from fusing decoding into the model actors: decoding stays spread over CPU tasks
    ds = ds.map_batches(decode_batch, fn_kwargs={"spec": spec}, batch_size=plan.decode_batch,
                        batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY)
    ds = ds.map_batches(RayPredict, fn_constructor_kwargs={"model": model, "policy": policy,
                                                           "device": "cuda" if plan.actor_gpus else "cpu",
                                                           "threads": int(plan.actor_cpus)},
                        batch_size=plan.batch_size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=plan.actors),
                        num_cpus=plan.actor_cpus, num_gpus=plan.actor_gpus)
    yield from ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2)
    try:
        stats.detail = ds.stats()
    except Exception:  # statistics are a nicety
        stats.detail = ""
