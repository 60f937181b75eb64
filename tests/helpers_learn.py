"""Shared bits for the corrections/retrain tests: one torch thread, eager feature extraction."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run far faster on one thread, and much more so on a busy shared machine (no OpenMP spinning)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def eager_extract(model, makers, size, batch=32, desc=""):
    """trainer.extract_features without TorchScript tracing (fast for a tiny model), same output type."""
    import torch

    with torch.inference_mode():
        return model.forward_features(torch.stack([make() for make in makers])).to(torch.float16)
