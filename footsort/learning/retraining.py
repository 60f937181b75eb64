"""`footsort retrain` from start to end, as library calls: read the libraries, plan, fine-tune, gate, promote.

The steps `footsort retrain` (footsort/commands/learn_cmds.py) and Python callers share; the review page's
Retrain button runs that command in a child process (footsort/ui/jobs.py: Stop ends it, its memory goes with it):
- `find`: the corrections and labelled photos in the libraries' class folders, judged against the journal;
- `plan`: what to train and validate on (footsort.learning.retrain.make_plan, plus an optional --data folder);
- `run`: tell plugins of the corrections, fine-tune and compare (retrain.retrain), store and promote
  (retrain.finish), keep the feature cache in bounds.
The training, the gate and the promotion themselves are in footsort.learning.retrain.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping, Protocol, Sequence

from footsort.errors import FootsortError
from footsort.learning import corrections
from footsort.learning.retrain import NothingToLearn, Options, Plan, Result, TrainItem
from footsort.system.config import Config

History = Mapping[str, Sequence[corrections.Decision]]


class Ticks(Protocol):
    """A progress display: `update(n)` after n more files."""

    def update(self, n: int) -> None:
        """Count n more files done."""
        ...


Progress = Callable[[int], ContextManager[Ticks]]  # total -> a display for that many files (click.progressbar fits)


class _Silent:
    def update(self, n: int) -> None:
        pass


@contextmanager
def _no_progress(total: int) -> Iterator[Ticks]:
    yield _Silent()


def libraries(given: Sequence[Path], cfg: Config, history: History) -> list[Path]:
    """The libraries to read: those given, else every one footsort sorted into; a given one must be a folder."""
    roots = corrections.library_roots(given, history, cfg.sort.output)
    for r in roots:
        if not r.is_dir():
            raise FootsortError(f"library {r} is not a folder; give the folder that holds your class folders "
                                "(e.g. ~/Pictures/inbox, which holds tsinelas/ and sapatos/)")
    return roots


def find(given: Sequence[Path], cfg: Config, classes: Sequence[str], *, history: History | None = None,
         progress: Progress = _no_progress) -> corrections.Findings:
    """Corrections and labelled photos in the libraries' class folders (`progress` shows the hashing)."""
    history = corrections.read_history() if history is None else history
    roots = libraries(given, cfg, history)
    listed = corrections.library_files(roots, classes)
    with progress(len(listed)) as bar:
        return corrections.scan(roots, classes, history=history, listed=listed, tick=bar.update)


def extra_items(data_dir: Path, classes: Sequence[str]) -> list[TrainItem]:
    """The labelled photos of a folder DATA/<class>/<images>, to train on beside the corrections."""
    from footsort.learning.datasets import scan
    from footsort.sorting.hashes import ContentHashes

    data = scan(data_dir, classes)
    hashes = ContentHashes.open()
    digests = hashes.many(s.path for s in data.samples)
    hashes.save()
    return [TrainItem(s.path, digests[s.path], data.classes[s.label], "data") for s in data.samples if s.path in digests]


def plan(findings: corrections.Findings, classes: Sequence[str], options: Options,
         data_dir: Path | None = None) -> Plan:
    """What retrain trains and validates on; FootsortError saying what to do when there is nothing new to learn."""
    from footsort.learning.retrain import make_plan

    extra = extra_items(data_dir, classes) if data_dir else []
    try:
        return make_plan(findings, classes, options, extra, str(data_dir or ""))
    except NothingToLearn:
        where = ", ".join(map(str, findings.roots)) or "no library (sort some photos first, or name the folder)"
        raise FootsortError(f"nothing to learn from in {where}: no corrections and no photos added by hand. Move "
                            "wrongly sorted photos to the right class folder (or run `footsort review`), or pass "
                            "--data DIR") from None


def run(plan: Plan, options: Options, findings: corrections.Findings, host: object, *, device: str = "auto",
        log: Callable[[Any], None] = lambda e: None) -> Result:
    """Tell plugins of the corrections, fine-tune, compare with the model in use, store and promote on evidence."""
    from footsort.learning.feature_cache import FeatureCache
    from footsort.learning.retrain import finish, retrain

    cache = FeatureCache() if options.cache else None
    corrections.announce(findings.corrections, host)
    result = retrain(plan, options, device=device, cache=cache, log=log)
    result = finish(result, host, keep=options.keep)
    if cache is not None:
        cache.prune()
    return result
