"""The few error types footsort raises; the CLI turns each into one line (see cli.py)."""

from __future__ import annotations


class FootsortError(Exception):
    """A problem the user can fix; its message says what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(FootsortError):
    """The configuration file, an environment variable or a flag holds a bad value."""

    exit_code = 2


TORCH_INSTALL = "pip install torch torchvision"


class TorchMissing(FootsortError):
    """torch (or torchvision) is not installed: the light install sorts without it, learning needs it."""

    @classmethod
    def to(cls, what: str) -> "TorchMissing":
        """The error for `what` (e.g. "footsort retrain") run where torch is not installed."""
        return cls(f"{what} needs torch, which is not installed; install it with: {TORCH_INSTALL} (without torch, "
                   "sort, watch and classify run on ONNX Runtime: --engine auto or onnx)")


class ModelFileError(FootsortError):
    """A model file is missing, truncated, corrupted, foreign or unsafe."""


class BackboneWeightsError(FootsortError):
    """No ImageNet backbone weights could be found or loaded."""


class DataError(FootsortError):
    """A data folder (ImageFolder) is missing, empty or does not match the model."""


class UnreadableImage(FootsortError):
    """A file is not a decodable image (corrupt, truncated, empty, too large, not an image)."""
