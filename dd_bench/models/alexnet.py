"""DC's AlexNet (``networks.py:AlexNet``): the small, norm-free AlexNet of the DC cross-architecture pool.

Conv5x5(128, pad 2) -> ReLU -> MaxPool2 -> Conv5x5(192, pad 2) -> ReLU -> MaxPool2 -> Conv3x3(256) -> ReLU ->
Conv3x3(192) -> ReLU -> Conv3x3(192) -> ReLU -> MaxPool2 -> Linear(192 * 4 * 4, K). All convs preserve the size
and three max-pools take 32x32 to the 4x4 map the head expects (1-channel 28x28 inputs get 2 more pixels of
padding on the first conv, 28 -> 32, as in DC).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dd_bench.models.layers import mnist_extra_padding, require_feature_map
from dd_bench.models.registry import register_model


class AlexNet(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        first_pad = 2 + mnist_extra_padding(in_channels, image_size)
        # First conv: H -> H + 2 * first_pad - 4; the other convs keep the size; three max-pools floor-halve it.
        h, w = ((s + 2 * first_pad - 4) >> 3 for s in image_size)
        require_feature_map("alexnet", image_size, (h, w), (4, 4), needs="32x32", why="Linear(192*4*4, K) head")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 128, kernel_size=5, padding=first_pad),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Linear(192 * 4 * 4, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 3072): the (B, 192, 4, 4) last feature map, flattened."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("alexnet")
def alexnet(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> AlexNet:
    return AlexNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
