from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footsort.datasets import scan
from footsort.imaging import load_rgb
from footsort.presets import Preprocess, eval_transform, train_transform
from footsort.trainer import Recipe, train_views
from tests.helpers_model import make_image_folder


def test_mild_views_start_with_the_clean_image_then_vary(tmp_path: Path) -> None:
    data = scan(make_image_folder(tmp_path / "d", per_class=2), ("sapatos", "tsinelas"))
    recipe = Recipe(mode="cached", size=64, fit="pad", views=3, augment="mild")
    makers, labels = train_views(data, recipe)
    assert len(makers) == 3 * len(data) and labels[:3] == [data.samples[0].label] * 3
    clean = eval_transform(Preprocess(size=64, fit="pad"))(load_rgb(data.samples[0].path))
    assert torch.equal(makers[0](), clean)
    assert not torch.equal(makers[1](), clean) and not torch.equal(makers[1](), makers[2]())
    assert torch.equal(makers[1](), makers[1]())  # each view is reproducible


def test_paper_views_are_all_augmented(tmp_path: Path) -> None:
    data = scan(make_image_folder(tmp_path / "d", per_class=1), ("sapatos", "tsinelas"))
    makers, _ = train_views(data, Recipe(mode="cached", size=64, views=2))
    clean = eval_transform(Preprocess(size=64))(load_rgb(data.samples[0].path))
    assert not torch.equal(makers[0](), clean)


def test_unknown_augmentation_is_refused() -> None:
    with pytest.raises(ValueError, match="paper or mild"):
        train_transform(Preprocess(size=32), "heavy")
