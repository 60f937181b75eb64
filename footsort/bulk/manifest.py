"""What to classify: a folder, a glob or a manifest (Parquet or CSV with a `uri` column), as a stream of uris.

Local paths are made absolute (relative paths in a manifest are relative to the manifest's folder);
`s3://`, `gs://` and other object stores go through fsspec, when the package for that store is installed.
"""

from __future__ import annotations

import csv
import glob as globmod
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from footsort.errors import FootsortError
from footsort.model.imaging import is_image_name

Kind = Literal["folder", "glob", "parquet", "csv"]
URI_COLUMN = "uri"
GLOB_CHARS = frozenset("*?[")
STORE_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
                  "abfss": "adlfs", "hf": "huggingface_hub"}


def is_remote(uri: str) -> bool:
    """True for an object-store (or any non-file) URL such as `s3://bucket/key.jpg`."""
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme not in ("", "file") and len(scheme) > 1


def local_path(uri: str) -> Path:
    """The local path of a plain path or a `file://` URL."""
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def filesystem(uri: str):
    """The fsspec filesystem for a remote uri; a clear message when its package is missing."""
    scheme = uri.partition("://")[0]
    try:
        import fsspec

        return fsspec.filesystem(scheme)
    except ImportError as exc:
        package = STORE_PACKAGES.get(scheme, f"the fsspec implementation for {scheme}://")
        raise FootsortError(f"reading {scheme}:// needs {package} (and fsspec): pip install {package} "
                            f"({exc})") from None
    except ValueError as exc:
        raise FootsortError(f"{uri}: unknown storage {scheme}:// ({exc})") from None


def store_error(uri: str, exc: Exception) -> FootsortError:
    """One line for an object store that said no: nothing there, access refused, or not reachable."""
    if isinstance(exc, FootsortError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return FootsortError(f"{uri} does not exist (no such bucket, prefix or object)")
    hint = "check the store's credentials"
    if uri.partition("://")[0] in ("s3", "s3a"):
        hint += " (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; AWS_ENDPOINT_URL for MinIO or another S3-compatible server)"
    what = "access denied" if isinstance(exc, PermissionError) else "cannot be read"
    return FootsortError(f"{uri}: {what} ({type(exc).__name__}: {exc}); {hint}")


def check_remote(uri: str) -> None:
    """Refuse a remote manifest, folder or prefix that is not there (one request), before any model loads."""
    try:
        filesystem(uri).info(uri)
    except Exception as exc:  # botocore and friends raise their own types: each becomes one line
        raise store_error(uri, exc) from None


def check_bucket(uri: str) -> None:
    """Refuse a results file in a bucket that is not there (or cannot be reached), before any work starts."""
    scheme, _, rest = uri.partition("://")
    check_remote(f"{scheme}://{rest.split('/', 1)[0]}")


@dataclass(frozen=True)
class Source:
    """SOURCE of `footsort bulk`, recognised."""

    text: str
    kind: Kind
    root: str  # manifests: the folder relative uris are taken from; folders: the folder itself
    recursive: bool = False

    @property
    def remote(self) -> bool:
        return is_remote(self.text)


def parse_source(text: str, recursive: bool = False) -> Source:
    """Tell a manifest, a folder and a glob apart (a manifest ends in .parquet or .csv)."""
    lower = text.lower().rstrip("/")
    remote = is_remote(text)
    if lower.endswith((".parquet", ".csv")):
        kind: Kind = "parquet" if lower.endswith(".parquet") else "csv"
        if remote:
            check_remote(text)
            return Source(text, kind, text.rsplit("/", 1)[0], recursive)
        path = Path(os.path.abspath(local_path(text).expanduser()))
        if path.is_dir() and kind == "parquet":  # a folder of Parquet parts is a manifest too
            return Source(str(path), kind, str(path), recursive)
        if not path.is_file():
            raise FootsortError(f"manifest {path} does not exist")
        return Source(str(path), kind, str(path.parent), recursive)
    if any(c in GLOB_CHARS for c in text):
        return Source(text if remote else os.path.abspath(os.path.expanduser(text)), "glob", "", recursive)
    if remote:
        check_remote(text)
        return Source(text.rstrip("/"), "folder", text.rstrip("/"), recursive)
    path = Path(os.path.abspath(local_path(text).expanduser()))
    if not path.is_dir():
        what = "does not exist" if not os.path.lexists(path) else "is not a folder, a glob or a .parquet/.csv manifest"
        raise FootsortError(f"{path} {what}")
    return Source(str(path), "folder", str(path), recursive)


def resolve(uri: str, root: str) -> str:
    """An absolute uri: remote ones as they are, local ones absolute (relative ones under `root`)."""
    uri = uri.strip()
    if not uri or is_remote(uri):
        return uri
    path = local_path(uri).expanduser()
    if path.is_absolute():
        return os.path.abspath(path)
    if is_remote(root):
        return f"{root.rstrip('/')}/{uri}"
    return os.path.abspath(Path(root or ".") / path)


def check_manifest_columns(columns: list[str], where: str) -> None:
    """Refuse a manifest without a `uri` column, naming the columns it has."""
    if URI_COLUMN not in columns:
        shown = ", ".join(columns[:10]) or "none"
        raise FootsortError(f"manifest {where} has no `{URI_COLUMN}` column (its columns: {shown}); "
                            f"add one holding each photo's path or URL")


def _open(text: str, mode: str = "rb"):
    if is_remote(text):
        try:
            return filesystem(text).open(text, mode)
        except Exception as exc:
            raise store_error(text, exc) from None
    return open(text, mode, newline="" if "t" in mode else None)


def _parquet_uris(source: Source) -> Iterator[str]:
    import pyarrow.parquet as pq

    fs = filesystem(source.text) if source.remote else None
    if fs.isdir(source.text) if fs is not None else Path(source.text).is_dir():  # Spark/Ray write folders of parts
        dataset = pq.ParquetDataset(fs._strip_protocol(source.text) if fs is not None else source.text, filesystem=fs)
        check_manifest_columns(list(dataset.schema.names), source.text)
        for fragment in dataset.fragments:
            for batch in fragment.to_batches(columns=[URI_COLUMN]):
                yield from (u or "" for u in batch.column(0).to_pylist())
        return
    with _open(source.text) as f:
        pf = pq.ParquetFile(f)
        check_manifest_columns(list(pf.schema_arrow.names), source.text)
        for batch in pf.iter_batches(columns=[URI_COLUMN], batch_size=65536):
            yield from (u or "" for u in batch.column(0).to_pylist())


def _csv_uris(source: Source) -> Iterator[str]:
    with _open(source.text, "rt") as f:
        reader = csv.DictReader(f)
        check_manifest_columns(list(reader.fieldnames or []), source.text)
        for row in reader:
            yield row[URI_COLUMN] or ""


def _walk_local(root: Path, recursive: bool, outputs: frozenset[Path]) -> Iterator[str]:
    from footsort.sorting.watcher import walk, why_not

    for path in walk(root, outputs, recursive):
        if why_not(path, root, outputs) is None:  # what `footsort sort` would take: image names, real files
            yield str(path)


def _remote_listing(source: Source, skip_folders: frozenset[str] = frozenset()) -> Iterator[str]:
    fs = filesystem(source.text)
    try:
        if source.kind == "glob":
            found = fs.glob(source.text)
        elif source.recursive:
            found = fs.find(source.text)
        else:
            found = [e["name"] for e in fs.ls(source.text, detail=True) if e.get("type") != "directory"]
    except Exception as exc:  # listed on the driver before anything starts: one line, not a traceback
        raise store_error(source.text, exc) from None
    prefix = source.text.split("://", 1)[-1].rstrip("/") + "/"
    for key in sorted(found):
        name = key.rsplit("/", 1)[-1]
        below = key.split("://", 1)[-1]
        below = below[len(prefix):] if below.startswith(prefix) else below
        if skip_folders.intersection(below.split("/")[:-1]):  # a copy an earlier plan made: never listed again
            continue
        if is_image_name(Path(name)) and not name.startswith("."):
            yield key if "://" in key else fs.unstrip_protocol(key)  # s3fs: bucket/key -> s3://bucket/key


def iter_uris(source: Source, outputs: frozenset[Path] = frozenset(),
              output_names: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every photo uri of the source, resolved; footsort's own folders (`outputs` on disk, folders named
    `output_names` below a store prefix) are never listed."""
    if source.kind == "parquet":
        yield from (resolve(u, source.root) for u in _parquet_uris(source))
    elif source.kind == "csv":
        yield from (resolve(u, source.root) for u in _csv_uris(source))
    elif source.remote:
        yield from _remote_listing(source, output_names if source.recursive else frozenset())
    elif source.kind == "folder":
        yield from _walk_local(Path(source.text), source.recursive, outputs)
    else:
        for match in sorted(globmod.iglob(source.text, recursive=True)):
            path = Path(match)
            if is_image_name(path) and path.is_file() and not path.is_symlink():
                yield str(path)


@contextmanager
def readable(uri: str) -> Iterator[Path]:
    """A local file holding the uri's bytes: the file itself, or a temporary download of a remote object."""
    if not is_remote(uri):
        yield local_path(uri)
        return
    suffix = Path(uri.rsplit("/", 1)[-1]).suffix
    with tempfile.TemporaryDirectory(prefix="footsort-bulk-") as tmp:
        target = Path(tmp) / f"photo{suffix}"
        with filesystem(uri).open(uri, "rb") as fin, open(target, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        yield target
