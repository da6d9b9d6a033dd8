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

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZER_KINDS:
            raise UserError(f"Unknown optimizer '{self.kind}'; available: {', '.join(OPTIMIZER_KINDS)}")

    def make(self, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
        if self.kind == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.momentum, weight_decay=self.weight_decay)
        if self.kind == "adam":  # L2 weight decay added to the gradient (CV-DD's teachers)
            return torch.optim.Adam(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
