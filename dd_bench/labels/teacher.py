"""Label sources of the `kd` family: an online teacher (or a weighted committee), and hard labels under MixUp.

* :class:`TeacherLogits`: every augmented (and mixed) batch goes through the teachers; the target is the
  weighted mean of their logits, compared with the student by KL at temperature T (no T^2 factor). BN in eval mode
  by default; ``bn_train=True`` runs the teachers' BatchNorm on the batch's own statistics, as SRe2L's CIFAR
  relabel script does by accident and CV-DD does on purpose ("BSSL", on half-batches: ``bn_split=2``). The
  teachers are evaluation assets.
* :class:`MixedLabels`: the class of each image (or its stored probabilities), mixed as the images were
  (``lam * onehot(y) + (1 - lam) * onehot(y[perm])``), with soft CE: what a hard-label row means under MixUp.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.train.losses import Loss
from dd_bench.train.targets import Targets


@dataclass
class TeacherLogits:
    teachers: list[nn.Module]
    temperature: float
    weights: list[float] | None = None  # committee weights (sum to 1); None: equal
    bn_train: bool = False
    # With bn_train: the batch is split into this many consecutive parts, each through the teachers on its own, so
    # BN normalises with a part's statistics (CV-DD's relabel: batch 16 in 2 halves of 8). 1: the whole batch.
    bn_split: int = 1
    name: str = "teacher"
    _weights: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        w = self.weights or [1.0 / len(self.teachers)] * len(self.teachers)
        if len(w) != len(self.teachers) or abs(sum(w) - 1.0) > 1e-6:
            raise ValueError(f"need one weight per teacher summing to 1; got {w} for {len(self.teachers)} teachers")
        self._weights = torch.tensor(w, dtype=torch.float32)
        if self.bn_split < 1:
            raise ValueError(f"bn_split must be >= 1; got {self.bn_split}")
        if self.bn_train:
            # Train-mode BN normalises with the batch's statistics and would also update the running ones in
            # place: private copies with momentum 0 keep the cached teachers (and every later seed) unchanged.
            self.teachers = [copy.deepcopy(t) for t in self.teachers]
            for t in self.teachers:
                for m in t.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.momentum = 0.0

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Weighted mean of the teachers' logits on ``x``: (B, K)."""
        if self.bn_train and self.bn_split > 1 and len(x) > 1:
            return torch.cat([self._logits(part) for part in x.tensor_split(self.bn_split)])
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out = None
        for w, teacher in zip(self._weights.tolist(), self.teachers, strict=True):
            teacher.train(self.bn_train)
            z = teacher(x).float() * w
            out = z if out is None else out + z
        return out

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        return Targets(self.logits(x_aug), Loss("kl", temperature=self.temperature))

    @property
    def asset_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for m in self.teachers for t in m.state_dict().values())


@dataclass
class MixedLabels:
    labels: torch.Tensor  # (N,) int64 classes, or (N, K) probabilities
    num_classes: int
    name: str = "hard"

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        y = self.labels[idx]
        y = F.one_hot(y, self.num_classes).float() if y.dtype == torch.int64 else y.float()
        if aug_params is not None and "mix.lam" in aug_params:
            lam = aug_params["mix.lam"].to(y.device).view(-1, 1)
            y = lam * y + (1.0 - lam) * y[aug_params["mix.perm"].to(y.device)]
        return Targets(y, Loss("soft_ce"))
