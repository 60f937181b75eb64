"""The MobileNetV2-ResNet hybrid: frozen ImageNet MobileNetV2 features, two residual blocks, a small head."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from footsort.errors import BackboneWeightsError

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
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone feature map (N, 1280, H/32, W/32)."""
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from a backbone feature map."""
        return self.head(self.blocks(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def load_backbone_weights(model: FootwearNet, source: str | Path | None) -> str:
    """Fill the backbone with ImageNet weights from a local file or torchvision's cache/download."""
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
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not feats:
        raise BackboneWeightsError(f"{origin} is not a torchvision mobilenet_v2 state_dict (no 'features.*' keys)")
    try:
        model.backbone.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise BackboneWeightsError(f"{origin} does not fit MobileNetV2 width {model.arch.backbone_width}: {first}") from None
    return origin
