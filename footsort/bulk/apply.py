"""`footsort apply`: carry out a results file.

Local files move through the daemon's own Sorter and Journal (collision-safe, crash-safe, undoable
with `footsort undo`) and plugins are told, exactly as `footsort sort` does. Photos in object storage
are never moved: a copy plan (CSV: source, destination, ...) is written for a copy tool to run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Literal

from footsort.bulk.manifest import is_remote, local_path
from footsort.bulk.stages import Row
from footsort.system import atomic
from footsort.system.config import Config

Done = Literal["sort", "review", "failed", "duplicate", "skip", "vanished", "error", "planned"]
MOVED = ("sort", "review", "failed")


@dataclass(frozen=True)
class Applied:
    """What became of one results row."""

    uri: str
    action: Done
    destination: str | None = None
    label: str = ""
    reason: str = ""


def folder_name(row: Row, cfg: Config) -> str:
    """The folder a row's photo belongs in: its class, review/ or failed/ (the [sort] folder names)."""
    if row.action == "sort":
        return row.label
    return cfg.sort.review_folder if row.action == "review" else cfg.sort.failed_folder


def copy_destination(row: Row, cfg: Config, output: str | None, taken: set[str]) -> str:
    """Pure: where a remote photo is copied to, `PREFIX/<folder>/<name>`, a name unique within the plan."""
    from footsort.sorting.naming import free_name

    parent, _, name = row.uri.rpartition("/")
    folder = f"{(output or parent).rstrip('/')}/{folder_name(row, cfg)}"
    chosen = free_name(name, {t.rpartition("/")[2] for t in taken if t.rpartition("/")[0] == folder})
    dest = f"{folder}/{chosen}"
    taken.add(dest)
    return dest


def _exists(uri: str) -> bool:
    """Whether an object-store uri names an object (asked only of failed rows: one request each)."""
    from footsort.bulk.manifest import filesystem

    try:
        return bool(filesystem(uri).exists(uri))
    except Exception:  # the store cannot say: keep the row in the plan, the copy tool will report it
        return True


class CopyPlan:
    """A CSV of copies to make, written to a temporary name and renamed into place when complete."""

    FIELDS = ("source", "destination", "action", "label", "confidence", "content_hash")

    def __init__(self, path: Path, cfg: Config, output: str | None, dry_run: bool) -> None:
        self.path, self.cfg, self.output, self.dry_run = path, cfg, output, dry_run
        self.count = 0
        self._taken: set[str] = set()
        self._target: atomic.Replacement | None = None
        self._file = None
        self._writer = None

    def add(self, row: Row) -> Applied:
        """Plan the copy of one remote row's photo (a failed row whose object is gone has nothing to copy)."""
        if row.action == "failed" and not _exists(row.uri):
            return Applied(row.uri, "vanished", reason="not in the store: nothing to copy")
        dest = copy_destination(row, self.cfg, self.output, self._taken)
        if not self.dry_run:
            if self._writer is None:
                self._target = atomic.Replacement(self.path)
                self._file = open(self._target.tmp, "w", newline="", encoding="utf-8")
                self._writer = csv.writer(self._file)
                self._writer.writerow(self.FIELDS)
            self._writer.writerow([row.uri, dest, row.action, row.label,
                                   "" if row.confidence is None else f"{row.confidence:.4f}", row.content_hash or ""])
        self.count += 1
        return Applied(row.uri, "planned", dest, row.label)

    def close(self, keep: bool = True) -> None:
        """Put the plan in place whole (`keep`), or drop it."""
        if self._file is not None and self._target is not None:
            self._file.close()
            self._target.close(keep)


@dataclass
class Mover:
    """Moves local photos as their rows say, through the Sorter and Journal, telling the plugin host."""

    cfg: Config
    sorter: object  # footsort.sorting.sorter.Sorter
    journal: object | None  # footsort.sorting.journal.Journal
    host: object
    classes: set[str] = field(default_factory=set)
    _dry_sorted: dict[str, Path] = field(default_factory=dict)

    def layout(self, path: Path):
        """The inbox layout of a photo; a photo already inside a class/review/failed folder belongs to the folder above."""
        from footsort.sorting.pipeline import layout_for

        classes = tuple(sorted(self.classes))
        parent = path.parent
        above = layout_for(parent.parent, self.cfg, classes)
        return above if parent in above.outputs() else layout_for(parent, self.cfg, classes)

    def apply(self, row: Row) -> Applied:
        """Move one local photo (or say why not)."""
        from footsort.sorting.hashes import file_hash

        path = Path(os.path.abspath(local_path(row.uri)))
        if row.action not in MOVED:
            return Applied(row.uri, "skip", reason=f"left where it is: {row.error or row.action}")
        if not os.path.lexists(path):
            return Applied(row.uri, "vanished", reason="no longer there")
        try:
            size = os.lstat(path).st_size
            now = file_hash(path) if row.content_hash else None
        except OSError as exc:
            now, size = None, None
            if row.action != "failed":
                return Applied(row.uri, "error", reason=f"cannot be read now ({exc.strerror})")
        if row.content_hash and now is not None and now != row.content_hash:
            return Applied(row.uri, "skip", reason="changed since `footsort bulk` looked at it; left where it is "
                                                   "(run `footsort bulk` on it again)")
        if row.action in ("sort", "review"):
            duplicate = self._duplicate(row, path, size)
            if duplicate is not None:
                return duplicate
        return self._move(row, path, row.action, size, row.reason or row.error)  # type: ignore[arg-type]

    def _duplicate(self, row: Row, path: Path, size: int | None) -> Applied | None:
        """The duplicates policy (sort.duplicates) for content footsort has already sorted."""
        from footsort.sorting.decide import Review, Skip, decide_duplicate
        from footsort.sorting.pipeline import policy_for

        original = self._sorted_copy(row.content_hash, path)
        if original is None:
            return None
        decision = decide_duplicate(str(original), policy_for(self.cfg, tuple(self.classes)))
        if isinstance(decision, Skip):
            if self.journal is not None and not self.sorter.dry_run:  # type: ignore[attr-defined]
                from footsort.sorting.journal import Details

                self.journal.note("duplicate", path, hash=row.content_hash, size=size,  # type: ignore[attr-defined]
                                  destination=original, details=Details(reason=decision.reason))
            return Applied(row.uri, "duplicate", reason=decision.reason)
        if isinstance(decision, Review):
            return self._move(row, path, "review", size, decision.reason)
        return None

    def _sorted_copy(self, digest: str | None, path: Path) -> Path | None:
        if not digest:
            return None
        if digest in self._dry_sorted:
            return self._dry_sorted[digest]
        from footsort.sorting.sorter import earlier_copy

        return earlier_copy(self.journal, digest, path)  # type: ignore[arg-type]

    def _move(self, row: Row, path: Path, action: Literal["sort", "review", "failed"], size: int | None,
              reason: str) -> Applied:
        from footsort.sorting.journal import Details
        from footsort.sorting.sorter import Move, Vanished

        details = Details.of(row.prediction, reason if action != "sort" else "")
        folder = self.layout(path).folder(action, row.label)
        if folder == path.parent:  # already where it belongs
            return Applied(row.uri, action, str(path), row.label, "already in its folder")
        try:
            dest = self.sorter.move(Move(path, folder, action, row.content_hash, size, details))  # type: ignore[attr-defined]
        except Vanished:
            return Applied(row.uri, "vanished", reason="gone before it could be moved")
        except OSError as exc:
            return Applied(row.uri, "error", label=row.label, reason=f"could not move it: {exc}")
        if self.sorter.dry_run:  # type: ignore[attr-defined]
            if action != "failed" and row.content_hash:
                self._dry_sorted[row.content_hash] = dest
        else:
            self._tell(row, path, dest, action, details)
        return Applied(row.uri, action, str(dest), row.label, reason)

    def _tell(self, row: Row, path: Path, dest: Path, action: str, details) -> None:
        from loguru import logger

        from footsort.plugins import events

        if action == "sort":
            event = events.FileSorted.of(path, dest, row.prediction)
        elif action == "review":
            event = events.FileReviewed.of(path, dest, row.prediction, details.reason)
        else:
            event = events.FileFailed(path, dest, details.reason)
        try:
            self.host.emit(event)  # type: ignore[attr-defined]
        except Exception as exc:  # the host isolates plugins; belt and braces
            logger.error(f"plugin host failed on {event.name}: {exc}")


def apply_rows(batches: Iterable[list[Row]], mover: Mover, plan: CopyPlan) -> Iterator[Applied]:
    """Local rows moved, remote rows planned; one Applied per row, in the results' order."""
    ok = False
    try:
        for rows in batches:
            mover.classes.update(r.label for r in rows if r.action == "sort" and r.label)
            for row in rows:
                yield plan.add(row) if is_remote(row.uri) else mover.apply(row)
        ok = True
    finally:
        plan.close(keep=ok)


def default_plan_path(results: str) -> Path:
    """`results.parquet` -> `results.copy-plan.csv` beside it (in the current folder for remote results)."""
    name = results.rstrip("/").rpartition("/")[2] or "results"
    stem = name[: -len(".parquet")] if name.endswith(".parquet") else name
    if is_remote(results):
        return Path(os.path.abspath(f"{stem}.copy-plan.csv"))
    return Path(os.path.abspath(local_path(results))).with_name(f"{stem}.copy-plan.csv")
