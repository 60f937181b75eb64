"""`footsort retrain`: plan -> cached features -> fine-tune blocks and head -> compare with the model in use -> promote.

Reads top to bottom:
- `make_plan` (pure): corrections (repeated `correction_weight` times), a stratified replay sample of the
  other labelled images, optional extra data; a stratified held-out validation set, corrections included.
- `retrain`: starts from the model in use, computes (or reads from the feature cache) the frozen
  backbone's features of `views` augmented views per training image and of the eval view per
  validation image, fine-tunes only the residual blocks and the head, then scores the candidate and
  the current model on the same validation features.
- `verdict` (pure): promote only on evidence (enough held-out photos, a significant paired gain) or when forced.
- `finish`: store the version (parent, data summary, metrics, held-out accuracy per class), make it the model in
  use, tell plugins, and remember the verdict (`last_gate`, shown by the review page).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from footsort.learning.corrections import Findings
from footsort.learning.datasets import split_by_key

Kind = Literal["correction", "example", "data"]
MIN_EVIDENCE = 30  # held-out photos below which no comparison is trusted
ALPHA = 0.05  # the candidate must be better with this significance (one-sided exact McNemar)
MIN_CALIBRATION = 30  # held-out images needed before the temperature is refitted


@dataclass(frozen=True)
class Options:
    """Every retrain knob (each is a `footsort retrain` flag)."""

    epochs: int = 12
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.0
    views: int = 4  # augmented views per training image (the model's own augmentation recipe)
    synth: float = 0.0  # share of views drawn as synthetic household scenes
    correction_weight: int = 5  # each correction is trained on this many times per epoch
    balance: bool = True  # then repeat photos of the lighter classes so every class weighs the same
    replay: int = 300  # at most this many other labelled images, balanced per class
    val_split: float = 0.2
    seed: int = 0
    cache: bool = True
    force: bool = False
    keep: bool = False  # store the candidate even when it is not promoted


@dataclass(frozen=True)
class TrainItem:
    """One labelled image retrain uses."""

    path: Path
    content: str
    label: str
    kind: Kind


@dataclass(frozen=True)
class Plan:
    """What retrain trains on and validates on."""

    classes: tuple[str, ...]
    train: tuple[TrainItem, ...]
    validation: tuple[TrainItem, ...]
    correction_weight: int = 1
    unused_examples: int = 0  # labelled images not drawn into the replay sample
    roots: tuple[Path, ...] = ()
    extra: str = ""

    def counts(self, items: Sequence[TrainItem]) -> dict[str, dict[str, int]]:
        """Images per kind and class."""
        out: dict[str, dict[str, int]] = {}
        for it in items:
            out.setdefault(it.kind, {c: 0 for c in self.classes})[it.label] += 1
        return out

    def summary(self) -> dict[str, Any]:
        """The data summary stored in the new version and shown by --dry-run."""
        return {"kind": "retrain", "libraries": [str(r) for r in self.roots], "extra_data": self.extra,
                "train": self.counts(self.train), "validation": self.counts(self.validation),
                "correction_weight": self.correction_weight, "unused_examples": self.unused_examples}


@dataclass(frozen=True)
class Verdict:
    """Whether the candidate becomes the model in use, and why."""

    promote: bool
    reason: str


@dataclass(frozen=True)
class Result:
    """What a retrain produced and measured."""

    plan: Plan
    candidate_accuracy: float
    current_accuracy: float
    candidate_corrections_accuracy: float | None
    current_corrections_accuracy: float | None
    validation_n: int
    verdict: Verdict
    parent: str
    meta: Any  # the candidate's ModelVersion
    model: Any = field(repr=False, default=None)
    path: Path | None = None  # where the candidate was stored (None: not stored)
    seconds: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    skipped: tuple[Path, ...] = ()  # images that could not be read
    comparison: Comparison | None = None  # the paired counts behind the verdict, per class too


# -- planning (pure) ------------------------------------------------------------------------------------

class NothingToLearn(Exception):
    """No corrections, no hand-added images and no extra data."""


def _replay_sample(examples: Sequence[Any], classes: Sequence[str], limit: int, rng: random.Random) -> list[Any]:
    """Up to `limit` examples, round-robin over classes, hand-added ones before model-accepted ones."""
    queues = []
    for c in classes:
        added = [e for e in examples if e.label == c and e.source == "added"]
        accepted = [e for e in examples if e.label == c and e.source != "added"]
        rng.shuffle(added)
        rng.shuffle(accepted)
        queues.append(added + accepted)
    picked: list[Any] = []
    while len(picked) < limit and any(queues):
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return picked


def _split(items: Sequence[TrainItem], fraction: float, rng: random.Random) -> tuple[list[TrainItem], list[TrainItem]]:
    """Stratified by (class, is correction): `fraction` of each group held out, at least one of a group of 2+."""
    key_fn = lambda x: str(x.path)  # noqa: E731
    train, val = split_by_key(sorted(items, key=key_fn), fraction, rng, key=lambda it: (it.label, it.kind == "correction"))
    return sorted(train, key=key_fn), sorted(val, key=key_fn)


def make_plan(findings: Findings, classes: Sequence[str], options: Options,
              extra: Sequence[TrainItem] = (), extra_name: str = "") -> Plan:
    """Corrections + a replay sample + extra data, split into training and validation (no content twice)."""
    rng = random.Random(options.seed)
    unknown = sorted({c.new_label for c in findings.corrections} - set(classes))
    if unknown:
        raise ValueError(f"corrections into unknown classes {unknown}")
    items: dict[str, TrainItem] = {}
    for c in findings.corrections:
        items.setdefault(c.hash, TrainItem(c.path, c.hash, c.new_label, "correction"))
    for it in extra:
        items.setdefault(it.content, it)
    has_new = bool(items) or any(e.source == "added" for e in findings.examples)
    if not has_new:
        raise NothingToLearn()
    pool = [e for e in findings.examples if e.hash not in items]
    picked = _replay_sample(pool, classes, options.replay, rng)
    for e in picked:
        items.setdefault(e.hash, TrainItem(e.path, e.hash, e.label, "example"))
    train, val = _split(list(items.values()), options.val_split, rng)
    return Plan(tuple(classes), tuple(train), tuple(val), options.correction_weight, len(pool) - len(picked),
                tuple(findings.roots), extra_name)


def repeats(items: Sequence[TrainItem], correction_weight: int, balance: bool, seed: int = 0) -> list[int]:
    """How many times each item is trained on per epoch: corrections `correction_weight` times; with
    `balance`, a class with less total weight gets extra repeats (spread over its items) up to the largest."""
    counts = [correction_weight if it.kind == "correction" else 1 for it in items]
    if not balance or not items:
        return counts
    totals: dict[str, int] = {}
    for it, n in zip(items, counts):
        totals[it.label] = totals.get(it.label, 0) + n
    target = max(totals.values())
    rng = random.Random(seed)
    for label, total in totals.items():
        members = [i for i, it in enumerate(items) if it.label == label]
        whole, extra = divmod(target - total, total)
        for i in members:
            counts[i] += whole * counts[i]
        pool = [i for i in members for _ in range(correction_weight if items[i].kind == "correction" else 1)]
        for i in rng.sample(pool, extra):
            counts[i] += 1
    return counts


@dataclass(frozen=True)
class ClassScore:
    """Both models on the held-out photos of one class (their true class)."""

    label: str
    n: int
    candidate_right: int
    current_right: int

    @property
    def candidate(self) -> float | None:
        """The candidate's accuracy on this class (None: no held-out photo of it)."""
        return self.candidate_right / self.n if self.n else None

    @property
    def current(self) -> float | None:
        """The current model's accuracy on this class (None: no held-out photo of it)."""
        return self.current_right / self.n if self.n else None

    def as_json(self) -> dict[str, Any]:
        """As stored in a version's metrics (`per_class`) and shown by the review page."""
        return {"n": self.n, "val_accuracy": _r(self.candidate), "parent_val_accuracy": _r(self.current)}


@dataclass(frozen=True)
class Comparison:
    """Candidate and current model on the same held-out photos: the paired evidence a promotion needs."""

    n: int
    candidate_right: int
    current_right: int
    fixed: int  # the candidate is right where the current model is wrong
    broke: int  # the candidate is wrong where the current model is right
    per_class: tuple[ClassScore, ...] = ()  # the same counts per true class (empty when not asked for)

    @classmethod
    def of(cls, candidate_hits: Sequence[bool], current_hits: Sequence[bool], labels: Sequence[str] = (),
           classes: Sequence[str] = ()) -> "Comparison":
        """Count from per-photo hits of both models; given each photo's true label, per class too (`classes` order)."""
        pairs = list(zip(candidate_hits, current_hits))
        per_class = []
        for c in classes or sorted(set(labels)):
            mine = [pair for pair, label in zip(pairs, labels) if label == c]
            per_class.append(ClassScore(c, len(mine), sum(a for a, _ in mine), sum(b for _, b in mine)))
        return cls(len(pairs), sum(a for a, _ in pairs), sum(b for _, b in pairs),
                   sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs), tuple(per_class))

    @property
    def candidate(self) -> float:
        """The candidate's held-out accuracy."""
        return self.candidate_right / self.n if self.n else 0.0

    @property
    def current(self) -> float:
        """The current model's held-out accuracy."""
        return self.current_right / self.n if self.n else 0.0

    def p_value(self) -> float:
        """One-sided exact McNemar test: the chance of fixing this many or more if both models were equal."""
        k = self.fixed + self.broke
        if k == 0:
            return 1.0
        return sum(math.comb(k, i) for i in range(self.fixed, k + 1)) / 2 ** k


def _more_needed(c: Comparison, alpha: float) -> int | None:
    """Held-out photos still needed for the evidence to hold if the same share keeps being fixed and broken."""
    if c.fixed <= c.broke or c.n == 0:
        return None
    for extra in range(1, 100 * c.n):
        n = c.n + extra
        if Comparison(n, 0, 0, round(c.fixed * n / c.n), round(c.broke * n / c.n)).p_value() < alpha:
            return extra
    return None


def verdict(c: Comparison, force: bool, interrupted: bool = False, val_share: float = 0.2) -> Verdict:
    """Promote only on evidence: at least MIN_EVIDENCE held-out photos and a significant paired gain (or --force)."""
    numbers = (f"candidate {c.candidate:.4f} vs current {c.current:.4f} on {c.n} held-out photos: "
               f"fixed {c.fixed}, broke {c.broke}, McNemar p={c.p_value():.3f}")
    if force:
        return Verdict(True, f"--force: promoted without the evidence check ({numbers})")
    if interrupted:
        return Verdict(False, f"interrupted: nothing promoted ({numbers}); run it again, or --force")
    share = max(val_share, 0.05)
    if c.n < MIN_EVIDENCE:
        more = math.ceil((MIN_EVIDENCE - c.n) / share)
        return Verdict(False, f"not promoted: only {c.n} held-out photo(s), too few to tell the models apart "
                              f"(at least {MIN_EVIDENCE} are needed); correct or label about {more} more photos "
                              "(retrain holds out a share of them), add --data DIR, or use --force")
    if c.fixed > c.broke and c.p_value() < ALPHA:
        return Verdict(True, f"promoted: the candidate is better than the current model ({numbers})")
    if c.fixed <= c.broke:
        return Verdict(False, f"not promoted: the candidate is not better ({numbers}); the current model stays "
                              "in use (--force overrides)")
    more = _more_needed(c, ALPHA)
    hint = (f"; about {math.ceil(more / share)} more corrected or labelled photos would settle it at this rate"
            if more else "")
    return Verdict(False, f"not promoted: the gain is not yet significant ({numbers}){hint}; the current model "
                          "stays in use (--force overrides)")


# -- the work ---------------------------------------------------------------------------------------------

def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def training_rows(plan: Plan, options: Options, unreadable: set[int] = frozenset()) -> tuple[list[int], list[str]]:
    """Feature rows (`views` per photo, photo i at rows i*views...) to train on, repeats included, and their labels."""
    usable = [(i, it) for i, it in enumerate(plan.train) if i not in unreadable]
    counts = repeats([it for _, it in usable], options.correction_weight, options.balance, options.seed)
    rows: list[int] = []
    labels: list[str] = []
    for (i, it), n in zip(usable, counts):
        for _ in range(n):
            rows.extend(range(i * options.views, (i + 1) * options.views))
            labels.extend([it.label] * options.views)
    return rows, labels


def _accuracy(logits: Any, labels: Any, mask: Any | None = None) -> float | None:
    hit = logits.argmax(1).cpu() == labels.cpu()
    if mask is not None:
        if not bool(mask.any()):
            return None
        hit = hit[mask]
    return float(hit.float().mean()) if len(hit) else 0.0


def retrain(plan: Plan, options: Options, *, model_path: Path | None = None, device: str = "auto",
            cache: Any | None = None, log: Callable[[Any], None] = lambda e: None,
            extract: Callable[..., Any] | None = None) -> Result:
    """Fine-tune the blocks and head of the model in use on the plan; score candidate and current alike."""
    import torch

    from footsort import __version__
    from footsort.errors import FootsortError
    from footsort.learning.feature_cache import EVAL, Request, augmented_views, features
    from footsort.learning.trainer import (
        Recipe,
        fit_temperature,
        head_logits,
        train_on_features,
    )
    from footsort.model import checkpoint, registry
    from footsort.model.device import resolve_device
    from footsort.model.presets import Preprocess

    t0 = time.perf_counter()
    source = Path(model_path) if model_path else registry.in_use_path()
    model, meta = checkpoint.load(source)
    if tuple(meta.classes) != tuple(plan.classes):
        raise FootsortError(f"the model in use ({meta.version}) has classes {', '.join(meta.classes)}, "
                            f"the data has {', '.join(plan.classes)}")
    dev = resolve_device(device)
    model.to(dev).eval()
    spec = Preprocess.from_dict(meta.preprocess)
    views = augmented_views(options.views, options.seed, options.synth, str(meta.recipe.get("augment", "paper")))
    index = {c: i for i, c in enumerate(plan.classes)}

    train_req = [Request(it.path, it.content, v) for it in plan.train for v in views]
    val_req = [Request(it.path, it.content, EVAL) for it in plan.validation]
    t_feat = time.perf_counter()
    both, bad = features(model, train_req + val_req, spec, cache, extract=extract,
                         desc=f"features ({options.views} views per training photo)")
    n_train = len(train_req)
    train_feats, val_feats = both[:n_train], both[n_train:]
    bad_train = {i for i in bad if i < n_train}
    bad_val = {i - n_train for i in bad if i >= n_train}
    seconds = {"features": time.perf_counter() - t_feat}

    rows, labels = training_rows(plan, options, {i // max(1, options.views) for i in bad_train})
    if not rows:
        raise FootsortError("none of the training images could be read")
    keep_val = [i for i in range(len(plan.validation)) if i not in bad_val]
    x_train = train_feats[torch.tensor(rows)].to(dev)
    y_train = torch.tensor([index[c] for c in labels]).to(dev)
    x_val = val_feats[torch.tensor(keep_val, dtype=torch.long)].to(dev) if keep_val else None
    y_val = torch.tensor([index[plan.validation[i].label] for i in keep_val], dtype=torch.long)
    is_corr = torch.tensor([plan.validation[i].kind == "correction" for i in keep_val], dtype=torch.bool)

    recipe = replace(Recipe(), epochs=options.epochs, batch_size=options.batch_size, lr=options.lr,
                     weight_decay=options.weight_decay, seed=options.seed, views=options.views, mode="cached",
                     preset=model.arch.preset, width=model.arch.width, size=spec.size, fit=spec.fit,
                     label_smoothing=float(meta.recipe.get("label_smoothing", 0.0)),
                     tta_flip=bool(meta.recipe.get("tta_flip", False)))
    candidate = copy.deepcopy(model)
    torch.manual_seed(options.seed)
    t_train = time.perf_counter()
    # no validation during training: the held-out set is kept for the one fair comparison below
    history = train_on_features(candidate, x_train, y_train, options.views, None, None, recipe, log)
    seconds["train"] = time.perf_counter() - t_train

    n_val = len(keep_val)
    cand_acc = cur_acc = 0.0
    cand_corr = cur_corr = None
    temperature = float(meta.temperature)
    if x_val is not None:
        cand_logits, cur_logits = head_logits(candidate, x_val).cpu(), head_logits(model, x_val).cpu()
        comparison = Comparison.of((cand_logits.argmax(1) == y_val).tolist(), (cur_logits.argmax(1) == y_val).tolist(),
                                   [plan.validation[i].label for i in keep_val], plan.classes)
        cand_acc, cur_acc = comparison.candidate, comparison.current
        cand_corr, cur_corr = _accuracy(cand_logits, y_val, is_corr), _accuracy(cur_logits, y_val, is_corr)
        errors = int((cand_logits.argmax(1) != y_val).sum())
        if n_val >= MIN_CALIBRATION and errors:  # with no mistakes the fit would only push T to its floor
            temperature = fit_temperature(cand_logits, y_val)
    else:
        comparison = Comparison.of([], [], [], plan.classes)
    candidate.temperature.fill_(temperature)
    decision = verdict(comparison, options.force, history.interrupted, options.val_split)

    bad_images = {i // max(1, options.views) for i in bad_train}
    skipped = tuple(sorted({plan.train[i].path for i in bad_images} | {plan.validation[i].path for i in bad_val}))
    opts = asdict(options)
    new = checkpoint.ModelVersion(
        version=checkpoint.new_version_id(), classes=tuple(meta.classes), arch=dict(meta.arch),
        preprocess=dict(meta.preprocess), temperature=temperature,
        recipe={**meta.recipe, "retrain": opts},
        data={**plan.summary(), "skipped_unreadable": len(skipped)},
        metrics={"val_accuracy": _r(cand_acc), "parent_val_accuracy": _r(cur_acc), "validation_n": n_val,
                 "corrections_val_accuracy": _r(cand_corr), "parent_corrections_val_accuracy": _r(cur_corr),
                 "promoted": decision.promote, "reason": decision.reason,
                 "fixed": comparison.fixed, "broke": comparison.broke, "p_value": round(comparison.p_value(), 4),
                 "per_class": {c.label: c.as_json() for c in comparison.per_class},
                 "history": [e.__dict__ for e in history.history], "interrupted": history.interrupted},
        parent=meta.version, created=checkpoint.now_iso(), footsort_version=__version__,
        backbone_origin=meta.backbone_origin)
    seconds["total"] = time.perf_counter() - t0
    return Result(plan, cand_acc or 0.0, cur_acc or 0.0, cand_corr, cur_corr, n_val, decision, meta.version, new,
                  candidate.cpu(), None, seconds, getattr(cache, "hits", 0), getattr(cache, "misses", 0), skipped,
                  comparison)


def finish(result: Result, host: object | None = None, keep: bool = False, dry_run: bool = False) -> Result:
    """Store the candidate (when promoted, or always with `keep`), make it the model in use when promoted, tell
    plugins; remember the gate's verdict either way (`last_gate`)."""
    from footsort.model import registry
    from footsort.plugins import events

    if dry_run:
        return result
    if not (result.verdict.promote or keep):
        remember_gate(result)
        return result
    path = registry.add_version(result.model, result.meta)
    if result.verdict.promote:
        previous = registry.current_version()
        registry.use(result.meta.version)
        if host is not None:
            host.emit(events.ModelPromoted(result.meta.version, path, previous))  # type: ignore[attr-defined]
    result = replace(result, path=path)
    remember_gate(result)
    return result


# -- the last verdict, for the review page -----------------------------------------------------------------

LAST_GATE = "last_retrain.json"  # in the data folder, beside the journal
GATE_KEYS = ("val_accuracy", "parent_val_accuracy", "validation_n", "corrections_val_accuracy",
             "parent_corrections_val_accuracy", "promoted", "reason", "fixed", "broke", "p_value", "per_class")


def gate_report(result: Result) -> dict[str, Any]:
    """The gate's verdict on a retrain (promoted or not), with the held-out accuracies overall and per class."""
    m = result.meta.metrics
    return {"version": result.meta.version, "parent": result.parent, "created": result.meta.created,
            "stored": result.path is not None, **{k: m.get(k) for k in GATE_KEYS},
            "promoted": result.verdict.promote, "reason": result.verdict.reason}


def remember_gate(result: Result) -> Path:
    """Keep the verdict of the latest retrain (a rejected candidate is not stored as a version)."""
    import json

    from footsort.system import atomic, paths

    return atomic.write_text(paths.data_dir() / LAST_GATE, json.dumps(gate_report(result), indent=1))


def last_gate() -> dict[str, Any] | None:
    """The verdict of the latest retrain on this machine, or None (none yet, or unreadable)."""
    import json

    from footsort.system import paths

    try:
        data = json.loads((paths.data_dir() / LAST_GATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
