"""MobileNetV2's convolutional part, module for module as torchvision builds it (same state_dict keys).

Built here so that loading a model for sorting does not import torchvision, which costs about 0.9 s of
start-up on a 2-core CPU; tests check it against `torchvision.models.mobilenet_v2().features`.
"""

from __future__ import annotations

from torch import nn

# expansion t, channels c, repeats n, first stride s (the MobileNetV2 paper, table 2)
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> ReLU6, like torchvision's Conv2dNormActivation."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear), with a shortcut when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [ConvBNReLU6(cin, hidden, kernel=1)] if expand != 1 else []
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def mobilenet_v2_features(width_mult: float = 1.0) -> nn.Sequential:
    """The 19 stages of `torchvision.models.mobilenet_v2(width_mult).features`, initialised the same way."""
    cin = _make_divisible(32 * width_mult)
    stages: list[nn.Module] = [ConvBNReLU6(3, cin, stride=2)]
    for t, c, n, s in SETTINGS:
        cout = _make_divisible(c * width_mult)
        for i in range(n):
            stages.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
            cin = cout
    stages.append(ConvBNReLU6(cin, _make_divisible(1280 * max(1.0, width_mult)), kernel=1))
    features = nn.Sequential(*stages)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return features
