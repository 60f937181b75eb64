"""`footsort bulk` as a library call: pick the source, the model and the engine; write the results file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from footsort.bulk import local as local_engine
from footsort.bulk.manifest import Source, check_bucket, is_remote, iter_uris
from footsort.bulk.results import ResultsWriter, require_pyarrow
from footsort.bulk.stages import (
    DecodeSpec,
    FactorySource,
    ModelFile,
    ModelSource,
    Predict,
)
from footsort.bulk.stats import Stats
from footsort.errors import FootsortError
from footsort.system.config import Config

if TYPE_CHECKING:
    from footsort.model.prediction import ClassifierFactory

Engine = Literal["local", "ray"]


@dataclass(frozen=True)
class BulkJob:
    """One bulk run: what to read, where the results go, how to run it."""

    source: Source
    out: str
    engine: Engine = "local"
    address: str | None = None
    batch_size: int | None = None  # photos per model call (local: sort.batch_size x 4; ray: 64 CPU / 256 GPU)
    workers: int = 2  # local: decoding threads
    actors: int | None = None  # ray: model actors (default: one per GPU, else about half the cores)
    progress: bool = False


def _outputs(job: BulkJob, cfg: Config, classes: tuple[str, ...]) -> frozenset[Path]:
    """footsort's own folders inside a listed folder (never classified again, as with `footsort sort`)."""
    from footsort.sorting.pipeline import layout_for

    if job.source.kind != "folder" or job.source.remote:
        return frozenset()
    return layout_for(Path(job.source.text), cfg, classes).outputs()


def run_bulk(job: BulkJob, cfg: Config, model_path: Path | None = None, load: ClassifierFactory | None = None) -> Stats:
    """Classify every photo of the source and write one results row per photo; what happened.

    `load` builds the classifier (default: the model in use, or `model_path`); on Ray each actor calls it
    itself, so it must pickle and import on the workers.
    """
    from footsort.sorting.pipeline import layout_for, load_classifier, policy_for

    require_pyarrow()
    if is_remote(job.out):
        check_bucket(job.out)  # a results file that cannot be written is said before the model loads
    if job.engine == "ray":
        from footsort.bulk.ray_engine import require_ray

        require_ray()  # before the model loads: a missing extra is said at once
    classifier = (load or load_classifier)(cfg, model_path, "background" if job.engine == "local" else "never")
    classes = tuple(classifier.classes)
    policy = policy_for(cfg, classes)
    spec = DecodeSpec.of(classifier, cfg.sort.max_pixels, job.source.root)
    uris = iter_uris(job.source, _outputs(job, cfg, classes), layout_for(Path("."), cfg, classes).names())
    stats = Stats(job.engine)
    with ResultsWriter(job.out) as writer:
        if job.engine == "local":
            batches = local_engine.run(uris, Predict(classifier, policy), spec,
                                       batch_size=job.batch_size or 4 * cfg.sort.batch_size, workers=job.workers,
                                       stats=stats)
            for rows in batches:
                start = time.perf_counter()
                writer.write(rows)
                stats.add("write", time.perf_counter() - start)
                for r in rows:
                    stats.count(r.action, r.label)
        else:
            model = FactorySource(load, cfg, model_path) if load is not None else _model_file(classifier)
            _run_ray(job, model, policy, spec, uris, writer, stats, cfg.model.device)
    return stats.finish()


def _model_file(classifier: object) -> ModelFile:
    """The classifier's model file, whose bytes travel to the actors (workers need not see this disk)."""
    path = getattr(classifier, "path", None)
    if path is None:
        raise FootsortError("--engine ray ships the model file to its workers, but this classifier has none; "
                            "give --model FILE")
    return ModelFile.read(path)


def _run_ray(job: BulkJob, model: ModelSource, policy, spec: DecodeSpec, uris, writer: ResultsWriter,
             stats: Stats, device: str) -> None:
    import ray

    from footsort.bulk import ray_engine

    started = ray_engine.connect(job.address)
    try:
        # the workers' hardware, not the driver's, decides: --device cpu keeps the model off their GPUs
        plan = ray_engine.RayPlan.for_cluster(ray.cluster_resources(), device, job.actors, job.batch_size)
        listing = None if job.source.kind in ("parquet", "csv") else list(uris)
        if listing is None:
            next(iter(uris), None)  # reads the header: a manifest without a `uri` column is refused here
        for t in ray_engine.run(job.source, listing, model, policy, spec, plan, progress=job.progress,
                                stats=stats):
            writer.write_table(t)
            for action, label in zip(t.column("action").to_pylist(), t.column("label").to_pylist()):
                stats.count(action, label)
    finally:
        if started:
            ray.shutdown()
