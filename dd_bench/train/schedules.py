"""Learning-rate schedules over passes (epochs): the lr of each pass, and where a fresh optimiser starts.

* :class:`StepDecay` (`mtt`): the official ``evaluate_synset``: after the pass with index ``decay_epoch`` the lr is
  multiplied by ``factor`` and a **fresh** optimiser is created (momentum reset), also when ``factor`` is 1.
* :class:`Cosine` (`kd`): ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs)`` stepped once per epoch:
  ``lr(e) = lr0 * 0.5 * (1 + cos(pi * e / T_max))``.
* :class:`WarmupCosine` (the torchvision classification reference, SRe2L's Tiny-ImageNet teacher and student):
  ``LinearLR(start_factor, total_iters=warmup)`` then ``CosineAnnealingLR(T_max=epochs - warmup)`` through
  ``SequentialLR``: ``lr(e) = lr0 * (s + (1 - s) * e / W)`` for ``e < W``, then ``lr0 * 0.5 * (1 + cos(pi * (e - W) /
  (E - W)))``.
* :class:`StepLR` (the torchvision classification reference's default ``--lr-scheduler steplr``):
  ``lr(e) = lr0 * gamma ** (e // step_size)``, stepped per epoch, the optimiser kept.
* :class:`HalfCosine` (RDED, EDC, CV-DD, decoupled-methods.md §1.5): ``lr(e) = lr0 * 0.5 * (1 + cos(pi * e /
  (E * eta)))``; eta = 2 ends at half of lr0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepDecay:
    decay_epoch: int  # the pass after which the lr decays
    factor: float = 0.1

    def lr(self, epoch: int, base_lr: float) -> float:
        return base_lr * (self.factor if epoch > self.decay_epoch else 1.0)

    def fresh_optimizer(self, epoch: int) -> bool:
        """Does pass ``epoch`` start with a fresh optimiser (other than the first)?"""
        return epoch == self.decay_epoch + 1


@dataclass(frozen=True)
class Cosine:
    t_max: float  # epochs

    def lr(self, epoch: int, base_lr: float) -> float:
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.t_max))

    def fresh_optimizer(self, epoch: int) -> bool:
        return False


@dataclass(frozen=True)
class HalfCosine:
    epochs: int
    eta: float = 2.0

    def lr(self, epoch: int, base_lr: float) -> float:
        return Cosine(t_max=self.epochs * self.eta).lr(epoch, base_lr)  # a cosine whose period outlasts training

    def fresh_optimizer(self, epoch: int) -> bool:
        return False


@dataclass(frozen=True)
class WarmupCosine:
    epochs: int
    warmup: int = 5
    start_factor: float = 0.01

    def lr(self, epoch: int, base_lr: float) -> float:
        if epoch < self.warmup:
            return base_lr * (self.start_factor + (1.0 - self.start_factor) * epoch / self.warmup)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - self.warmup) / max(1, self.epochs - self.warmup)))

    def fresh_optimizer(self, epoch: int) -> bool:
        return False


@dataclass(frozen=True)
class StepLR:
    step_size: int = 30  # epochs
    gamma: float = 0.1

    def lr(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)

    def fresh_optimizer(self, epoch: int) -> bool:
        return False


Schedule = StepDecay | Cosine | HalfCosine | WarmupCosine | StepLR
