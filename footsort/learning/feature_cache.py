"""Frozen-backbone features on disk, computed once per (backbone, image content, view, preprocessing).

The backbone never trains during a retrain, so its output for a given image and augmented view never
changes: it is computed once and kept in the cache dir, one small safetensors file per key. The key
holds the digest of the backbone's weights, the image's content hash, the view (eval, or augmented
view number N with its seed and synthetic share) and the preprocessing, so a changed backbone, a
changed image or other settings never reuse a stale entry. Writes are atomic; an unreadable entry
is a miss. Augmented views are seeded by the image's content hash, not its position in a list, so the
same image gets the same views in every retrain.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from footsort.errors import UnreadableImage
from footsort.model.presets import Preprocess
from footsort.sorting import hashes
from footsort.system import atomic, paths

FORMAT = 1
AUGMENT_VERSION = "v2"  # bump when views.view_tensor, presets' train transforms or synth.household_view change
DEFAULT_MAX_BYTES = 2 << 30


@dataclass(frozen=True)
class View:
    """Which input an image becomes: the eval transform (index -1) or augmented view `index`."""

    index: int = -1
    seed: int = 0
    synth: float = 0.0  # share of augmented views drawn as synthetic household scenes
    augment: str = "paper"  # presets.train_transform name; "mild" makes view 0 the clean image

    @property
    def augmented(self) -> bool:
        """True for a training view (random augmentation), False for the deterministic eval view."""
        return self.index >= 0

    def key(self) -> str:
        """The view's part of a cache key."""
        if not self.augmented:
            return "eval"
        return f"{self.augment}-{AUGMENT_VERSION}-seed{self.seed}-synth{self.synth:g}-view{self.index}"


EVAL = View()


def augmented_views(count: int, seed: int = 0, synth: float = 0.0, augment: str = "paper") -> tuple[View, ...]:
    """The first `count` augmented views."""
    return tuple(View(i, seed, synth, augment) for i in range(count))


@dataclass(frozen=True)
class FeatureKey:
    """Everything the backbone's output depends on."""

    backbone: str  # digest of the backbone weights
    image: str  # content hash of the image file
    view: str  # View.key()
    preprocess: str  # preprocess_key()

    def digest(self) -> str:
        """A file-name-safe digest of the whole key."""
        return hashes.digest([json.dumps([FORMAT, self.backbone, self.image, self.view, self.preprocess]).encode()])


def preprocess_key(spec: Preprocess) -> str:
    """The preprocessing settings as a stable string."""
    return json.dumps(spec.to_dict(), sort_keys=True)


def backbone_digest(model: Any) -> str:
    """SHA-256 over the backbone's (and the ImageNet prior's, whose votes ride along) weights and buffers."""
    state = dict(model.backbone.state_dict())
    if getattr(model, "prior", None) is not None:
        state.update({f"prior.{k}": v for k, v in model.prior.state_dict().items()})

    def blocks() -> Iterator[bytes]:
        for name, t in sorted(state.items()):
            t = t.detach().cpu().contiguous()
            yield f"{name}|{t.dtype}|{tuple(t.shape)}|".encode()
            yield t.numpy().tobytes()

    return hashes.digest(blocks())


def view_input(path: Path, content: str, view: View, spec: Preprocess) -> Any:
    """The model input tensor of one view of one image (augmented views seeded by content, so reproducible)."""
    from footsort.learning.views import view_tensor
    from footsort.model.imaging import load_rgb
    from footsort.model.presets import eval_transform

    img = load_rgb(path, min_side=spec.size)
    if not view.augmented:
        return eval_transform(spec)(img)
    rng = random.Random(f"{content}:{view.seed}:{view.index}")
    return view_tensor(img, spec, view.index, view.augment, view.synth, rng)


class FeatureCache:
    """One safetensors file per FeatureKey under a root folder (default: the cache dir)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.cache_dir() / "features"
        self.hits = 0
        self.misses = 0

    def path(self, key: FeatureKey) -> Path:
        """Where the entry for `key` lives."""
        d = key.digest()
        return self.root / f"v{FORMAT}" / d[:2] / f"{d}.safetensors"

    def get(self, key: FeatureKey) -> Any | None:
        """The cached feature map, or None (a damaged entry is removed and counts as a miss)."""
        from safetensors.torch import load_file

        p = self.path(key)
        try:
            t = load_file(str(p))["features"]
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception:
            p.unlink(missing_ok=True)
            self.misses += 1
            return None
        try:
            os.utime(p)  # most recently used: pruned last
        except OSError:
            pass
        self.hits += 1
        return t

    def put(self, key: FeatureKey, features: Any) -> None:
        """Store one feature map atomically (fp16)."""
        import torch
        from safetensors.torch import save_file

        tensors = {"features": features.detach().to(torch.float16).cpu().contiguous()}
        atomic.write_with(self.path(key), lambda tmp: save_file(tensors, str(tmp)))

    def size(self) -> int:
        """Bytes on disk."""
        return sum(f.stat().st_size for f in self.root.rglob("*.safetensors")) if self.root.is_dir() else 0

    def prune(self, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
        """Delete least recently used entries until at most `max_bytes` remain; how many were deleted.

        Temporary files of writes a killed process left behind go too, once they are old."""
        if not self.root.is_dir():
            return 0
        for folder in [self.root, *(d for d in self.root.rglob("*") if d.is_dir() and not d.is_symlink())]:
            atomic.clean_stale(folder)
        entries = []
        for f in self.root.rglob("*.safetensors"):
            try:
                st = f.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, f))
        total = sum(e[1] for e in entries)
        removed = 0
        for _, size, f in sorted(entries):
            if total <= max_bytes:
                break
            f.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


@dataclass(frozen=True)
class Request:
    """One feature map wanted: this view of this image."""

    path: Path
    content: str
    view: View


def features(model: Any, requests: Sequence[Request], spec: Preprocess, cache: FeatureCache | None,
             batch: int = 32, desc: str = "features",
             extract: Callable[..., Any] | None = None) -> tuple[Any, set[int]]:
    """Backbone features (fp16, N x C x H x W) for every request, cached ones read from disk; (features, unreadable rows)."""
    import torch

    from footsort.learning.trainer import extract_features

    extract = extract or extract_features
    bb = backbone_digest(model) if cache is not None else ""
    pkey = preprocess_key(spec)
    keys = [FeatureKey(bb, r.content, r.view.key(), pkey) for r in requests]
    found: dict[int, Any] = {}
    if cache is not None:
        for i, k in enumerate(keys):
            t = cache.get(k)
            if t is not None:
                found[i] = t
    todo = [i for i in range(len(requests)) if i not in found]
    bad: set[int] = set()
    if todo:
        def maker(i: int) -> Callable[[], Any]:
            def make() -> Any:
                r = requests[i]
                try:
                    return view_input(r.path, r.content, r.view, spec)
                except (UnreadableImage, OSError):
                    bad.add(i)
                    return torch.zeros(3, spec.size, spec.size)
            return make

        computed = extract(model, [maker(i) for i in todo], spec.size, batch=batch, desc=desc)
        for i, t in zip(todo, computed):
            if i in bad:
                continue
            found[i] = t
            if cache is not None:
                cache.put(keys[i], t)
    if not found:
        return torch.empty(0), bad
    template = next(iter(found.values()))
    rows = [found.get(i, torch.zeros_like(template)) for i in range(len(requests))]
    return torch.stack(rows), bad
