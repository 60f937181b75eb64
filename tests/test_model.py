from __future__ import annotations

import torch

from footsort.model.hybrid import Architecture, FootwearNet, ResidualBlock
from tests.helpers_model import tiny_model


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_block_presets_have_the_documented_sizes() -> None:
    paper = ResidualBlock("paper")
    lite = ResidualBlock("lite", width=256)
    assert 29_000_000 < _count(paper) < 30_000_000  # two 3x3 1280->1280 convs + BN: ~29.5 M per block
    assert 1_100_000 < _count(lite) < 1_400_000  # ~1.25 M per block, 2.5 M for two


def test_residual_block_adds_its_input() -> None:
    block = ResidualBlock("lite", channels=1280, width=8).eval()
    for p in block.f.parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 1280, 2, 2)
    assert torch.allclose(block(x), torch.relu(x))  # F(x) == 0 -> relu(x + 0)


def test_head_shape_and_class_count() -> None:
    model = tiny_model(num_classes=3).eval()
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 3)
    head = [type(m).__name__ for m in model.head]
    assert head == ["AdaptiveAvgPool2d", "Flatten", "Linear", "ReLU", "Dropout", "Linear"]


def test_backbone_stays_frozen_and_in_eval_mode_while_training() -> None:
    model = tiny_model()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.train()
    assert not model.backbone.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    opt = torch.optim.Adam(model.trainable_parameters(), lr=1e-2)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(torch.rand(4, 3, 64, 64) * 3), torch.tensor([0, 1, 0, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.backbone.state_dict()
    for k, v in before.items():  # weights AND BatchNorm running statistics
        assert torch.equal(v, after[k]), k
    assert any(not torch.equal(a, b) for a, b in zip(model.head.state_dict().values(), tiny_model().head.state_dict().values()))


def test_unfreeze_last_stages_keeps_batchnorm_frozen() -> None:
    model = tiny_model()
    params = model.unfreeze_last_stages(2)
    assert params and all(p.requires_grad for p in params)
    bns = [m for m in list(model.backbone.children())[-2:] for m in m.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not p.requires_grad for bn in bns for p in bn.parameters())
    model.train()
    assert not model.backbone.training
    model.freeze_backbone()
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_paper_architecture_builds() -> None:
    model = FootwearNet(Architecture(preset="paper", backbone_width=0.25))
    assert 58_000_000 < _count(model.blocks) < 60_000_000
