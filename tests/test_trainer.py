from __future__ import annotations

from pathlib import Path

import pytest
import torch

from footsort.learning.datasets import scan
from footsort.learning.trainer import Recipe, train_views
from footsort.model.imaging import load_rgb
from footsort.model.presets import Preprocess, eval_transform, train_transform
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


def test_cached_mode_tunes_only_the_last_backbone_stages_and_keeps_batchnorm(tmp_path: Path) -> None:
    from footsort.learning.trainer import train
    from tests.helpers_model import tiny_model

    data = scan(make_image_folder(tmp_path / "d", per_class=4, size=64), ("sapatos", "tsinelas"))
    model = tiny_model()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    recipe = Recipe(mode="cached", preset="lite", size=64, views=2, epochs=2, batch_size=4, lr=1e-2,
                    finetune_backbone=2, finetune_lr=1e-2, augment="mild")
    train(model, data, None, recipe)
    after = model.backbone.state_dict()
    last = len(model.backbone) - 2
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(int(stage) >= last for stage in changed)
    batchnorms = [name for name, m in model.backbone.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    bn_keys = [k for k in before if k.rsplit(".", 1)[0] in batchnorms]
    assert bn_keys and all(torch.equal(before[k], after[k]) for k in bn_keys)
    assert not any(p.requires_grad for p in model.backbone.parameters()) and not model.backbone.training


def test_cosine_schedule_steps_per_step_down_to_zero() -> None:
    import math

    from footsort.learning.trainer import cosine_schedule

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    schedule = cosine_schedule(opt, steps_per_epoch=3, epochs=2)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    # what the hand-written loop set before each step: epoch e (from 0), step i of 3, progress (e + i / 3) / 2
    assert seen == [0.4 * 0.5 * (1 + math.cos(math.pi * (e + i / 3) / 2)) for e in range(2) for i in range(3)]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_paper_mode_decodes_in_worker_processes_and_repeats(tmp_path: Path) -> None:
    from footsort.learning.trainer import image_loader, train
    from tests.helpers_model import tiny_model

    data = scan(make_image_folder(tmp_path / "d", per_class=3, size=64), ("sapatos", "tsinelas"))
    recipe = Recipe(mode="paper", preset="lite", size=64, epochs=1, batch_size=2, lr=1e-2, augment="mild", workers=2)
    assert image_loader(data.samples, recipe, recipe.batch_size, recipe.seed).num_workers == 2

    def run() -> dict:
        model = tiny_model()
        train(model, data, None, recipe)
        return model.state_dict()

    first, second = run(), run()
    assert all(torch.equal(first[k], second[k]) for k in first)
