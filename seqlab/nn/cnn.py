"""Convolutional image encoders (CS182 seed 002, "卷积神经网络"): conv + ReLU + pool, padding, stride, batch norm,
residual blocks, and four families of configurable depth: LeNet, AlexNet, VGG and ResNet.

The size arithmetic of the seed, for one spatial dimension: an input of n pixels, a k-wide kernel, p pixels of zero
padding on each side and stride s give

    output_size(n, k, p, s) = floor((n + 2p - k) / s) + 1

so a 32x32 image under a 5x5 "valid" conv (p=0) becomes 28x28 (LeNet's C1: "28 而不是 32，因为边缘"), a 2x2 pooling
with stride 2 halves it to 14x14, and a 3x3 conv with p=1 keeps the size ("零填充 ... 激活映射的大小保持不变").

Every encoder maps images (B, C, H, W) to a feature map (B, D, H', W'); a captioner pools it or attends over its
H'*W' positions, a classifier pools it.  Shapes: B batch, C input channels, D output channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seqlab.errors import ConfigError

ARCHITECTURES = ("lenet", "alexnet", "vgg", "resnet")


def output_size(in_size: int, kernel: int, padding: int = 0, stride: int = 1) -> int:
    """Spatial size after a conv or pooling window: floor((n + 2p - k) / s) + 1 (seed 002, "填充和边缘")."""
    if in_size + 2 * padding < kernel:
        raise ValueError(f"a {kernel}-wide window does not fit an input of {in_size} with padding {padding}")
    return (in_size + 2 * padding - kernel) // stride + 1


@dataclass
class CNNConfig:
    """An image encoder.

    ``architecture``: "lenet" (5x5 valid convs, each followed by 2x2 max pooling), "alexnet" (a wide first
    kernel, then 3x3 convs; pooling after the first two stages only, sized for small inputs), "vgg" (stages of
    ``convs_per_stage`` 3x3 same-size convs, then 2x2 max pooling) or "resnet" (a 3x3 stem, then stages of
    ``convs_per_stage`` residual blocks; every stage after the first starts with a stride-2 block).
    ``channels`` gives one output width per stage, so its length is the depth in stages.
    """

    architecture: str = "vgg"
    in_channels: int = 3
    channels: tuple[int, ...] = (32, 64, 128)
    convs_per_stage: int = 1
    batch_norm: bool = True
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)  # YAML gives lists
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture: must be one of {', '.join(ARCHITECTURES)}, got {self.architecture!r}")
        if self.in_channels <= 0:
            raise ConfigError(f"in_channels: must be > 0, got {self.in_channels}")
        if not self.channels or min(self.channels) <= 0:
            raise ConfigError(f"channels: must be a non-empty list of positive widths, got {list(self.channels)}")
        if self.convs_per_stage <= 0:
            raise ConfigError(f"convs_per_stage: must be > 0, got {self.convs_per_stage}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")


def conv_block(in_channels: int, out_channels: int, kernel: int, padding: int, stride: int = 1,
               batch_norm: bool = True) -> nn.Sequential:
    """conv -> (batch norm) -> ReLU.  With batch norm the conv bias is redundant (BN re-centres), so it is off."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride, padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """y = ReLU(x' + F(x)), F = conv3x3 -> BN -> ReLU -> conv3x3 -> BN (He et al. 2016).

    The identity path lets a deep stack start as (nearly) the identity, which is why adding layers stops hurting
    (seed 002: "通过对神经网络架构的修改，你可以逆转这一趋势").  When the block changes width or stride, x' is a
    1x1 strided conv of x so the two paths have the same shape.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, batch_norm: bool = True):
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(out_channels)) if batch_norm else (lambda: nn.Identity())
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=not batch_norm), norm(), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=not batch_norm), norm())
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=not batch_norm),
                                          norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.shortcut(x) + self.residual(x))


class CNNEncoder(nn.Module):
    """images (B, C, H, W) float -> feature map (B, D, H', W'), D = ``config.channels[-1]`` = ``out_channels``."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.out_channels = config.channels[-1]
        builders = {"lenet": _lenet_layers, "alexnet": _alexnet_layers, "vgg": _vgg_layers,
                    "resnet": _resnet_layers}
        self.layers = nn.Sequential(*builders[config.architecture](config))
        self.dropout = nn.Dropout2d(config.dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.layers(images))

    def feature_map_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') for an (H, W) input, from the same arithmetic as ``output_size`` (used to size attention)."""
        return _map_size(self.config, height), _map_size(self.config, width)


def _map_size(config: CNNConfig, size: int) -> int:
    for stage in range(len(config.channels)):
        if config.architecture == "lenet":
            size = output_size(output_size(size, 5), 2, stride=2)
        elif config.architecture == "alexnet":
            size = output_size(size, 2, stride=2) if stage < 2 else size  # same-size convs; pools after 2 stages
        elif config.architecture == "vgg":
            size = output_size(size, 2, stride=2)  # 3x3 convs with padding 1 keep the size
        elif stage > 0:  # resnet: the first block of later stages has stride 2
            size = output_size(size, 3, padding=1, stride=2)
    return size


def _lenet_layers(config: CNNConfig) -> list[nn.Module]:
    """LeNet-5's pattern (seed 002: C1 28x28x6, S2 14x14, C3 10x10, S4 5x5): 5x5 valid conv, 2x2 pool, repeated.
    ReLU and max pooling replace the original sigmoid and average pooling, as d2l's modernised LeNet does."""
    layers: list[nn.Module] = []
    in_channels = config.in_channels
    for width in config.channels:
        layers += [conv_block(in_channels, width, 5, 0, batch_norm=config.batch_norm), nn.MaxPool2d(2)]
        in_channels = width
    return layers


def _alexnet_layers(config: CNNConfig) -> list[nn.Module]:
    """AlexNet's shape (Krizhevsky et al. 2012) scaled to small images: a wide first kernel (5x5 here, 11x11
    stride 4 on 224x224 ImageNet), pooling after the first two stages, then same-size 3x3 convs (AlexNet's
    conv3..conv5) with no pooling between them, so an 8x8 digit keeps a 2x2 map instead of vanishing."""
    layers: list[nn.Module] = []
    in_channels = config.in_channels
    for stage, width in enumerate(config.channels):
        kernel = 5 if stage == 0 else 3
        layers.append(conv_block(in_channels, width, kernel, kernel // 2, batch_norm=config.batch_norm))
        if stage < 2:
            layers.append(nn.MaxPool2d(2))
        in_channels = width
    return layers


def _vgg_layers(config: CNNConfig) -> list[nn.Module]:
    """VGG (Simonyan & Zisserman 2015): small 3x3 same-size convs stacked, resolution halved by 2x2 pooling."""
    layers: list[nn.Module] = []
    in_channels = config.in_channels
    for width in config.channels:
        for _ in range(config.convs_per_stage):
            layers.append(conv_block(in_channels, width, 3, 1, batch_norm=config.batch_norm))
            in_channels = width
        layers.append(nn.MaxPool2d(2))
    return layers


def _resnet_layers(config: CNNConfig) -> list[nn.Module]:
    """A CIFAR-style ResNet: 3x3 stem at full resolution, then residual stages; strided blocks downsample."""
    layers: list[nn.Module] = [conv_block(config.in_channels, config.channels[0], 3, 1,
                                          batch_norm=config.batch_norm)]
    in_channels = config.channels[0]
    for stage, width in enumerate(config.channels):
        for block in range(config.convs_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(ResidualBlock(in_channels, width, stride, config.batch_norm))
            in_channels = width
    return layers
