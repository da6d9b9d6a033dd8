"""ShuffleNet (v1) with 2 groups for 32x32 inputs, INFER's fourth CIFAR teacher (decoupled-methods.md §3(a): the
kuangliu/pytorch-cifar ``ShuffleNetG2`` the UFC repository trains).

The kuangliu definition: a 1x1 stem to 24 channels (stride 1, no pooling), three stages of [4, 8, 4] bottlenecks
with [200, 400, 800] output channels. A bottleneck is a grouped 1x1 convolution to a quarter of its output (one
group when its input is the 24-channel stem), a channel shuffle, a depthwise 3x3 (stride 2 in a stage's first
block), a grouped 1x1 back up, and the shortcut: added (stride 1) or, in a stage's first block, a 3x3 average pool
concatenated, so the block itself makes ``out - in`` channels. Global average pooling (kuangliu: ``avg_pool2d(4)``,
the same on 32x32) and a linear head. BatchNorm throughout (no vmap batching).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.models.registry import register_model


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, C, H, W): channel g * (C / groups) + i moves to i * groups + g."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleBottleneck(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, *, stride: int, groups: int, stem: bool) -> None:
        super().__init__()
        mid = out_planes // 4
        self.stride, self.first_groups = stride, 1 if stem else groups
        self.conv1 = nn.Conv2d(in_planes, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        res = self.shortcut(x)
        return F.relu(torch.cat([out, res], 1) if self.stride == 2 else out + res)


class CifarShuffleNetG2(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, groups: int = 2,
                 out_planes: tuple[int, ...] = (200, 400, 800), num_blocks: tuple[int, ...] = (4, 8, 4)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        blocks, planes = [], 24
        for out, n in zip(out_planes, num_blocks, strict=True):
            for j in range(n):
                blocks.append(ShuffleBottleneck(planes, out - (planes if j == 0 else 0), stride=2 if j == 0 else 1,
                                                groups=groups, stem=planes == 24))
                planes = out
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(planes, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 800): the globally pooled last map, the classifier's input."""
        return F.adaptive_avg_pool2d(self.blocks(F.relu(self.bn1(self.conv1(x)))), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model("shufflenetg2_cifar")
def shufflenetg2_cifar(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> nn.Module:
    return CifarShuffleNetG2(num_classes=num_classes, in_channels=in_channels, **kwargs)  # adaptive pooling: any size
