"""DC's ResNet-18 (``networks.py:ResNet18`` / ``ResNet18BN``): the cross-architecture net of DC/DSA/DM/MTT.

A kuangliu-style CIFAR ResNet: 3x3 stride-1 stem without max-pool, four stages of two BasicBlocks (64, 128, 256,
512 channels; stages 2-4 start with stride 2), then ``avg_pool2d(out, 4)`` and Linear(512, K). The fixed 4x4
pooling is only a global average when layer4's map is 4x4, i.e. for 32x32 inputs (and 28x28, since the
strided convs round up: 28 -> 14 -> 7 -> 4). Default norm is instance norm (GroupNorm(C, C)).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.models.layers import check_norm, conv_out, norm_layer, require_feature_map
from dd_bench.models.registry import register_model

_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block)
_BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm1 = norm_layer(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.norm2 = norm_layer(norm, planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            # 1x1 projection so the residual matches the block's (planes, H / stride, W / stride) output.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False), norm_layer(norm, planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(
        self, *, num_classes: int, in_channels: int, image_size: tuple[int, int], norm: str = "instance"
    ) -> None:
        super().__init__()
        check_norm("resnet18", norm, options=("batch", "instance"))
        h, w = image_size
        for _, stride in _STAGES:
            h, w = conv_out(h, 3, stride, 1), conv_out(w, 3, stride, 1)
        require_feature_map(
            "resnet18", image_size, (h, w), (4, 4), needs="32x32 (or 28x28)", why="avg_pool2d(4) head on layer4"
        )
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False), norm_layer(norm, 64), nn.ReLU()
        )
        stages = []
        in_planes = 64
        for planes, stride in _STAGES:
            blocks = []
            for i in range(_BLOCKS_PER_STAGE):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, norm))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 512): layer4's (B, 512, 4, 4) map averaged by DC's avg_pool2d(4)."""
        return F.avg_pool2d(self.layers(self.stem(x)), 4).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("resnet18")
def resnet18(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ResNet18:
    return ResNet18(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


@register_model("resnet18_bn")
def resnet18_bn(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ResNet18:
    kwargs = {"norm": "batch", **kwargs}
    return resnet18(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
