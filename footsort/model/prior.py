"""ImageNet's own footwear classes as a second, frozen expert beside the trained head.

The backbone's ImageNet classifier already tells a sandal from a loafer, a running shoe or a cowboy
boot, and it learned that from a million photos of every kind, not from footsort's three sources.
On a source the model never trained on it is right about as often as the trained head and wrong on
other photos, so the two voting together (logits added) hold up better than either. It reads the
backbone's features as ImageNet trained them: when the last backbone stages were tuned for footsort,
the prior keeps its own frozen copy of those stages (`tail`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

# ImageNet-1k class indices (torchvision's order) and the footsort class each one votes for
IMAGENET_INDEX = {"sandal": 774, "Loafer": 630, "running shoe": 770, "cowboy boot": 514}
VOTES: dict[str, tuple[str, ...]] = {
    "tsinelas": ("sandal",),
    "sapatos": ("Loafer", "running shoe", "cowboy boot"),
}
_ABSENT = -1e4  # a large negative number instead of -inf: exports and half precision stay finite


def prior_rows(classes: Sequence[str]) -> list[tuple[int, int]]:
    """(footsort class index, ImageNet class index) per prior row; empty when some class has no ImageNet vote."""
    if not classes or any(c not in VOTES for c in classes):
        return []
    return [(ci, IMAGENET_INDEX[name]) for ci, c in enumerate(classes) for name in VOTES[c]]


class ImageNetPrior(nn.Module):
    """Per footsort class, log-sum-exp of its ImageNet classes' logits over ImageNet's own pooled features."""

    def __init__(self, rows: int, num_classes: int, tail: nn.Sequential | None = None, channels: int = 1280) -> None:
        super().__init__()
        self.tail = tail  # frozen copies of the backbone stages footsort tuned (None: none were)
        if tail is not None:
            for p in tail.parameters():
                p.requires_grad_(False)
            tail.eval()
        self.register_buffer("weight", torch.zeros(rows, channels))
        self.register_buffer("bias", torch.zeros(rows))
        self.register_buffer("mask", torch.full((num_classes, rows), _ABSENT))  # 0 where the row votes for the class

    def train(self, mode: bool = True) -> ImageNetPrior:
        """Always eval mode: the copied stages' BatchNorm statistics never move."""
        return super().train(False)

    def fill(self, rows: Sequence[tuple[int, int]], classifier_weight: torch.Tensor, classifier_bias: torch.Tensor) -> None:
        """Copy the rows of ImageNet's classifier (1000 x channels) that vote for each class."""
        if len(rows) != self.weight.shape[0]:
            raise ValueError(f"the prior has {self.weight.shape[0]} rows, {len(rows)} were given")
        with torch.no_grad():
            self.mask.fill_(_ABSENT)
            for r, (ci, ii) in enumerate(rows):
                self.weight[r] = classifier_weight[ii]
                self.bias[r] = classifier_bias[ii]
                self.mask[ci, r] = 0.0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits (N, classes) from the input of `tail` (or the final backbone map when there is no tail)."""
        if self.tail is not None:
            features = self.tail(features)
        scores = features.mean((2, 3)) @ self.weight.t() + self.bias  # (N, rows)
        return torch.logsumexp(scores.unsqueeze(1) + self.mask.unsqueeze(0), dim=2)
