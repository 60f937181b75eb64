"""Corrections are file moves: what a person's class folders say, read against what the journal says the model did.

A file in class folder B is judged by its content hash against the journal's moves of that content:
- the model's latest decision was class A (A != B) or review/: a `Correction` (A or "review" -> B);
- the model put it in B and it is still there: a `LabelledExample` the person accepted;
- the journal never saw it (dropped straight into the folder): a `LabelledExample` the person added.
Files in review/ or failed/ are no label; a deleted file is simply not there. `footsort review` journals
its moves with an empty model version (a person's decision), so a file labelled there counts as a correction.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping, Sequence

from footsort.plugins import events
from footsort.sorting.journal import Journal
from footsort.system import atomic, paths
from footsort.system.images_on_disk import image_files

REVIEW = "review"  # old_label of a correction the model had sent to the review queue
HUMAN = ""  # model_version of a journal row that a person decided (footsort review)
Source = Literal["added", "accepted"]


@dataclass(frozen=True)
class Decision:
    """One finished, not undone move of some content into a class or review folder (a journal row)."""

    entry_id: int
    action: str  # "sort" or "review"
    label: str  # the class it went to (sort) or the model's best guess (review)
    model_version: str = ""  # "" when a person decided (footsort review)
    destination: Path | None = None
    confidence: float | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)

    @property
    def by_model(self) -> bool:
        """True when a model made this decision (not a person)."""
        return self.model_version != HUMAN

    @property
    def outcome(self) -> str:
        """Where the decision sent the file: a class name, or "review"."""
        return self.label if self.action == "sort" else REVIEW


@dataclass(frozen=True)
class Correction:
    """A file the person put in `new_label`'s folder after the model said `old_label` (a class or "review")."""

    path: Path
    hash: str
    old_label: str
    new_label: str
    guess: str = ""  # the model's best guess (differs from old_label when it went to review)
    model_version: str = ""
    entry_id: int = 0


@dataclass(frozen=True)
class LabelledExample:
    """An image in a class folder that is not a correction: added by hand, or sorted by the model and left there."""

    path: Path
    hash: str
    label: str
    source: Source = "added"


@dataclass(frozen=True)
class Findings:
    """What the class folders teach: corrections, other labelled images, and contradictory copies left out."""

    corrections: tuple[Correction, ...] = ()
    examples: tuple[LabelledExample, ...] = ()
    conflicts: tuple[Path, ...] = ()  # the same content in two different class folders
    roots: tuple[Path, ...] = ()

    def pairs(self) -> Counter[tuple[str, str]]:
        """How many corrections went from each old label to each new one."""
        return Counter((c.old_label, c.new_label) for c in self.corrections)


# -- the pure core -------------------------------------------------------------------------------

def judge(path: Path, content: str, label: str, history: Sequence[Decision]) -> Correction | LabelledExample:
    """What a file in `label`'s folder teaches, given the journal's decisions about its content (oldest first)."""
    by_model = [d for d in history if d.by_model]
    if not by_model:
        return LabelledExample(path, content, label, "added")
    last = by_model[-1]
    if last.outcome == label:
        return LabelledExample(path, content, label, "accepted")
    return Correction(path, content, last.outcome, label, guess=last.label, model_version=last.model_version,
                      entry_id=last.entry_id)


def find(files: Iterable[tuple[Path, str, str]], history: Mapping[str, Sequence[Decision]],
         roots: Sequence[Path] = ()) -> Findings:
    """Judge every (path, content hash, class folder) once per content; contradictory copies are left out."""
    by_hash: dict[str, list[tuple[Path, str]]] = {}
    for path, content, label in sorted(files, key=lambda f: str(f[0])):
        by_hash.setdefault(content, []).append((path, label))
    corrections: list[Correction] = []
    examples: list[LabelledExample] = []
    conflicts: list[Path] = []
    for content, copies in by_hash.items():
        if len({label for _, label in copies}) > 1:
            conflicts.extend(p for p, _ in copies)
            continue
        path, label = copies[0]
        result = judge(path, content, label, history.get(content, ()))
        (corrections if isinstance(result, Correction) else examples).append(result)
    key = lambda x: str(x.path)  # noqa: E731
    return Findings(tuple(sorted(corrections, key=key)), tuple(sorted(examples, key=key)),
                    tuple(sorted(conflicts)), tuple(roots))


def roots_from(history: Mapping[str, Sequence[Decision]]) -> list[Path]:
    """Library roots (the folders holding class and review folders) that the journal has moved files into."""
    roots = {d.destination.parent.parent for rows in history.values() for d in rows if d.destination is not None}
    return sorted(roots)


# -- reading the disk and the journal (the edges) -------------------------------------------------

def read_history(journal_path: Path | None = None) -> dict[str, list[Decision]]:
    """Every finished, not undone sort/review move by content hash, oldest first (read-only; {} without a journal)."""
    path = paths.journal_file() if journal_path is None else Path(journal_path)
    with Journal.open(path.resolve(), readonly=True) as j:  # a damaged journal is an error, not "no history"
        placed = j.placed()
    out: dict[str, list[Decision]] = {}
    for e in placed:
        d = e.details
        out.setdefault(str(e.hash), []).append(Decision(e.id, e.action, d.label, d.model_version, e.destination,
                                                        d.confidence, d.probabilities))
    return out


def class_files(root: Path, classes: Sequence[str]) -> list[tuple[Path, str]]:
    """(image, class) for every image under `root/<class>/` (subfolders too; hidden and temporary files skipped)."""
    return [(p, label) for label in classes for p in image_files(Path(root) / label)]


def library_roots(given: Sequence[Path], history: Mapping[str, Sequence[Decision]], output: str = "") -> list[Path]:
    """The libraries to read: those given, else every existing one the journal (or sort.output) knows."""
    if given:
        return [Path(os.path.abspath(Path(p).expanduser())) for p in given]
    found = set(roots_from(history))
    if output:
        found.add(Path(os.path.abspath(Path(output).expanduser())))
    return sorted(r for r in found if r.is_dir())


def library_files(roots: Sequence[Path], classes: Sequence[str]) -> list[tuple[Path, str]]:
    """(image, class) for every image in the class folders of every root."""
    return [f for root in roots for f in class_files(root, classes)]


def scan(roots: Sequence[Path], classes: Sequence[str], *, history: Mapping[str, Sequence[Decision]] | None = None,
         listed: Sequence[tuple[Path, str]] | None = None, tick: Callable[[int], None] = lambda n: None) -> Findings:
    """Corrections and labelled examples in the class folders of `roots`, judged against the journal."""
    from footsort.sorting.hashes import ContentHashes

    hashes = ContentHashes.open()
    history = read_history() if history is None else history
    listed = library_files(roots, classes) if listed is None else listed
    digests = hashes.many((p for p, _ in listed), tick=tick)
    hashes.save()
    return find(((p, digests[p], label) for p, label in listed if p in digests), history, roots)


# -- telling plugins -------------------------------------------------------------------------------

def seen_file() -> Path:
    """The record of corrections already announced to plugins."""
    return paths.data_dir() / "corrections-seen.json"


def _seen_key(c: Correction) -> str:
    return f"{c.hash}:{c.new_label}"


def announce(corrections: Iterable[Correction], host: object, dry_run: bool = False) -> list[Correction]:
    """Emit CorrectionSeen once per correction (remembered in the data dir); the ones announced now."""
    store = seen_file()
    try:
        seen = set(json.loads(store.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        seen = set()
    fresh = [c for c in corrections if _seen_key(c) not in seen]
    if dry_run or not fresh:
        return fresh
    for c in fresh:
        host.emit(events.CorrectionSeen(c.path, c.old_label, c.new_label))  # type: ignore[attr-defined]
    atomic.write_text(store, json.dumps(sorted(seen | {_seen_key(c) for c in fresh})))
    return fresh
