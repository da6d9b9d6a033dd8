"""DC's LeNet (``networks.py:LeNet``): LeNet-5 with ReLU and max-pooling, from the DC cross-architecture pool.

Conv5x5(6) -> ReLU -> MaxPool2 -> Conv5x5(16) -> ReLU -> MaxPool2 -> Linear(16*5*5, 120) -> ReLU ->
Linear(120, 84) -> ReLU -> Linear(84, K). The first conv is unpadded, so 32x32 inputs reach the 5x5 map the
head expects (32 -> 28 -> 14 -> 10 -> 5); 1-channel 28x28 inputs get padding 2 (28 -> 28), as in DC.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dd_bench.models.layers import mnist_extra_padding, require_feature_map
from dd_bench.models.registry import register_model


class LeNet(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, image_size: tuple[int, int]) -> None:
        super().__init__()
        first_pad = mnist_extra_padding(in_channels, image_size)
        # Two rounds of 5x5 conv (H -> H + 2 * pad - 4; only the first is padded) then max-pool (floor-halve).
        h, w = ((((s + 2 * first_pad - 4) // 2) - 4) // 2 for s in image_size)
        require_feature_map("lenet", image_size, (h, w), (5, 5), needs="32x32", why="Linear(16*5*5, 120) head")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=first_pad),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.hidden = nn.Sequential(nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.classifier = nn.Linear(84, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 84): the last hidden layer, the classifier's input."""
        return self.hidden(self.features(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("lenet")
def lenet(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> LeNet:
    return LeNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
