"""What the review page can do, without HTTP: list, label (move), undo, read the learning state, roll back.

Every move goes through footsort.sorting.labelling (the sorter and the journal, as `footsort review` and the
daemon do); this module only keeps the page's listing (id -> photo) and its own undo stack.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from loguru import logger

from footsort.sorting import labelling
from footsort.sorting.journal import Journal
from footsort.sorting.sorter import Sorter, Vanished, recover, undo
from footsort.ui import library
from footsort.ui.jobs import Job, retrain_argv
from footsort.ui.library import Library, Photo
from footsort.ui.thumbs import Thumbnails

WHERE = "the review page"


@dataclass(frozen=True)
class Result:
    """What happened to one photo the page asked to move."""

    id: str
    name: str
    moved_to: str = ""  # folder name, "" when nothing moved
    problem: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "moved_to": self.moved_to, "problem": self.problem}


class ReviewService:
    """The page's state and actions over one library listing; thread-safe."""

    def __init__(self, lib: Library, journal: Journal, host: object, *, per_class: int = 48,
                 thumbnails: Thumbnails | None = None, journal_path: Path | None = None,
                 retrain_command: Sequence[str] | None = None) -> None:
        from footsort.sorting.hashes import ContentHashes

        self.lib = lib
        self.journal = journal
        self.sorter = Sorter(journal)
        self.host = host
        self.per_class = per_class
        self.thumbs = thumbnails or Thumbnails()
        self.journal_path = journal_path or journal.path
        self._hashes = ContentHashes.open()
        self._hash_lock = threading.Lock()
        self._move_lock = threading.Lock()
        self._index: dict[str, Photo] = {}
        self._listed_at = 0.0
        self._undo: list[list[int]] = []  # journal ids of each labelling, newest last
        self.retrain_command = list(retrain_command) if retrain_command else retrain_argv(lib.roots)
        self.training = Job()

    @classmethod
    def open(cls, lib: Library, host: object, **kwargs: Any) -> "ReviewService":
        """Open the journal (settling moves a crashed process left pending) and serve `lib`."""
        journal = Journal.open()
        recover(journal)
        return cls(lib, journal, host, **kwargs)

    def close(self) -> None:
        """Stop thumbnail work and a running retrain, save remembered hashes, close the journal."""
        self.thumbs.close()
        self.training.close()
        with self._hash_lock:
            self._hashes.save()
        self.journal.close()

    # -- listing --------------------------------------------------------------------------------

    def listing(self) -> tuple[list[Photo], dict[str, list[Photo]]]:
        """The review queue and recent sorts, now; remembers every photo's id."""
        with self._hash_lock:
            review = library.review_queue(self.lib, self.journal_path, self._hashes)
            self._hashes.save()
        recent = library.recent_sorts(self.lib, self.per_class, self.journal_path)
        self._index = {p.id: p for p in [*review, *(p for ps in recent.values() for p in ps)]}
        self._listed_at = time.monotonic()
        self.thumbs.prefetch((p.path, p.hash) for p in self._index.values() if p.hash)
        return review, recent

    def state(self) -> dict:
        """Everything the page draws, as JSON."""
        sig = self.signature()
        review, recent = self.listing()
        return {
            "signature": sig,
            "classes": list(self.lib.classes),
            "keys": labelling.class_keys(self.lib.classes),
            "roots": [str(r) for r in self.lib.roots],
            "review": [p.as_json() for p in review],
            "recent": {c: [p.as_json() for p in ps] for c, ps in recent.items()},
            "can_undo": bool(self._undo),
        }

    def signature(self) -> str:
        """Changes when photos arrive or leave, or the journal is written."""
        return library.signature(self.lib, self.journal_path)

    def photo(self, photo_id: str) -> Photo | None:
        """A photo from the page's listing (listing again, at most once a second, for ids not seen yet)."""
        found = self._index.get(photo_id)
        if found is None and time.monotonic() - self._listed_at > 1.0:
            self.listing()
            found = self._index.get(photo_id)
        return found

    def content(self, photo: Photo) -> str | None:
        """The photo's content hash (from the listing, else read once and remembered)."""
        if photo.hash:
            return photo.hash
        with self._hash_lock:
            try:
                return self._hashes.of(photo.path)
            except OSError:
                return None

    # -- acting ---------------------------------------------------------------------------------

    def label(self, ids: Sequence[str], label: str) -> list[Result]:
        """Move each photo into `label`'s folder of its library (one undo step for them all)."""
        if label not in self.lib.classes:
            raise ValueError(f"unknown class {label!r}; classes: {', '.join(self.lib.classes)}")
        results: list[Result] = []
        done: list[tuple[labelling.Relabel, Path]] = []
        with self._move_lock:
            for photo_id in ids:
                photo = self.photo(photo_id)
                if photo is None:
                    results.append(Result(photo_id, "", problem="not in the listing any more; refresh"))
                    continue
                if photo.folder == label:
                    results.append(Result(photo_id, photo.path.name, problem=f"already in {label}/"))
                    continue
                content = self.content(photo)
                if content is None or not os.path.lexists(photo.path):
                    results.append(Result(photo_id, photo.path.name, problem="gone (moved or deleted elsewhere)"))
                    continue
                r = labelling.Relabel(photo.path, photo.root, label, photo.folder, content, photo.probabilities)
                try:
                    dest = labelling.relabel(self.sorter, r, WHERE)
                except (Vanished, FileNotFoundError):
                    results.append(Result(photo_id, photo.path.name, problem="gone before it could be moved"))
                    continue
                except OSError as exc:
                    results.append(Result(photo_id, photo.path.name, problem=f"could not move it: {exc}"))
                    continue
                logger.info(f"{photo.path.name}: {photo.folder}/ -> {label}/ ({WHERE})")
                done.append((r, dest))
                self._index.pop(photo_id, None)
                results.append(Result(photo_id, photo.path.name, moved_to=label))
            ids_done = [i for i in (self._entry_id(dest) for _, dest in done) if i is not None]
            if ids_done:
                self._undo.append(ids_done)
        if done:
            try:
                labelling.announce(done, self.host)
            except Exception as exc:  # plugins must never break a move that already happened
                logger.error(f"could not tell plugins about corrections: {exc}")
        return results

    def _entry_id(self, dest: Path) -> int | None:
        """The journal row of this process's move to `dest`."""
        return library.moved_by(self.journal.run, dest, self.journal_path)

    def undo_last(self) -> list[Result]:
        """Put back the photos of the page's last labelling (through the sorter, journaled)."""
        with self._move_lock:
            if not self._undo:
                return []
            batch = self._undo.pop()
            entries = [e for e in (self.journal.get(i) for i in batch) if e is not None and e.undone_by is None]
            out = []
            for u in undo(entries, self.sorter):
                name = u.entry.source.name
                if u.restored is None:
                    out.append(Result("", name, problem=u.problem))
                else:
                    out.append(Result(library.photo_id(u.restored), u.restored.name, moved_to=u.restored.parent.name))
            return out

    # -- learning -------------------------------------------------------------------------------

    def learning(self) -> dict:
        """Corrections waiting for `footsort retrain`, the latest retrain's verdict, and the model versions."""
        from footsort.errors import FootsortError
        from footsort.learning import corrections
        from footsort.learning.retrain import last_gate
        from footsort.model import registry
        from footsort.model.checkpoint import read_metadata

        findings = corrections.scan(self.lib.roots, self.lib.classes)
        versions = []
        shipped = registry.shipped_model_path()
        current = registry.current_version()
        rows = []
        if shipped.is_file():
            try:
                rows.append(("default", read_metadata(shipped)))
            except FootsortError:
                pass
        rows += [(m.version, m) for _, m in registry.list_versions()]
        for name, meta in rows:
            m = meta.metrics
            n = m.get("validation_n", m.get("n_val"))
            versions.append({"version": name, "created": meta.created, "parent": meta.parent or "",
                             "accuracy": _number(m.get("val_accuracy")),
                             "parent_accuracy": _number(m.get("parent_val_accuracy")),
                             "validation_n": n if isinstance(n, int) else None,
                             "per_class": _per_class(m.get("per_class")),
                             "in_use": (name == current) or (name == "default" and not current)})
        pairs = [{"from": old, "to": new, "n": n} for (old, new), n in sorted(findings.pairs().items())]
        gate = last_gate()
        if gate is not None:
            gate = {**gate, "per_class": _per_class(gate.get("per_class"))}
        return {"corrections": len(findings.corrections), "pairs": pairs,
                "examples": len(findings.examples), "versions": versions, "current": current or "default",
                "gate": gate}

    def rollback(self) -> dict:
        """Go back to the model used before the current one, and tell plugins."""
        from footsort.learning import versions

        switch = versions.rollback()
        try:
            self.host.emit(switch)  # type: ignore[attr-defined]
        except Exception as exc:
            logger.error(f"could not tell plugins about the rollback: {exc}")
        return {"now": switch.version or "default", "was": switch.previous or "default"}

    def retrain(self) -> bool:
        """Start `footsort retrain` on the page's libraries; False when one is already running."""
        return self.training.start(self.retrain_command)


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _per_class(stored: object) -> list[dict]:
    """A version's `per_class` metrics as rows: class, held-out photos, accuracy before (current) and after (new)."""
    if not isinstance(stored, dict):
        return []
    rows = []
    for label, v in stored.items():
        if isinstance(v, dict):
            n = v.get("n")
            rows.append({"class": str(label), "n": n if isinstance(n, int) else None,
                         "before": _number(v.get("parent_val_accuracy")), "after": _number(v.get("val_accuracy"))})
    return rows
