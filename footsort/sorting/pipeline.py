"""path -> load (hash + decode) -> predict (batched) -> decide -> move + journal -> plugin events.

The stages are small functions; `Pipeline.run` strings them together. Loading runs in a few threads
ahead of the model, so the next batch decodes while the current one is being classified. The
classifier comes from a provider called once per batch, so a newly promoted model is picked up
between batches: no file is dropped or handled twice.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal, Mapping, Sequence

from loguru import logger
from PIL import Image

from footsort.errors import UnreadableImage
from footsort.model.imaging import load_rgb
from footsort.model.prediction import ImageClassifier, Prediction
from footsort.plugins import events
from footsort.sorting.decide import Policy, Review, Skip, Sort, decide, decide_duplicate
from footsort.sorting.journal import Details, Entry, Journal
from footsort.sorting.sorter import Move, Sorter, Vanished, earlier_copy, file_hash
from footsort.system.config import Config

OutcomeKind = Literal["sort", "review", "failed", "duplicate", "skip", "retry", "vanished", "error"]
LEFT_IN_PLACE: frozenset[str] = frozenset({"duplicate", "skip", "error"})
HUGE_DECODE = 16_000_000  # decoded pixels; larger decodes (several hundred MB each) run one at a time
_huge_lock = threading.Lock()
_huge_pool: ThreadPoolExecutor | None = None


def _huge_decoder() -> ThreadPoolExecutor:
    """The one thread that decodes huge images, for every pipeline: one at a time, and the memory one
    decode frees is reused by the next (spread over several threads, each would keep its own)."""
    global _huge_pool
    with _huge_lock:
        if _huge_pool is None:
            _huge_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="footsort-huge")
        return _huge_pool


@dataclass(frozen=True)
class Layout:
    """Where files from one inbox go: `root/<class>/`, `root/review/`, `root/failed/`."""

    root: Path
    classes: tuple[str, ...]
    review: str = "review"
    failed: str = "failed"

    def folder(self, action: str, label: str = "") -> Path:
        """The folder for a decision: a class folder, review/ or failed/."""
        if action == "sort":
            return self.root / label
        return self.root / (self.review if action == "review" else self.failed)

    def names(self) -> frozenset[str]:
        """The names of the folders footsort writes into: the class folders, review and failed."""
        return frozenset({*self.classes, self.review, self.failed})

    def outputs(self) -> frozenset[Path]:
        """Every folder footsort writes into (never watched, never sorted again)."""
        return frozenset(self.root / name for name in self.names())


def layout_for(inbox: Path, cfg: Config, classes: Sequence[str]) -> Layout:
    """The layout for an inbox: class folders inside it, or under sort.output when set."""
    root = Path(cfg.sort.output).expanduser() if cfg.sort.output else inbox
    return Layout(Path(os.path.abspath(root)), tuple(classes), cfg.sort.review_folder, cfg.sort.failed_folder)


def policy_for(cfg: Config, classes: Sequence[str]) -> Policy:
    """The decision policy from the [sort] config section."""
    return Policy(threshold=cfg.sort.threshold, classes=tuple(classes), duplicates=cfg.sort.duplicates)


@dataclass(frozen=True)
class Item:
    """A file to handle and the layout of the inbox it came from."""

    path: Path
    layout: Layout


@dataclass(frozen=True)
class Loaded:
    """A file read from disk: its content hash and decoded image, or why it could not be."""

    item: Item
    hash: str | None = None
    size: int | None = None
    mtime: float = 0.0
    image: Image.Image | None = None
    error: str = ""
    vanished: bool = False
    final: bool = False  # the error cannot go away by waiting (a header says too large): no retry window


@dataclass(frozen=True)
class Outcome:
    """What happened to one file, and the model's prediction it was decided on (None: the model was not asked)."""

    source: Path
    action: OutcomeKind
    destination: Path | None = None
    prediction: Prediction | None = None
    reason: str = ""
    transient: bool = False  # an error that may go away (read-only folder, full or missing disk): try again later

    @property
    def left_in_place(self) -> bool:
        """The file stays where it was (and should not be looked at again until it changes)."""
        return self.action in LEFT_IN_PLACE

    @property
    def label(self) -> str:
        """The model's label ("" when it was not asked)."""
        return self.prediction.label if self.prediction else ""

    @property
    def confidence(self) -> float | None:
        """The model's confidence in its label (None when it was not asked)."""
        return self.prediction.confidence if self.prediction else None

    @property
    def probabilities(self) -> Mapping[str, float]:
        """Every class's probability ({} when the model was not asked)."""
        return self.prediction.probabilities if self.prediction else {}

    @property
    def model_version(self) -> str:
        """The version of the model that decided ("" when it was not asked)."""
        return self.prediction.model_version if self.prediction else ""


def image_size(path: Path) -> tuple[int, int, str] | None:
    """Width, height and format from the file's header (nothing is decoded); None when Pillow cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size[0], im.size[1], im.format or ""
    except Exception:  # unreadable, unknown or a bomb: decoding says why
        return None


def decoded_pixels(width: int, height: int, fmt: str, min_side: int | None) -> int:
    """About how many pixels a decode holds: JPEG decodes at 1/2, 1/4 or 1/8 scale when the model needs less."""
    scale = 1
    if fmt == "JPEG" and min_side:
        while scale < 8 and min(width, height) // (2 * scale) >= min_side:
            scale *= 2
    return (width // scale) * (height // scale)


def too_large(path: Path, width: int, height: int, max_pixels: int) -> str:
    """The failed/ reason for a photo above sort.max_pixels."""
    return (f"{path}: {width}x{height} is {width * height / 1e6:.1f} million pixels, above sort.max_pixels "
            f"({max_pixels / 1e6:.1f} million); raise it in the config file (`footsort config path`) to sort it")


def load(item: Item, min_side: int | None, prepare: Callable[[Image.Image], Image.Image] | None = None,
         max_pixels: int | None = None) -> Loaded:
    """Stage 1 (threads): hash and decode one file (and `prepare` it for the model, e.g. resize).

    Photos above `max_pixels` are not decoded; huge ones decode one at a time, on one thread (memory).
    """
    path = item.path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Loaded(item, vanished=True)
    except OSError as exc:
        return Loaded(item, error=f"{path}: cannot be read ({exc.strerror})")
    try:
        digest = file_hash(path)
    except FileNotFoundError:
        return Loaded(item, vanished=True)
    except PermissionError:
        return Loaded(item, size=st.st_size, mtime=st.st_mtime,
                      error=f"{path}: permission denied; make it readable (chmod u+r) and move it back")
    except OSError as exc:
        return Loaded(item, size=st.st_size, mtime=st.st_mtime, error=f"{path}: cannot be read ({exc.strerror})")
    header = image_size(path)
    if header is not None and max_pixels and header[0] * header[1] > max_pixels:
        return Loaded(item, digest, st.st_size, st.st_mtime, error=too_large(path, header[0], header[1], max_pixels),
                      final=True)
    huge = header is not None and decoded_pixels(*header, min_side) > HUGE_DECODE
    try:
        if huge:
            image = _huge_decoder().submit(_decode, path, min_side, prepare).result()
        else:
            image = _decode(path, min_side, prepare)
    except UnreadableImage as exc:
        if not os.path.lexists(path):
            return Loaded(item, vanished=True)
        return Loaded(item, digest, st.st_size, st.st_mtime, error=str(exc))
    return Loaded(item, digest, st.st_size, st.st_mtime, image=image)


def _decode(path: Path, min_side: int | None, prepare: Callable[[Image.Image], Image.Image] | None) -> Image.Image:
    image = load_rgb(path, min_side=min_side)
    return prepare(image) if prepare is not None else image


def _prefetch(fn: Callable[[Item], Loaded], items: Iterable[Item], pool: ThreadPoolExecutor,
              ahead: int) -> Iterator[Loaded]:
    """Run `fn` over items in the pool, keeping at most `ahead` in flight, yielding in order."""
    queue: deque[Future[Loaded]] = deque()
    for item in items:
        queue.append(pool.submit(fn, item))
        if len(queue) >= ahead:
            yield queue.popleft().result()
    while queue:
        yield queue.popleft().result()


def _chunks(loaded: Iterator[Loaded], size: int) -> Iterator[list[Loaded]]:
    chunk: list[Loaded] = []
    for x in loaded:
        chunk.append(x)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_classifier(cfg: Config, model_path: Path | None = None, fuse: str = "now") -> ImageClassifier:
    """The classifier commands use (the default ClassifierFactory): --model, else [model] path, else the model in use.

    `fuse` (CPU only): "now" fuses the graph before the first image (pays off from a few dozen
    photos), "background" starts at once and switches to the fused graph when ready, "never" stays eager.
    """
    from footsort.model.engine import (
        load_classifier as load_on_engine,  # onnx or torch: model.engine
    )

    return load_on_engine(model_path or cfg.model.path or None, cfg.model.engine, cfg.model.device, fuse)


def as_provider(source: object) -> Callable[[], ImageClassifier]:
    """A classifier provider from a classifier, a holder with `reload_if_changed()`, or a provider."""
    if hasattr(source, "predict_images"):
        reload = getattr(source, "reload_if_changed", None)
        if reload is None:
            return lambda: source  # type: ignore[return-value]

        def provide() -> ImageClassifier:
            fresh = reload()
            return fresh if hasattr(fresh, "predict_images") else source  # type: ignore[return-value]

        return provide
    if callable(source):
        return source  # type: ignore[return-value]
    raise TypeError(f"not a classifier or a classifier provider: {source!r}")


class Pipeline:
    """Handles files end to end; use as a context manager (it owns a small thread pool)."""

    def __init__(self, classifier: object, sorter: Sorter, journal: Journal | None, host: object,
                 policy: Policy, *, batch_size: int = 8, incomplete_seconds: float = 0.0,
                 honour_undo: bool = False, workers: int | None = None, max_pixels: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.provider = as_provider(classifier)
        self.sorter = sorter
        self.journal = journal
        self.host = host
        self.policy = policy
        self.batch_size = max(1, batch_size)
        self.incomplete_seconds = incomplete_seconds
        self.honour_undo = honour_undo  # the daemon must not re-sort what `undo` put back into an inbox
        self.max_pixels = max_pixels  # sort.max_pixels: larger photos go to failed/ undecoded
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2),
                                        thread_name_prefix="footsort-load")
        self._dry_sorted: dict[str, Path] = {}  # dry run: content "sorted" earlier in this run

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the loading threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, items: Iterable[Item]) -> Iterator[Outcome]:
        """Handle files in batches, yielding one outcome per file, in order."""
        clf = self.provider()
        min_side = getattr(clf, "input_size", None)
        prepare = getattr(clf, "prepare", None)  # resizing in the loading threads overlaps it with the model
        loaded = _prefetch(lambda it: load(it, min_side, prepare, self.max_pixels), items, self._pool,
                           ahead=2 * self.batch_size)
        for chunk in _chunks(loaded, self.batch_size):
            clf = self.provider()  # between batches: a newly promoted model takes over here
            yield from self._batch(chunk, clf)

    def _batch(self, chunk: list[Loaded], clf: ImageClassifier) -> Iterator[Outcome]:
        early: dict[int, Outcome] = {}
        for i, x in enumerate(chunk):
            early_outcome = self._before_model(x)
            if early_outcome is not None:
                early[i] = early_outcome
        todo = [i for i in range(len(chunk)) if i not in early]
        predictions: dict[int, Prediction] = {}
        if todo:
            try:
                preds = clf.predict_images([chunk[i].image for i in todo])  # type: ignore[misc]
                if len(preds) != len(todo):
                    raise RuntimeError(f"{len(preds)} predictions for {len(todo)} images")
                predictions = dict(zip(todo, preds))
            except Exception as exc:  # a model failure must not take the daemon down
                logger.exception(f"the classifier failed on a batch of {len(todo)}: {exc}")
                for i in todo:
                    early[i] = Outcome(chunk[i].item.path, "error", reason=f"classifier failed: {exc}")
        for i, x in enumerate(chunk):
            # checked again here: an earlier file of this very batch may have been the first copy
            outcome = early.get(i) or self._duplicate(x) or self._after_model(x, predictions[i])
            self._report(outcome)
            yield outcome

    # -- stages ------------------------------------------------------------------------------------

    def _before_model(self, x: Loaded) -> Outcome | None:
        """Stage 2: settle what needs no model: vanished, unreadable, left in place, duplicate."""
        path = x.item.path
        if x.vanished:
            return Outcome(path, "vanished", reason="gone before it could be handled")
        left = self.journal.left_in_place(path, x.hash) if self.journal is not None and x.hash else None
        if left is not None and left.action == "undo" and self.honour_undo:  # failed/ ones too: undo wins
            return Outcome(path, "skip", reason=f"put back by undo (journal #{left.id}); "
                                                "run `footsort sort` on it to sort it again")
        if x.error:
            if not x.final and self.incomplete_seconds and self._clock() - x.mtime < self.incomplete_seconds:
                return Outcome(path, "retry", reason=f"does not decode yet (maybe still being written): {x.error}")
            return self._move(x, "failed", reason=x.error)
        return self._duplicate(x, noted=left if left is not None and left.action == "duplicate" else None)

    def _duplicate(self, x: Loaded, noted: Entry | None = None) -> Outcome | None:
        """Stage 2b: content already sorted earlier is handled by the duplicates policy."""
        original = self._sorted_copy(x)
        if original is None:
            return None
        decision = decide_duplicate(str(original), self.policy)
        if isinstance(decision, Skip):
            if noted is not None and noted.destination == original:  # said so before: stay quiet
                return Outcome(x.item.path, "skip", reason=f"a duplicate left in place (journal #{noted.id})")
            if self.journal is not None and not self.sorter.dry_run:
                self.journal.note("duplicate", x.item.path, hash=x.hash, size=x.size,
                                  destination=original, details=Details(reason=decision.reason))
            return Outcome(x.item.path, "duplicate", reason=decision.reason)
        if isinstance(decision, Review):
            return self._move(x, "review", reason=decision.reason)
        return None

    def _sorted_copy(self, x: Loaded) -> Path | None:
        """Where this content already sits after an earlier sort (None if nowhere any more)."""
        if x.hash is None:
            return None
        if x.hash in self._dry_sorted:
            return self._dry_sorted[x.hash]
        return earlier_copy(self.journal, x.hash, x.item.path)

    def _after_model(self, x: Loaded, prediction: Prediction) -> Outcome:
        """Stage 3: decide from the prediction, then move."""
        decision = decide(prediction, self.policy)
        if isinstance(decision, Sort):
            return self._move(x, "sort", prediction=prediction)
        reason = decision.reason if isinstance(decision, Review) else ""
        return self._move(x, "review", prediction=prediction, reason=reason)

    def _move(self, x: Loaded, action: Literal["sort", "review", "failed"], *,
              prediction: Prediction | None = None, reason: str = "") -> Outcome:
        """Stage 4: move + journal."""
        details = Details.of(prediction, reason)
        folder = x.item.layout.folder(action, details.label)
        base = Outcome(x.item.path, action, prediction=prediction, reason=reason)
        if folder == x.item.path.parent:  # sorted again, same answer: nothing to move
            return replace(base, destination=x.item.path)
        try:
            dest = self.sorter.move(Move(x.item.path, folder, action, x.hash, x.size, details))
        except Vanished:
            return Outcome(x.item.path, "vanished", reason="gone before it could be moved")
        except OSError as exc:  # a read-only folder, a full or missing disk: may go away
            return Outcome(x.item.path, "error", prediction=prediction, reason=f"could not move it: {exc}",
                           transient=True)
        if self.sorter.dry_run and action != "failed" and x.hash:
            self._dry_sorted[x.hash] = dest
        return replace(base, destination=dest)

    def _report(self, o: Outcome) -> None:
        """Stage 5: one log line, and the plugin event."""
        name = ("[dry run] " if self.sorter.dry_run else "") + o.source.name
        conf = f" {o.confidence:.2f}" if o.confidence is not None else ""
        where = f"{o.destination.parent.name}/" if o.destination else ""
        if o.action == "sort":
            logger.info(f"{name} -> {where} ({o.label}{conf})")
        elif o.action == "review":
            logger.info(f"{name} -> {where} ({o.reason})")
        elif o.action == "failed":
            logger.warning(f"{name} -> {where}: {o.reason}")
        elif o.action == "error":
            logger.error(f"{name}: {o.reason}")
        elif o.action == "duplicate":
            logger.info(f"{name}: {o.reason}")
        else:
            logger.debug(f"{name}: {o.action}: {o.reason}")
        if self.sorter.dry_run:
            return
        event: events.Event | None = None
        if o.action == "sort" and o.prediction is not None and o.destination is not None:
            event = events.FileSorted.of(o.source, o.destination, o.prediction)
        elif o.action == "review" and o.destination is not None:
            event = events.FileReviewed.of(o.source, o.destination, o.prediction, o.reason)
        elif o.action in ("failed", "error"):
            event = events.FileFailed(o.source, o.destination, o.reason)
        if event is not None:
            try:
                self.host.emit(event)  # type: ignore[attr-defined]
            except Exception as exc:  # the host isolates plugins; belt and braces
                logger.error(f"plugin host failed on {event.name}: {exc}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


_SUMMARY_PARTS = (  # count key -> its words, in the order they are said
    ("review", lambda n: f"{n} to review"),
    ("failed", lambda n: f"{n} failed"),
    ("duplicate", lambda n: f"{_count(n, 'duplicate')} left in place"),
    ("skip", lambda n: f"{_count(n, 'file')} left in place"),
    ("vanished", lambda n: f"{_count(n, 'file')} vanished"),
    ("error", lambda n: _count(n, "error")),
)


def summary(counts: Mapping[str, int], labels: Mapping[str, int] | None = None, waiting: int = 0) -> str:
    """Plain words for what a run did: `sorted 12 (sapatos 5, tsinelas 7); 3 to review; 1 failed`.

    `waiting`: files left in the inbox to be tried again (still being written, or not movable yet).
    """
    counts = Counter(counts)
    parts = []
    if counts["sort"]:
        by_label = ", ".join(f"{k} {v}" for k, v in sorted((labels or {}).items()))
        parts.append(f"sorted {counts['sort']}" + (f" ({by_label})" if by_label else ""))
    parts += [words(counts[key]) for key, words in _SUMMARY_PARTS if counts[key]]
    if waiting:
        parts.append(f"{_count(waiting, 'file')} still in the inbox, to be tried again")
    return "; ".join(parts) or "nothing to sort"
