"""Training views of one decoded image: the one rule `footsort train` and the retrain feature cache share.

View `index` of an image is, in this order: the clean eval input (view 0 under the "mild" recipe),
a synthetic household scene (with probability `synth`), or the named augmentation. Everything random
is drawn from `rng`, so a view is the same every time it is made from the same rng state.
"""

from __future__ import annotations

import random

import torch
from PIL import Image

from footsort.model.presets import Preprocess, eval_transform, train_transform


def view_tensor(img: Image.Image, spec: Preprocess, index: int, augment: str, synth: float,
                rng: random.Random) -> torch.Tensor:
    """The model input of training view `index` of `img`."""
    synthetic = rng.random() < synth
    seed = rng.randrange(2**31)
    if augment == "mild" and index == 0:
        return eval_transform(spec)(img)
    torch.manual_seed(seed)
    if synthetic:
        from footsort.learning.synth import household_view

        squash = Preprocess(size=spec.size, fit="squash", mean=spec.mean, std=spec.std)
        return eval_transform(squash)(household_view(img, random.Random(seed), spec.size))
    return train_transform(spec, augment)(img)
