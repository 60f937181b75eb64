"""The MobileNetV2-ResNet hybrid: frozen ImageNet MobileNetV2 features, two residual blocks, a small head."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from footsort.errors import BackboneWeightsError
from footsort.model.prior import ImageNetPrior, prior_rows

Preset = Literal["paper", "lite"]
FEATURE_CHANNELS = 1280


@dataclass(frozen=True)
class Architecture:
    """Everything needed to rebuild the network's shape (stored in every model file)."""

    num_classes: int = 2
    preset: Preset = "lite"
    width: int = 256  # bottleneck width of the lite blocks
    hidden: int = 512  # the head's hidden layer
    dropout: float = 0.5
    backbone_width: float = 1.0  # MobileNetV2 width multiplier (tests use 0.25)
    prior_rows: int = 0  # ImageNet classifier rows kept as a frozen second expert (footsort.model.prior); 0: none
    prior_weight: float = 0.0  # how much the prior's logits add to the head's
    prior_stages: int = 0  # last backbone stages the prior keeps an untuned copy of (they were tuned for footsort)


def _conv_bn(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class ResidualBlock(nn.Module):
    """relu(x + F(x)) on the 1280-channel feature map."""

    def __init__(self, preset: Preset, channels: int = FEATURE_CHANNELS, width: int = 256) -> None:
        super().__init__()
        if preset == "paper":
            layers = [*_conv_bn(channels, channels, 3), nn.ReLU(inplace=True), *_conv_bn(channels, channels, 3)]
        elif preset == "lite":
            layers = [
                *_conv_bn(channels, width, 1), nn.ReLU(inplace=True),
                *_conv_bn(width, width, 3), nn.ReLU(inplace=True),
                *_conv_bn(width, channels, 1),
            ]
        else:
            raise ValueError(f"unknown preset {preset!r}: expected 'paper' or 'lite'")
        self.f = nn.Sequential(*layers)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.f(x))


def build_backbone(backbone_width: float = 1.0) -> nn.Sequential:
    """MobileNetV2's convolutional part (`.features`), untrained (torchvision's layout, without importing it)."""
    from footsort.model.mobilenet import mobilenet_v2_features

    return mobilenet_v2_features(backbone_width)


# TorchScript's freeze is what makes CPU inference ~1.6x faster here; its deprecation notice is not the user's business
warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)


def fuse_for_cpu(module: nn.Module, size: int) -> nn.Module:
    """TorchScript-freeze an eval-mode module (folds BatchNorm, fuses ops): ~1.6x faster on CPU; itself if that fails."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(module, torch.zeros(1, 3, size, size), check_trace=False)
            fused = torch.jit.optimize_for_inference(torch.jit.freeze(scripted))
            fused(torch.zeros(2, 3, size, size))
        return fused
    except Exception:  # pragma: no cover - depends on the torch build
        return module


class FootwearNet(nn.Module):
    """The hybrid classifier; `forward_features` is the frozen backbone, `forward_head` the trainable rest."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.backbone = build_backbone(arch.backbone_width)
        self.blocks = nn.Sequential(
            ResidualBlock(arch.preset, FEATURE_CHANNELS, arch.width),
            ResidualBlock(arch.preset, FEATURE_CHANNELS, arch.width),
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(FEATURE_CHANNELS, arch.hidden), nn.ReLU(inplace=True), nn.Dropout(arch.dropout),
            nn.Linear(arch.hidden, arch.num_classes),
        )
        self.prior: ImageNetPrior | None = None
        if arch.prior_rows:
            tail = build_backbone(arch.backbone_width)[-arch.prior_stages:] if arch.prior_stages else None
            self.prior = ImageNetPrior(arch.prior_rows, arch.num_classes, tail)
        # Temperature for calibrated probabilities: softmax(logits / T). Fitted after training.
        self.register_buffer("temperature", torch.ones(()))
        self._trainable_backbone_stages = 0
        self.freeze_backbone()

    # --- freezing -------------------------------------------------------------------------
    def freeze_backbone(self) -> None:
        """No gradients into the backbone; it stays in eval mode (BatchNorm statistics never move)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self._trainable_backbone_stages = 0
        self.backbone.eval()

    def unfreeze_last_stages(self, n: int) -> list[nn.Parameter]:
        """Let the last `n` backbone stages learn (BatchNorm still frozen); returns their parameters."""
        stages = list(self.backbone.children())
        n = max(0, min(n, len(stages)))
        if self.prior is not None and n > self.arch.prior_stages:
            raise ValueError(f"the ImageNet prior reads backbone stage {self.prior_split}'s input as ImageNet trained it: "
                             f"at most the last {self.arch.prior_stages} stages may learn")
        params: list[nn.Parameter] = []
        for stage in stages[len(stages) - n:]:
            for m in stage.modules():
                if isinstance(m, nn.BatchNorm2d):
                    continue
                for p in m.parameters(recurse=False):
                    p.requires_grad_(True)
                    params.append(p)
        self._trainable_backbone_stages = n
        return params

    def train(self, mode: bool = True) -> "FootwearNet":
        """Train the blocks and head; the backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Blocks and head (plus any unfrozen backbone stages)."""
        return [p for p in self.parameters() if p.requires_grad]

    # --- forward --------------------------------------------------------------------------
    @property
    def votes_ride_along(self) -> bool:
        """Whether the prior reads its own stage copies, so its votes travel with the feature map."""
        return self.prior is not None and self.prior.tail is not None

    @property
    def prior_split(self) -> int:
        """The backbone stage whose input the prior's own copied stages read (the backbone's end without them)."""
        return len(self.backbone) - (self.arch.prior_stages if self.prior is not None else 0)

    def forward_features(self, x: torch.Tensor, start: int = 0, votes: bool | None = None) -> torch.Tensor:
        """Backbone feature map (N, 1280, H/32, W/32) from the input of backbone stage `start` (0: the image).

        When the prior has its own copy of the last stages, its class logits ride along (in eval mode, or when
        `votes`) as extra channels (N, 1280 + classes, ...): cached features carry everything `forward_head` needs.
        """
        if not self.votes_ride_along:
            return self.backbone[start:](x)
        split = self.prior_split
        if start > split:
            raise ValueError(f"the prior reads the input of backbone stage {split}; features from stage {start} lack it")
        mid = self.backbone[start:split](x)
        final = self.backbone[split:](mid)
        if votes is None:
            votes = not self.training
        if not votes:
            return final
        prior = self.prior(mid)
        return torch.cat([final, prior[:, :, None, None].expand(-1, -1, final.shape[2], final.shape[3])], 1)

    def forward_head(self, features: torch.Tensor, votes: bool | None = None) -> torch.Tensor:
        """Logits from a backbone feature map: the head's, plus (in eval mode) the weighted ImageNet prior's.

        `votes`: whether the prior's votes ride along in `features` (None: tell from the channel count,
        which tracing would turn into a warning; `forward` knows).

        The head learns on its own (train mode leaves the prior out) and the two vote together when sorting:
        a head trained with the prior in its loss learns to undo it on the training sources, and keeps less
        of what it buys on a new one (leave-one-source-out street 76 % against 82 %).
        """
        prior = None
        if votes is None:
            votes = self.votes_ride_along and features.shape[1] > FEATURE_CHANNELS
        if votes:  # the prior's votes rode along (see forward_features)
            features, prior = features[:, :FEATURE_CHANNELS], features[:, FEATURE_CHANNELS:, 0, 0]
        elif self.prior is not None and not self.votes_ride_along and not self.training:
            prior = self.prior(features)
        if self.training or not self.arch.prior_weight:
            prior = None
        logits = self.head(self.blocks(features))
        return logits if prior is None else logits + self.arch.prior_weight * prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        votes = self.votes_ride_along and not self.training
        return self.forward_head(self.forward_features(x, votes=votes), votes=votes)


class FeatureMaps(nn.Module):
    """`model.forward_features` with the prior's votes, as one module (to fuse and trace for feature caches)."""

    def __init__(self, model: FootwearNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x, votes=True)


def load_backbone_weights(model: FootwearNet, source: str | Path | None, classes: Sequence[str] = ()) -> str:
    """Fill the backbone (and the ImageNet prior for `classes`, if the model has one) with ImageNet weights."""
    state, origin = _imagenet_state(source)
    feats = _stage_weights(state)
    if not feats:
        raise BackboneWeightsError(f"{origin} is not a torchvision mobilenet_v2 state_dict (no 'features.*' keys)")
    try:
        model.backbone.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackboneWeightsError(f"{origin} does not fit MobileNetV2 width {model.arch.backbone_width}: {first}") from None
    if model.prior is not None:
        _fill_prior(model, state, origin, classes)
    return origin


def with_prior(model: FootwearNet, classes: Sequence[str], weight: float, stages: int,
               source: str | Path | None) -> FootwearNet:
    """The same trained network with ImageNet's prior beside its head (its own copy of the last `stages` stages)."""
    rows = prior_rows(classes)
    if not rows:
        raise ValueError(f"ImageNet has no classes that vote for {list(classes)}")
    new = FootwearNet(replace(model.arch, prior_rows=len(rows), prior_weight=weight, prior_stages=stages))
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("prior.") for k in missing):
        raise ValueError(f"cannot add the prior: unexpected {unexpected}, missing {missing}")
    state, origin = _imagenet_state(source)
    _fill_prior(new, state, origin, classes)
    return new.train(model.training)


def _imagenet_state(source: str | Path | None) -> tuple[dict, str]:
    """ImageNet MobileNetV2 weights (a state_dict) from a local file or torchvision's cache/download."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    if source:
        path = Path(source).expanduser()
        if not path.is_file():
            raise BackboneWeightsError(
                f"backbone weights file {path} does not exist; pass --backbone-weights PATH to a "
                "torchvision mobilenet_v2 state_dict (.pth) or set FOOTSORT_BACKBONE_WEIGHTS"
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise BackboneWeightsError(f"cannot read backbone weights {path}: {exc}") from None
        origin = str(path)
    else:
        try:
            full = mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1)
        except Exception as exc:
            raise BackboneWeightsError(
                "no ImageNet backbone weights: torchvision could not download MobileNet_V2_Weights.IMAGENET1K_V1 "
                f"({type(exc).__name__}); offline, pass --backbone-weights PATH (a mobilenet_v2 state_dict .pth) "
                "or set FOOTSORT_BACKBONE_WEIGHTS"
            ) from None
        state = full.state_dict()
        origin = "torchvision:MobileNet_V2_Weights.IMAGENET1K_V1"
    return state, origin


def _stage_weights(state: dict, first: int = 0) -> dict:
    """The backbone's weights (`features.N.*`, named `N.*`) of stages `first` on (a slice keeps the stage numbers)."""
    return {k[len("features."):]: v for k, v in state.items()
            if k.startswith("features.") and int(k.split(".")[1]) >= first}


def _fill_prior(model: FootwearNet, state: dict, origin: str, classes: Sequence[str]) -> None:
    rows = prior_rows(classes)
    if model.prior is None or len(rows) != model.prior.weight.shape[0]:
        raise ValueError(f"classes {list(classes)} do not match the model's ImageNet prior")
    weight, bias = state.get("classifier.1.weight"), state.get("classifier.1.bias")
    if weight is None or bias is None or weight.shape[0] != 1000:
        raise BackboneWeightsError(f"{origin} has no ImageNet classifier (classifier.1.weight, 1000 classes), "
                                   "which the ImageNet prior needs; use a full mobilenet_v2 state_dict or --prior-weight 0")
    model.prior.fill(rows, weight.float(), bias.float())
    if model.prior.tail is not None:  # ImageNet's own weights for the stages the prior keeps untuned
        model.prior.tail.load_state_dict(_stage_weights(state, model.prior_split), strict=True)
