"""torchvision architectures adapted to 32x32 inputs, for the decoupled family's teacher committees (CV-DD:
ShuffleNetV2-0.5, MobileNetV2, DenseNet-121; INFER: MobileNetV2, EfficientNet-B0), decoupled-methods.md §5, §7.2.
The CIFAR ResNets (18 and 50) are in :mod:`dd_bench.models.resnet_cifar`.

The adaptation is the one the CIFAR repos make (kuangliu/pytorch-cifar and the "modified" ResNets): the stem's
first convolution gets stride 1 (3x3 where it was 7x7) and the stem's max-pool is removed, so a 32x32 input is not
shrunk to 8x8 before the first stage; MobileNetV2 also keeps stride 1 in its second stage (kuangliu's
``cfg = [(1, 16, 1, 1), (6, 24, 2, 1), ...]``). Everything after the stem is torchvision's definition.
Dropout and stochastic depth are off (EfficientNet-B0: torchvision's 0.2 / 0.2): they would draw from the global
RNG in training, which dd-bench never touches; recorded as a deviation. MobileNetV2's and EfficientNet's
``classifier`` is the Linear itself (torchvision: ``Sequential(Dropout, Linear)``), so their state-dict keys are
``classifier.weight`` / ``classifier.bias``. All use BatchNorm (no vmap batching).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

from dd_bench.models.registry import register_model


class _Head:
    """``classifier`` (the final Linear) and ``embed`` (its input) for the zoo's torchvision models."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, D)
        head = self.classifier
        captured = {}
        handle = head.register_forward_pre_hook(lambda m, args: captured.setdefault("x", args[0]))
        try:
            self(x)
        finally:
            handle.remove()
        return captured["x"]


class CifarMobileNetV2(_Head, tvm.MobileNetV2):
    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        setting = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                   [6, 320, 1, 1]]
        super().__init__(num_classes=num_classes, inverted_residual_setting=setting, dropout=0.0)
        self.features[0][0] = nn.Conv2d(in_channels, 32, kernel_size=3, stride=1, padding=1, bias=False)
        self.classifier = self.classifier[-1]  # Sequential(Dropout(0), Linear) -> the Linear: the same function


class CifarShuffleNetV2(_Head, tvm.ShuffleNetV2):
    def __init__(self, *, num_classes: int, in_channels: int, width: float = 0.5) -> None:
        channels = {0.5: [24, 48, 96, 192, 1024], 1.0: [24, 116, 232, 464, 1024]}[width]
        super().__init__([4, 8, 4], channels, num_classes=num_classes)
        self.conv1[0] = nn.Conv2d(in_channels, 24, kernel_size=3, stride=1, padding=1, bias=False)
        self.maxpool = nn.Identity()

    @property
    def classifier(self) -> nn.Linear:
        return self.fc


class CifarEfficientNetB0(_Head, tvm.EfficientNet):
    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        settings, last = tvm.efficientnet._efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=1.0)
        super().__init__(settings, dropout=0.0, stochastic_depth_prob=0.0, num_classes=num_classes,
                         last_channel=last)
        self.features[0][0] = nn.Conv2d(in_channels, 32, kernel_size=3, stride=1, padding=1, bias=False)
        self.classifier = self.classifier[-1]  # Sequential(Dropout(0), Linear) -> the Linear: the same function


class CifarDenseNet121(_Head, tvm.DenseNet):
    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__(32, (6, 12, 24, 16), 64, num_classes=num_classes)
        self.features.conv0 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.features.pool0 = nn.Identity()


def _factory(cls: type):
    def build(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> nn.Module:
        return cls(num_classes=num_classes, in_channels=in_channels, **kwargs)  # adaptive pooling: any size
    return build


register_model("mobilenetv2_cifar")(_factory(CifarMobileNetV2))
register_model("shufflenetv2_cifar")(_factory(CifarShuffleNetV2))
register_model("efficientnet_b0_cifar")(_factory(CifarEfficientNetB0))
register_model("densenet121_cifar")(_factory(CifarDenseNet121))
