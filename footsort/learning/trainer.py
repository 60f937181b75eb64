"""Training reads top to bottom: build the model, (cache features,) train_one_epoch, evaluate, calibrate.

Two modes share one loop (`train_one_epoch` over a DataLoader of (inputs, labels) batches):
- `paper`: every step runs the augmented image through the frozen backbone (the paper's code); images
  are decoded and augmented by `AugmentedImages`, in `Recipe.workers` DataLoader processes.
- `cached`: the frozen backbone's output for `views` augmented views per image is computed once,
  batched under inference_mode, and the blocks and head train on those features for many epochs.
  Same model, same augmentations, a fraction of the time.

Which rows make each epoch's batches is drawn from Python's `random.Random(seed)` (the batch samplers
below), augmentation from torch's seeded generator, so a run repeats for the same seed (and workers).
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from footsort.learning.datasets import LabelledSet, Sample
from footsort.model.hybrid import (
    Architecture,
    FeatureMaps,
    FootwearNet,
    Preset,
    fuse_for_cpu,
    load_backbone_weights,
)
from footsort.model.imaging import load_rgb
from footsort.model.presets import Fit, Preprocess, eval_transform, train_transform
from footsort.model.prior import prior_rows
from footsort.system.progress import progress

Mode = Literal["paper", "cached"]


@dataclass(frozen=True)
class Recipe:
    """Every training choice; the defaults are the paper's."""

    epochs: int = 20
    batch_size: int = 1
    lr: float = 1e-4
    preset: Preset = "paper"
    width: int = 256
    size: int = 300
    fit: Fit = "crop"
    seed: int = 0
    workers: int = 0  # paper mode: DataLoader processes decoding and augmenting images (0: in this process)
    mode: Mode = "paper"
    views: int = 4  # cached mode: augmented views per image
    synth: float = 0.0  # cached mode: share of views that are synthetic household scenes
    augment: str = "paper"  # paper: the paper's transforms; mild: large crops (cached mode: view 0 is the clean image)
    finetune_backbone: int = 0  # last N backbone stages learn: paper mode after the head trains; cached mode from the start
    finetune_epochs: int = 2
    finetune_lr: float = 1e-5
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    schedule: str = "constant"  # constant (the paper) or cosine: the learning rate decays to 0 over the epochs
    tta_flip: bool = False
    prior_weight: float = 0.0  # > 0: ImageNet's sandal/shoe classes vote beside the head (footsort.model.prior)

    def preprocess(self) -> Preprocess:
        """The eval preprocessing this recipe trains for."""
        return Preprocess(size=self.size, fit=self.fit)


@dataclass(frozen=True)
class EpochLog:
    """Loss and accuracy of one epoch."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float


@dataclass
class TrainResult:
    """What training produced: per-epoch history, the best epoch, whether it was interrupted."""

    history: list[EpochLog] = field(default_factory=list)
    best_epoch: int = 0
    interrupted: bool = False
    seconds: float = 0.0


def make_model(classes: Sequence[str], recipe: Recipe, backbone_weights: str | None,
               backbone_width: float = 1.0) -> tuple[FootwearNet, str]:
    """A fresh hybrid with ImageNet backbone weights (local file or torchvision)."""
    torch.manual_seed(recipe.seed)
    rows = prior_rows(classes) if recipe.prior_weight > 0 else []
    model = FootwearNet(Architecture(num_classes=len(classes), preset=recipe.preset, width=recipe.width,
                                     backbone_width=backbone_width, prior_rows=len(rows),
                                     prior_weight=recipe.prior_weight if rows else 0.0,
                                     prior_stages=recipe.finetune_backbone if rows else 0))
    origin = load_backbone_weights(model, backbone_weights, classes)
    return model, origin


def fast_backbone(model: FootwearNet, size: int, stop: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen backbone (its first `stop` stages if given), TorchScript-fused on CPU, for feature extraction."""
    backbone = model.backbone.eval() if stop is None else model.backbone[:stop].eval()
    if stop is None and model.votes_ride_along:
        backbone = FeatureMaps(model)  # the prior's votes ride along with the final map
    if next(backbone.parameters()).device.type != "cpu":
        return backbone
    return fuse_for_cpu(backbone, size)


def _load(path, size: int) -> Image.Image:
    return load_rgb(path, min_side=size)


def extract_features(model: FootwearNet, images: Sequence[Callable[[], torch.Tensor]], size: int,
                     batch: int = 32, desc: str = "features", stop: int | None = None) -> torch.Tensor:
    """Run the frozen backbone (or its first `stop` stages) once over lazily made inputs; fp16 feature maps."""
    run = fast_backbone(model, size, stop)
    device = next(model.parameters()).device
    out: list[torch.Tensor] = []
    starts = range(0, len(images), batch)
    with torch.inference_mode(), progress(len(starts), desc, transient=True) as bar:
        for start in starts:
            x = torch.stack([make() for make in images[start:start + batch]]).to(device)
            out.append(run(x).to(torch.float16).cpu())
            bar.update(1)
    return torch.cat(out) if out else torch.empty(0)


def train_views(data: LabelledSet, recipe: Recipe) -> tuple[list[Callable[[], torch.Tensor]], list[int]]:
    """`views` augmented input makers per image (the recipe's augmentation, some synthetic household scenes)."""
    from footsort.learning.views import view_tensor

    spec = recipe.preprocess()
    makers: list[Callable[[], torch.Tensor]] = []
    labels: list[int] = []
    for i, s in enumerate(data.samples):
        for v in range(recipe.views):
            def make(path=s.path, v=v, key=hash((recipe.seed, i, v))) -> torch.Tensor:
                # a fresh rng per call: each view is the same every time it is made
                return view_tensor(_load(path, spec.size), spec, v, recipe.augment, recipe.synth, random.Random(key))

            makers.append(make)
            labels.append(s.label)
    return makers, labels


def eval_inputs(data: LabelledSet, spec: Preprocess) -> list[Callable[[], torch.Tensor]]:
    """Deterministic eval input makers."""
    tf = eval_transform(spec)
    return [lambda p=s.path: tf(_load(p, spec.size)) for s in data.samples]


# -- what one epoch is made of ---------------------------------------------------------------------

class ShuffledBatches(Sampler[list[int]]):
    """Each epoch all `n` indices in a fresh order from `rng`, in batches of `size` (the last may be short)."""

    def __init__(self, n: int, size: int, rng: random.Random) -> None:
        self.n, self.size, self.rng = n, size, rng

    def __len__(self) -> int:
        return -(-self.n // self.size)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(self.n))
        self.rng.shuffle(order)
        return iter([order[i:i + self.size] for i in range(0, self.n, self.size)])


class ViewBatches(Sampler[list[int]]):
    """Each epoch one random view of every image (`views` consecutive rows per image), shuffled, in batches.

    With `weights` (one per image), an epoch draws that many images in total, with replacement, each in
    proportion to its weight (to balance classes per source).
    """

    def __init__(self, images: int, views: int, size: int, rng: random.Random,
                 weights: torch.Tensor | None = None) -> None:
        self.images, self.views, self.size, self.rng = images, views, size, rng
        self.weights = None if weights is None else weights.tolist()
        self.count = images if weights is None else round(float(weights.sum()))

    def __len__(self) -> int:
        return -(-self.count // self.size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = self.rng
        if self.weights is None:
            images: Sequence[int] = range(self.images)
        else:
            images = rng.choices(range(self.images), weights=self.weights, k=self.count)
        rows = [i * self.views + rng.randrange(self.views) for i in images]
        rng.shuffle(rows)
        return iter([rows[i:i + self.size] for i in range(0, len(rows), self.size)])


class AugmentedImages(Dataset):
    """Paper mode's training inputs: (augmented image tensor, label) per sample, decoded on demand."""

    def __init__(self, samples: Sequence[Sample], spec: Preprocess, augment: str) -> None:
        self.samples, self.spec, self.augment = tuple(samples), spec, augment
        self._transform: Callable[[Image.Image], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:  # made where it runs: the mild transform holds a lambda, which cannot be pickled
            self._transform = train_transform(self.spec, self.augment)
        s = self.samples[i]
        return self._transform(_load(s.path, self.spec.size)), s.label

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_transform": None}


class FeatureRows(Dataset):
    """Cached mode's training inputs: rows of backbone features (as float32) with their labels, a batch at a time."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[i].float(), self.labels[i]

    def __getitems__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[rows].float(), self.labels[rows]


def _whole_batch(batch: Any) -> Any:
    return batch  # FeatureRows.__getitems__ already made the batch


def image_loader(samples: Sequence[Sample], recipe: Recipe, batch_size: int, seed: int) -> DataLoader:
    """Augmented image batches for paper mode, shuffled per epoch, decoded in `recipe.workers` processes."""
    spec = recipe.preprocess()
    # torch seeds each worker (torch, random, numpy) from a base seed drawn from this generator; with
    # 0 workers it is never used, so augmentation draws from the global generator as before
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(AugmentedImages(samples, spec, recipe.augment),
                      batch_sampler=ShuffledBatches(len(samples), batch_size, random.Random(seed)),
                      num_workers=recipe.workers, persistent_workers=recipe.workers > 0, generator=generator)


def feature_loader(features: torch.Tensor, labels: torch.Tensor, batches: Sampler[list[int]], seed: int) -> DataLoader:
    """Cached-feature batches (in this process: the rows are already in memory)."""
    # a DataLoader draws a base seed per epoch: from its own generator, not torch's global one (dropout's)
    return DataLoader(FeatureRows(features, labels), batch_sampler=batches, collate_fn=_whole_batch,
                      generator=torch.Generator().manual_seed(seed))


def cosine_schedule(opt: torch.optim.Optimizer, steps_per_epoch: int, epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate decaying to 0 along a half cosine over all steps (stepped once per optimiser step)."""
    n = max(1, steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: 0.5 * (1 + math.cos(math.pi * (step // n + step % n / n) / epochs)))


def tail_start(model: FootwearNet, recipe: Recipe) -> int | None:
    """Cached mode with --finetune-backbone N: the backbone stage whose input is cached (None: the final map)."""
    if recipe.mode != "cached" or recipe.finetune_backbone <= 0:
        return None
    return max(0, len(model.backbone) - recipe.finetune_backbone)


def cached_logits(model: FootwearNet, features: torch.Tensor, start: int | None = None) -> torch.Tensor:
    """Logits from cached backbone features: the final map, or the input of backbone stage `start`."""
    if start is not None:
        features = model.forward_features(features, start)
    return model.forward_head(features)


def head_logits(model: FootwearNet, features: torch.Tensor, batch: int = 256, start: int | None = None) -> torch.Tensor:
    """Logits over cached features (eval mode); `start` as in cached_logits."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(features), batch):
            outs.append(cached_logits(model, features[i:i + batch].float(), start))
    return torch.cat(outs) if outs else torch.empty(0, model.arch.num_classes)


def _val(model: FootwearNet, feats: torch.Tensor | None, labels: torch.Tensor | None, loss_fn: nn.Module,
         start: int | None = None) -> tuple[float | None, float | None]:
    if feats is None or labels is None or len(labels) == 0:
        return None, None
    logits = head_logits(model, feats, start=start)
    return float(loss_fn(logits, labels)), float((logits.argmax(1) == labels).float().mean())


def train(model: FootwearNet, train_set: LabelledSet, val_set: LabelledSet | None, recipe: Recipe,
          log: Callable[[EpochLog], None] = lambda e: None) -> TrainResult:
    """Train blocks and head (then optionally the last backbone stages); keeps the best epoch's weights."""
    t0 = time.perf_counter()
    torch.manual_seed(recipe.seed)
    spec = recipe.preprocess()
    start = tail_start(model, recipe)
    val_feats = val_labels = None
    if val_set is not None and len(val_set):
        val_feats = extract_features(model, eval_inputs(val_set, spec), spec.size, desc="validation features", stop=start)
        val_labels = torch.tensor([s.label for s in val_set.samples])
    if recipe.mode == "cached":
        makers, labels = train_views(train_set, recipe)
        feats = extract_features(model, makers, spec.size, desc=f"train features x{recipe.views} views", stop=start)
        result = train_on_features(model, feats, torch.tensor(labels), recipe.views, val_feats, val_labels, recipe, log)
    else:
        def forward(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                feats = model.forward_features(x)
            return model.forward_head(feats)

        batches = image_loader(train_set.samples, recipe, recipe.batch_size, recipe.seed)
        result = _run_epochs(model, recipe, batches, forward, val_feats, val_labels, log)
    if recipe.finetune_backbone > 0 and recipe.mode == "paper" and not result.interrupted:
        try:
            _finetune_backbone(model, train_set, val_set, recipe, result, log)
        except KeyboardInterrupt:
            result.interrupted = True
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result


def train_on_features(model: FootwearNet, feats: torch.Tensor, labels: torch.Tensor, views: int,
                      val_feats: torch.Tensor | None, val_labels: torch.Tensor | None, recipe: Recipe,
                      log: Callable[[EpochLog], None] = lambda e: None,
                      image_weights: torch.Tensor | None = None) -> TrainResult:
    """Train blocks and head on cached backbone features (`views` consecutive rows per image).

    With `image_weights` (one per image), each epoch draws that many images in total, with replacement,
    each in proportion to its weight (to balance classes per source); otherwise every image once.

    With `recipe.finetune_backbone` N the features are the input of the last N backbone stages, which
    train too (at `finetune_lr`, BatchNorm frozen): the stages before them still run only once per view.
    """
    start = tail_start(model, recipe)
    images = len(labels) // max(1, views)
    sampler = ViewBatches(images, views, recipe.batch_size, random.Random(recipe.seed), image_weights)
    try:
        return _run_epochs(model, recipe, feature_loader(feats, labels, sampler, recipe.seed),
                           lambda x: cached_logits(model, x, start), val_feats, val_labels, log, start)
    finally:
        model.freeze_backbone()


def train_one_epoch(model: nn.Module, batches: DataLoader, forward: Callable[[torch.Tensor], torch.Tensor],
                    opt: torch.optim.Optimizer, loss_fn: nn.Module,
                    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
                    label: str = "epoch") -> tuple[float, float]:
    """One pass of optimiser steps over (inputs, labels) batches; the epoch's mean loss and accuracy."""
    model.train()
    total_loss = correct = seen = 0.0
    with progress(len(batches), label, transient=True) as bar:
        for x, y in batches:
            logits = forward(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            total_loss += float(loss.detach()) * len(y)
            correct += float((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.update(1)
    return total_loss / max(seen, 1), correct / max(seen, 1)


def _run_epochs(model: FootwearNet, recipe: Recipe, batches: DataLoader,
                forward: Callable[[torch.Tensor], torch.Tensor],
                val_feats: torch.Tensor | None, val_labels: torch.Tensor | None,
                log: Callable[[EpochLog], None], start: int | None = None) -> TrainResult:
    """Epochs of Adam steps on the blocks and head, validation, best-epoch tracking; Ctrl-C keeps the best."""
    result = TrainResult()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    groups = [{"params": list(model.blocks.parameters()) + list(model.head.parameters()), "lr": recipe.lr}]
    if start is not None:  # the last backbone stages learn with the blocks and head
        groups.append({"params": model.unfreeze_last_stages(len(model.backbone) - start), "lr": recipe.finetune_lr})
    opt = torch.optim.Adam(groups, weight_decay=recipe.weight_decay)
    schedule = cosine_schedule(opt, len(batches), recipe.epochs) if recipe.schedule == "cosine" else None
    best_state, best_score = copy.deepcopy(model.state_dict()), None
    try:
        for epoch in range(1, recipe.epochs + 1):
            e0 = time.perf_counter()
            train_loss, train_acc = train_one_epoch(model, batches, forward, opt, loss_fn, schedule,
                                                    f"epoch {epoch}/{recipe.epochs}")
            val_loss, val_acc = _val(model, val_feats, val_labels, nn.CrossEntropyLoss(), start)
            entry = EpochLog(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - e0)
            result.history.append(entry)
            log(entry)
            # best: highest val accuracy, ties to lower val loss; without validation, the last epoch
            key = (val_acc, -(val_loss or 0.0)) if val_acc is not None else (float(epoch), 0.0)
            if best_score is None or key > best_score:
                best_score, best_state, result.best_epoch = key, copy.deepcopy(model.state_dict()), epoch
    except KeyboardInterrupt:
        result.interrupted = True
    model.load_state_dict(best_state)
    model.eval()
    return result


def _finetune_backbone(model: FootwearNet, train_set: LabelledSet, val_set: LabelledSet | None, recipe: Recipe,
                       result: TrainResult, log: Callable[[EpochLog], None]) -> None:
    """The opt-in second phase: unfreeze the last N backbone stages at a lower learning rate (BN stays frozen)."""
    spec = recipe.preprocess()
    backbone_params = model.unfreeze_last_stages(recipe.finetune_backbone)
    opt = torch.optim.Adam([
        {"params": backbone_params, "lr": recipe.finetune_lr},
        {"params": list(model.blocks.parameters()) + list(model.head.parameters()), "lr": recipe.finetune_lr},
    ])
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    batches = image_loader(train_set.samples, recipe, max(recipe.batch_size, 8), recipe.seed + 1)
    for k in range(recipe.finetune_epochs):
        e0 = time.perf_counter()
        epoch = recipe.epochs + k + 1
        label = f"fine-tuning epoch {epoch}/{recipe.epochs + recipe.finetune_epochs}"
        train_loss, train_acc = train_one_epoch(model, batches, model, opt, loss_fn, label=label)
        val_loss = val_acc = None
        if val_set is not None and len(val_set):
            feats = extract_features(model, eval_inputs(val_set, spec), spec.size, desc="validation features")
            v_labels = torch.tensor([s.label for s in val_set.samples])
            val_loss, val_acc = _val(model, feats, v_labels, nn.CrossEntropyLoss())
        entry = EpochLog(epoch, train_loss, train_acc, val_loss, val_acc, time.perf_counter() - e0)
        result.history.append(entry)
        log(entry)
    model.freeze_backbone()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature T minimising validation NLL of softmax(logits / T) (calibration)."""
    if len(labels) == 0:
        return 1.0
    logits = logits.detach().float()
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=100)
    nll = nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nll(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return min(max(t, 0.05), 20.0) if math.isfinite(t) else 1.0


def recipe_dict(recipe: Recipe) -> dict:
    """Plain data for the model file."""
    return asdict(recipe)
