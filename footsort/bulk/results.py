"""The results file: one Parquet row per photo (see `stages.COLUMNS`), written in batches, read back in batches."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from footsort.bulk.manifest import filesystem, is_remote, local_path, store_error
from footsort.bulk.stages import COLUMNS, Row, columns
from footsort.errors import FootsortError
from footsort.system import atomic

INSTALL_BULK = "pip install 'footsort[bulk]'"


def require_pyarrow(what: str = "footsort bulk"):
    """pyarrow, or a one-line way to install it."""
    try:
        import pyarrow

        return pyarrow
    except ImportError:
        raise FootsortError(f"{what} reads and writes Parquet, which needs pyarrow: {INSTALL_BULK}") from None


def schema():
    """The results schema."""
    pa = require_pyarrow()
    types = {"confidence": pa.float64()}
    return pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])


def table(rows: Sequence[Row]):
    """Rows as a pyarrow table of the results schema."""
    pa = require_pyarrow()
    return pa.Table.from_pydict(columns(rows), schema=schema())


class ResultsWriter:
    """Appends batches of rows to one Parquet file; a local file appears whole (temp name, then rename)."""

    def __init__(self, out: str) -> None:
        import pyarrow.parquet as pq

        require_pyarrow()
        self.out = out
        self.count = 0
        if is_remote(out):
            try:
                self._file = filesystem(out).open(out, "wb")
            except Exception as exc:
                raise store_error(out, exc) from None
            self._target: atomic.Replacement | None = None
            self._writer = pq.ParquetWriter(self._file, schema())
        else:
            final = Path(os.path.abspath(local_path(out).expanduser()))
            if final.is_dir():
                raise FootsortError(f"--out {final} is a folder; give a file name, e.g. {final / 'results.parquet'}")
            self._file = None
            self._target = atomic.Replacement(final)
            try:
                self._writer = pq.ParquetWriter(str(self._target.tmp), schema())
            except BaseException:
                self._target.discard()
                raise
            self.out = str(final)

    def write(self, rows: Sequence[Row]) -> None:
        """Append rows."""
        if rows:
            self.write_table(table(rows))

    def write_table(self, t) -> None:
        """Append a pyarrow table already in the results schema."""
        self._writer.write_table(t.select(list(COLUMNS)).cast(schema()))
        self.count += t.num_rows

    def close(self, keep: bool = True) -> None:
        """Finish the file: a local one is put in place whole (`keep`) or dropped."""
        self._writer.close()
        if self._file is not None:
            try:
                self._file.close()  # an object store uploads here
            except Exception as exc:
                raise store_error(self.out, exc) from None
        if self._target is not None:
            self._target.close(keep)

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        self.close(keep=exc_type is None)


def read_rows(results: str, batch_size: int = 4096) -> Iterator[list[Row]]:
    """The rows of a results file (or folder of Parquet parts), a batch at a time."""
    require_pyarrow("footsort apply")
    import pyarrow.dataset as ds

    where: str = results
    fs = None
    if is_remote(results):
        fs = filesystem(results)
        where = results.partition("://")[2]
    elif not os.path.exists(local_path(results)):
        raise FootsortError(f"results {results} do not exist; make them with `footsort bulk SOURCE --out {results}`")
    try:
        data = ds.dataset(where, format="parquet", filesystem=fs)
    except Exception as exc:
        raise FootsortError(f"{results} is not a footsort bulk results file ({exc})") from None
    missing = [c for c in ("uri", "action", "label") if c not in data.schema.names]
    if missing:
        raise FootsortError(f"{results} is not a footsort bulk results file: no column {', '.join(missing)}")
    for batch in data.to_batches(batch_size=batch_size):
        yield [Row.from_record(rec) for rec in batch.to_pylist()]


def all_rows(results: str) -> list[Row]:
    """Every row (small files and tests)."""
    return [r for batch in read_rows(results) for r in batch]


def write_rows(out: str, batches: Iterable[Sequence[Row]]) -> int:
    """Write batches of rows to `out`; how many rows."""
    with ResultsWriter(out) as w:
        for rows in batches:
            w.write(rows)
    return w.count
