"""Tiny models and tiny image folders for fast, torch-based mechanics tests."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

TINY_WIDTH = 0.25


def make_image_folder(root: Path, per_class: int = 6, size: int = 48, classes=("sapatos", "tsinelas"), seed: int = 0) -> Path:
    """Class 0 images are reddish, class 1 bluish: learnable in a few steps."""
    rng = random.Random(seed)
    for ci, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = (200, 40, 40) if ci == 0 else (40, 40, 200)
            img = Image.new("RGB", (size + rng.randint(0, 8), size))
            px = img.load()
            for x in range(img.width):
                for y in range(img.height):
                    px[x, y] = tuple(max(0, min(255, c + rng.randint(-40, 40))) for c in base)
            img.save(folder / f"{name}_{i}.jpg", quality=90)
    return root


def tiny_backbone_file(path: Path) -> Path:
    """A random-weight torchvision mobilenet_v2(width_mult=0.25) state_dict, as a user's local weights file."""
    import torch
    from torchvision.models import mobilenet_v2

    torch.manual_seed(0)
    torch.save(mobilenet_v2(width_mult=TINY_WIDTH).state_dict(), path)
    return path


def tiny_model(num_classes: int = 2):
    """A FootwearNet with a quarter-width random backbone and narrow lite blocks."""
    import torch

    from footsort.model.hybrid import Architecture, FootwearNet

    torch.manual_seed(0)
    return FootwearNet(Architecture(num_classes=num_classes, preset="lite", width=16, hidden=32, backbone_width=TINY_WIDTH))


def tiny_meta(model, classes=("sapatos", "tsinelas"), size: int = 64):
    """Metadata for a tiny model file."""
    from footsort.model.checkpoint import ModelVersion, new_version_id, now_iso
    from footsort.model.presets import Preprocess

    return ModelVersion(version=new_version_id(), classes=tuple(classes), arch=dict(model.arch.__dict__),
                        preprocess=Preprocess(size=size).to_dict(), created=now_iso())


def tiny_prior_model(folder: Path, weight: float, tuned: int = 0, classes=("sapatos", "tsinelas")):
    """A tiny hybrid with the ImageNet prior (`tuned`: stages it keeps its own copy of) and the weights file it came from."""
    from footsort.learning.trainer import Recipe, make_model

    weights = tiny_backbone_file(folder / "tiny.pth")
    model, _ = make_model(classes, Recipe(preset="lite", width=16, prior_weight=weight, finetune_backbone=tuned),
                          str(weights), TINY_WIDTH)
    return model, weights
