from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from footsort.learning.synth import cutout_mask, household_view


def _catalogue_photo() -> Image.Image:
    img = Image.new("RGB", (136, 102), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.rectangle((30, 30, 100, 70), fill=(90, 40, 20))
    d.rectangle((50, 45, 60, 55), fill=(255, 255, 255))  # a white patch inside the shoe stays shoe
    return img


def test_cutout_keeps_the_object_and_its_white_holes() -> None:
    mask = np.asarray(cutout_mask(_catalogue_photo()))
    assert mask[50, 40] > 200  # object
    assert mask[50, 55] > 200  # enclosed white patch
    assert mask[5, 5] == 0 and mask[95, 130] == 0  # background


def test_no_cutout_without_white_background() -> None:
    assert cutout_mask(Image.new("RGB", (64, 64), (30, 120, 30))) is None


def test_household_view_is_a_square_scene_without_the_white_page() -> None:
    rng = random.Random(0)
    for _ in range(5):
        view = household_view(_catalogue_photo(), rng, size=96)
        assert view.size == (96, 96) and view.mode == "RGB"
        arr = np.asarray(view)
        assert (arr.min(axis=2) > 240).mean() < 0.5  # not mostly white any more
