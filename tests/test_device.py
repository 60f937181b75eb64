"""The one device rule: auto -> cuda, else mps, else cpu; an unavailable choice is an error that says what to do."""

from __future__ import annotations

import pytest
import torch

from footsort.errors import FootsortError
from footsort.model import device


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    assert device.resolve_device() == torch.device("mps")
    assert device.resolve_device(mps=False) == torch.device("cpu")
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    assert device.resolve_device("auto") == torch.device("cuda")


def test_an_unavailable_or_unknown_device_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cuda_available", lambda: False)
    with pytest.raises(FootsortError, match="--device auto or cpu"):
        device.resolve_device("cuda")
    with pytest.raises(FootsortError, match="unknown device"):
        device.resolve_device("tpu")
    assert device.resolve_device("cpu") == torch.device("cpu")
