"""DC's MLP (``networks.py:MLP``): Linear(C*H*W, 128) -> ReLU -> Linear(128, 128) -> ReLU -> Linear(128, K).

DC sizes the input layer for 1x28x28 or 3x32x32 only; we use the dataset's real C*H*W, so the MLP takes any
resolution (the smallest DD model for 8x8 digits).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dd_bench.models.registry import register_model


class MLP(nn.Module):
    def __init__(self, *, num_classes: int, in_channels: int, image_size: tuple[int, int], width: int = 128) -> None:
        super().__init__()
        h, w = image_size
        self.hidden = nn.Sequential(
            nn.Flatten(), nn.Linear(in_channels * h * w, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
        )
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, width): the second hidden layer."""
        return self.hidden(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("mlp")
def mlp(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> MLP:
    return MLP(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
