"""The local engine: the bulk stages in one process, decoding in a few threads ahead of the model."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import Iterable, Iterator

from footsort.bulk.stages import Decoded, DecodeSpec, Predict, Row, decode
from footsort.bulk.stats import Stats


def _timed_decode(uri: str, spec: DecodeSpec) -> tuple[Decoded, float]:
    start = time.perf_counter()
    return decode(uri, spec), time.perf_counter() - start


def decoded_batches(uris: Iterable[str], spec: DecodeSpec, pool: ThreadPoolExecutor, batch_size: int,
                    stats: Stats, ahead: int = 2) -> Iterator[list[Decoded]]:
    """Batches of decoded photos, in order; at most `ahead` batches decode while the model works (memory)."""
    it = iter(uris)
    pending: deque[list[Future[tuple[Decoded, float]]]] = deque()

    def take() -> list[Decoded]:
        done = [f.result() for f in pending.popleft()]
        stats.add("decode", sum(t for _, t in done))
        return [d for d, _ in done]

    while chunk := list(islice(it, batch_size)):
        pending.append([pool.submit(_timed_decode, u, spec) for u in chunk])
        if len(pending) > ahead:
            yield take()
    while pending:
        yield take()


def run(uris: Iterable[str], predict: Predict, spec: DecodeSpec, *, batch_size: int = 32,
        workers: int = 2, stats: Stats | None = None) -> Iterator[list[Row]]:
    """Rows for every uri, a batch at a time, in the order given."""
    stats = stats if stats is not None else Stats("local")
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="footsort-bulk") as pool:
        for batch in decoded_batches(uris, spec, pool, max(1, batch_size), stats):
            start = time.perf_counter()
            rows = predict(batch)
            stats.add("predict", time.perf_counter() - start)
            yield rows
