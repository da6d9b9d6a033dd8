"""The "modified" torchvision ResNet-18 / ResNet-50 of the decoupled methods (SRe2L, RDED, CV-DD, ...).

``torchvision.models.resnet18`` (``resnet50``) with ``conv1 = Conv2d(C, 64, 3, stride 1, padding 1, bias=False)`` and
``maxpool = Identity``: the 7x7/stride-2 stem plus max-pool would shrink 32x32 inputs to 8x8 before layer1.
torchvision's adaptive average pooling makes the head resolution-independent (8x8 inputs reach layer4 as 1x1).
Uses BatchNorm, so it is not vmap-friendly. The new conv1 keeps PyTorch's default init, as in those repos.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from dd_bench.models.registry import register_model


class CifarResNet(ResNet):
    def __init__(self, *, num_classes: int, in_channels: int, block: type = BasicBlock,
                 layers: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__(block, list(layers), num_classes=num_classes)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.maxpool = nn.Identity()

    @property
    def classifier(self) -> nn.Linear:
        """torchvision calls the head ``fc``; a property avoids registering it twice in the state dict."""
        return self.fc

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 512) (2048 for ResNet-50): globally averaged layer4 features, the input of ``fc``."""
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 64, H, W): no stride, no max-pool
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, H/8, W/8), rounded up
        return torch.flatten(self.avgpool(x), 1)


@register_model("resnet18_cifar")
def resnet18_cifar(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> CifarResNet:
    # image_size is unused: adaptive pooling accepts any resolution.
    return CifarResNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model("resnet50_cifar")
def resnet50_cifar(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> CifarResNet:
    return CifarResNet(num_classes=num_classes, in_channels=in_channels, block=Bottleneck, layers=(3, 4, 6, 3),
                       **kwargs)
