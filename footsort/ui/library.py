"""What the review page lists: photos in review/ and the latest automatic sorts, with what the journal says.

Reading only: the folders (one `scandir` each) and the journal (`Journal.peek`). Every photo gets an
opaque id (a hash of its path); the server acts only on photos found by these listings, so nothing a
request says can name a file outside the configured folders.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from footsort.learning import corrections
from footsort.model.imaging import IMAGE_SUFFIXES
from footsort.sorting.journal import Entry, Journal
from footsort.system import paths


@dataclass(frozen=True)
class Photo:
    """One photo on the page and what the model said about it (from the journal; empty when unknown)."""

    id: str
    path: Path
    root: Path  # the library: holds the class folders and review/
    folder: str  # "review" or a class name: where it is now
    size: int
    mtime: float
    hash: str | None = None
    label: str = ""  # the model's best guess
    confidence: float | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    model_version: str = ""
    sorted_at: float | None = None

    def as_json(self) -> dict:
        """What the page needs (never the path's folders: only the name)."""
        return {"id": self.id, "name": self.path.name, "folder": self.folder, "label": self.label,
                "confidence": self.confidence, "probabilities": dict(self.probabilities),
                "model_version": self.model_version, "sorted_at": self.sorted_at, "mtime": self.mtime,
                "v": (self.hash or "")[:16]}


@dataclass(frozen=True)
class Library:
    """The folders the page shows: library roots, their classes, and the review folder's name."""

    roots: tuple[Path, ...]
    classes: tuple[str, ...]
    review: str = "review"

    def folders(self) -> list[Path]:
        """Every folder the page lists (review first)."""
        return [root / name for root in self.roots for name in (self.review, *self.classes)]


def photo_id(path: Path | str) -> str:
    """A stable, opaque id for a photo at a path."""
    return hashlib.sha256(os.fsencode(str(path))).hexdigest()[:20]


def _images(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return [e for e in it if not e.name.startswith(".")
                    and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _photo(entry: os.DirEntry, root: Path, folder: str, row: Entry | None, content: str | None) -> Photo:
    st = entry.stat(follow_symlinks=False)
    path, pid = Path(entry.path), photo_id(entry.path)
    if row is None:
        return Photo(pid, path, root, folder, st.st_size, st.st_mtime, content)
    same = row.size is None or row.size == st.st_size
    d = row.details
    probs = dict(d.probabilities)
    label, conf = d.label, d.confidence
    if d.model_version == corrections.HUMAN and probs:  # a person put it here: show what the model had said
        label = max(probs, key=lambda k: probs[k])
        conf = probs[label]
    return Photo(pid, path, root, folder, st.st_size, st.st_mtime,
                 content or (row.hash if same else None), label, conf, probs, d.model_version, row.finished)


def _confidence_order(p: Photo) -> tuple:
    return (p.confidence is None, p.confidence if p.confidence is not None else 0.0, p.path.name)


def review_queue(lib: Library, journal: Path | None = None, hashes: object | None = None) -> list[Photo]:
    """Photos in each review/ folder, least confident first (unknown confidence last)."""
    listed = [(root, e) for root in lib.roots for e in _images(root / lib.review)]
    with Journal.peek(journal) as j:
        by_dest = j.placed_at([e.path for _, e in listed])
        unknown = [e for _, e in listed if e.path not in by_dest]
        digests: dict[str, str] = {}
        if unknown and hashes is not None:  # renamed or put back by hand: look it up by content
            got = hashes.many(Path(e.path) for e in unknown)  # type: ignore[attr-defined]
            digests = {str(p): h for p, h in got.items()}
        by_hash = j.decided_by_model(sorted(set(digests.values())))
    out = []
    for root, e in listed:
        row = by_dest.get(e.path)
        content = digests.get(e.path)
        if row is None and content is not None:
            row = by_hash.get(content)
        try:
            out.append(_photo(e, root, lib.review, row, content))
        except OSError:  # gone since the listing
            continue
    return sorted(out, key=_confidence_order)


def recent_sorts(lib: Library, per_class: int = 48, journal: Path | None = None) -> dict[str, list[Photo]]:
    """Per class, the latest automatic sorts still in place, lowest confidence first."""
    out: dict[str, list[Photo]] = {c: [] for c in lib.classes}
    with Journal.peek(journal) as j:
        for label in lib.classes:
            homes = {root / label: root for root in lib.roots}
            seen: set[str] = set()
            for row in j.model_sorts(label, per_class * 4):
                dest = str(row.destination or "")
                if not dest or dest in seen or Path(dest).parent not in homes:
                    continue
                seen.add(dest)
                try:
                    entry = _FoundFile(dest)
                    photo = _photo(entry, homes[Path(dest).parent], label, row, None)  # type: ignore[arg-type]
                except OSError:  # moved away or deleted since
                    continue
                if row.size is not None and photo.size != row.size:
                    continue  # another file took the name
                out[label].append(photo)
                if len(out[label]) >= per_class:
                    break
            out[label].sort(key=_confidence_order)
    return out


class _FoundFile:
    """The two things _photo needs from an os.DirEntry, for a path found in the journal."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._st = os.stat(path, follow_symlinks=False)
        if not os.path.isfile(path) or os.path.islink(path):
            raise FileNotFoundError(path)

    def stat(self, follow_symlinks: bool = False) -> os.stat_result:
        return self._st


def moved_by(run: str, destination: Path, journal: Path | None = None) -> int | None:
    """The id of run `run`'s finished move to `destination` (the latest), or None."""
    with Journal.peek(journal) as j:
        return j.moved_by(run, destination)


def signature(lib: Library, journal: Path | None = None) -> str:
    """Changes whenever a photo arrives in or leaves a listed folder, or the journal is written."""
    parts: list[str] = []
    jpath = paths.journal_file() if journal is None else Path(journal)
    for p in (*lib.folders(), jpath, Path(f"{jpath}-wal")):
        try:
            st = os.stat(p)
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def find_roots(given: Iterable[Path], cfg: object, classes: Sequence[str]) -> tuple[Path, ...]:
    """The libraries: each inbox's layout root (sort.output when set), else every one the journal knows."""
    from footsort.sorting.pipeline import layout_for

    given = [Path(os.path.abspath(Path(p).expanduser())) for p in given]
    if given:
        return tuple(dict.fromkeys(layout_for(p, cfg, classes).root for p in given))  # type: ignore[arg-type]
    history = corrections.read_history()
    return tuple(corrections.library_roots([], history, getattr(getattr(cfg, "sort", None), "output", "")))
