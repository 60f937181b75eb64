"""Which torch device runs a model: the one rule for `--device` / `model.device` (auto -> cuda, else mps, else cpu)."""

from __future__ import annotations

import torch

from footsort.errors import FootsortError

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def cuda_available() -> bool:
    """torch sees a CUDA GPU."""
    return torch.cuda.is_available()


def mps_available() -> bool:
    """torch sees an Apple GPU (MPS)."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str = "auto", *, mps: bool = True) -> torch.device:
    """auto -> cuda, else mps (unless `mps` is False), else cpu; an unavailable explicit choice is an error."""
    if device == "auto":
        if cuda_available():
            return torch.device("cuda")
        if mps and mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not cuda_available():
        raise FootsortError("--device cuda asked for, but torch sees no CUDA GPU; use --device auto or cpu")
    if device == "mps" and not mps_available():
        raise FootsortError("--device mps asked for, but this machine has no Apple GPU (MPS); use --device auto or cpu")
    if device not in DEVICES:
        raise FootsortError(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    return torch.device(device)
