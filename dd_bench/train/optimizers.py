"""Optimisers by recipe: what a protocol, an expert or a teacher recipe names, built over any parameter list."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dd_bench.errors import UserError

OPTIMIZER_KINDS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class OptimizerSpec:
    kind: str = "sgd"
    momentum: float = 0.9  # sgd
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)  # adam, adamw
    # RDED's get_parameters (validation/utils.py:67-84): only "weight" tensors of more than one dimension decay;
    # biases and normalisation parameters (1-D per network) get weight decay 0. In these CNNs the two rules pick
    # the same tensors, so the dimension alone decides (names differ between the batched and sequential paths).
    no_decay_1d: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZER_KINDS:
            raise UserError(f"Unknown optimizer '{self.kind}'; available: {', '.join(OPTIMIZER_KINDS)}")

    def make(self, params: list[torch.Tensor], lr: float, *, stacked: bool = False) -> torch.optim.Optimizer:
        """The optimiser over ``params``; ``stacked``: each tensor holds one network per seed along dim 0."""
        if self.no_decay_1d:
            per_net = [(p, p.ndim - int(stacked)) for p in params]
            params = [{"params": [p for p, d in per_net if d > 1]},
                      {"params": [p for p, d in per_net if d <= 1], "weight_decay": 0.0}]
        if self.kind == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.kind == "adam":  # L2 weight decay added to the gradient (CV-DD's teachers)
            return torch.optim.Adam(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
