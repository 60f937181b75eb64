from __future__ import annotations

import pytest
import torch
from torchvision.models import mobilenet_v2

from footsort.model.mobilenet import mobilenet_v2_features


@pytest.mark.parametrize("width", [1.0, 0.25])
def test_same_modules_and_outputs_as_torchvision(width: float) -> None:
    ours, theirs = mobilenet_v2_features(width).eval(), mobilenet_v2(width_mult=width).features.eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert [type(m).__name__ for m in ours.modules()].count("ReLU6") == [type(m).__name__ for m in theirs.modules()].count("ReLU6")
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)
