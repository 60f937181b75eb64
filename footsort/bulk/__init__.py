"""Bulk sorting: classify a folder, a glob or a manifest of photos into a Parquet results file, then apply it.

    source (folder | glob | manifest) -> uris -> decode (CPU) -> predict + decide (model) -> results.parquet
    results.parquet -> apply: moves through the daemon's sorter and journal (local files), or a copy plan

Two engines run the same stages (`footsort.bulk.stages`): `local` in one process, `ray` on Ray Data
(decode as CPU tasks, the model on an actor pool). Nothing here imports torch, pyarrow or ray at import time.
"""
