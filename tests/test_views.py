from __future__ import annotations

import random

import torch
from PIL import Image

from footsort.learning.views import view_tensor
from footsort.model.presets import Preprocess, eval_transform

SPEC = Preprocess(size=48, fit="pad")
IMG = Image.effect_mandelbrot((80, 60), (-2, -1, 1, 1), 40).convert("RGB")


def test_view_zero_of_the_mild_recipe_is_the_clean_input() -> None:
    assert torch.equal(view_tensor(IMG, SPEC, 0, "mild", 1.0, random.Random(1)), eval_transform(SPEC)(IMG))


def test_the_same_rng_state_makes_the_same_view_and_another_state_another() -> None:
    for augment, synth in (("paper", 0.0), ("mild", 0.0), ("mild", 1.0)):
        a = view_tensor(IMG, SPEC, 2, augment, synth, random.Random(7))
        assert torch.equal(a, view_tensor(IMG, SPEC, 2, augment, synth, random.Random(7)))
        assert not torch.equal(a, view_tensor(IMG, SPEC, 2, augment, synth, random.Random(8)))
        assert a.shape == (3, 48, 48)
