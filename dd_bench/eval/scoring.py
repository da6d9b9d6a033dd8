"""Scoring trained networks: top-1 accuracy on the real test set, once, after training (every family)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms.v2 import functional as TF

from dd_bench.data import RealData


def eval_transform(real: RealData, protocol: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The test images' way into the model: the dataset's own, and with ``test_resize_crop`` RDED's
    Resize(size // 7 * 8) + CenterCrop(size) (validation/main.py:154-155) on the model-space batch. Bilinear with
    antialiasing as torchvision's Resize; resizing commutes with the per-channel affine normalisation."""
    if not getattr(protocol, "test_resize_crop", False):
        return real.to_model_space
    height, width = real.image_size
    resize = (height // 7 * 8, width // 7 * 8)

    def transform(x: torch.Tensor) -> torch.Tensor:
        x = real.to_model_space(x)
        if resize == (height, width):
            return x  # 32 // 7 * 8 = 32: the identity on CIFAR
        x = TF.resize(x, list(resize), interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        return TF.center_crop(x, [height, width])

    return transform


def score(trained: Any, real: RealData, protocol: Any) -> list[float]:
    """Per-seed accuracy in percent (4 decimals) of :class:`~dd_bench.train.TrainedNetworks` on ``real``'s test set."""
    preds = trained.predict(real.test_images, transform=eval_transform(real, protocol),
                            batch_size=protocol.test_batch_size)
    correct = (preds == real.test_labels.unsqueeze(0)).float().mean(dim=1)
    return [round(100.0 * float(c), 4) for c in correct]
