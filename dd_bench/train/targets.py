"""The label-source interface (defined by the training layer that calls it; :mod:`dd_bench.labels` holds the
sources): ``targets(x_aug, idx, epoch, aug_params) -> Targets(values, loss)``.

A label source is asked for targets *after* augmentation, with everything that produced the batch: the augmented
images ``x_aug`` (B, C, H, W), the indices ``idx`` (B,) into the set, the pass ``epoch`` and the augmentation's
parameters. Sources that only look up stored labels use ``idx``; an online teacher will use ``x_aug``; stored
per-crop labels (FKD) will use ``epoch`` and the replayed ``aug_params``. Each source names the loss its targets
go with, so a distance-based source can bring its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from dd_bench.train.losses import Loss


@dataclass
class Targets:
    values: torch.Tensor  # (B,) int64 classes, or (B, K) probabilities / logits, per the loss
    loss: Loss


class LabelSource(Protocol):
    name: str

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets: ...


@dataclass
class HardLabels:
    """The class of each image: CE."""

    labels: torch.Tensor  # (N,) int64
    name: str = "hard"

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        return Targets(self.labels[idx], Loss("ce"))


@dataclass
class StoredProbabilities:
    """One stored probability vector per image (learned logits, softmaxed once): soft CE."""

    probs: torch.Tensor  # (N, K) float, rows summing to 1
    name: str = "learned"

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        return Targets(self.probs[idx], Loss("soft_ce"))


def label_source_for(targets: torch.Tensor) -> LabelSource:
    """The source of a plain target tensor: hard for (N,) int64 classes, stored probabilities for (N, K)."""
    return HardLabels(targets) if targets.dtype == torch.int64 else StoredProbabilities(targets)
