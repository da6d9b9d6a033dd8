"""The BN-statistics matching loss of SRe2L / DeepInversion (decoupled-methods.md §1.2), shared by SRe2L and the
methods built on it (INFER, CV-DD, NRR-DD).

A forward hook on every ``BatchNorm2d`` records the statistics of the layer's **input** a_l (N, C_l, H, W):
``mu_l`` = mean over (N, H, W), ``var_l`` = the biased variance over (N, H, W), and
``R_l = ||running_var_l - var_l||_2 + ||running_mean_l - mu_l||_2`` (L2 norms, not squared). The loss is
``first_multiplier * R_1 + sum_{l >= 2} R_l`` (first_bn_multiplier = 10 in every official script). The teacher
runs in eval mode, so its running statistics are the frozen targets and the batch statistics are those of the
images being recovered.
"""

from __future__ import annotations

import torch
from torch import nn

from dd_bench.errors import UserError


class BNStatisticsLoss:
    """Use as a context manager around the teacher's forward: ``with BNStatisticsLoss(t) as bn: t(x); bn.loss()``."""

    def __init__(self, module: nn.Module, *, first_multiplier: float = 10.0) -> None:
        self.layers = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
        if not self.layers:
            raise UserError(f"the BN-statistics loss needs a teacher with BatchNorm2d layers; "
                            f"{type(module).__name__} has none")
        self.first_multiplier = float(first_multiplier)
        self._gaps: list[torch.Tensor | None] = [None] * len(self.layers)
        self._handles: list = []

    def __enter__(self) -> BNStatisticsLoss:
        for i, layer in enumerate(self.layers):
            self._handles.append(layer.register_forward_hook(self._hook(i)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, i: int):
        def hook(layer: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            a = inputs[0]  # (N, C, H, W)
            mean = a.mean(dim=(0, 2, 3))
            var = a.var(dim=(0, 2, 3), unbiased=False)
            self._gaps[i] = (torch.linalg.vector_norm(layer.running_var - var)
                             + torch.linalg.vector_norm(layer.running_mean - mean))
        return hook

    def per_layer(self) -> list[torch.Tensor]:
        """R_l of the last forward, one scalar per BN layer in module order."""
        if any(g is None for g in self._gaps):
            raise RuntimeError("BNStatisticsLoss.loss() before a forward pass through every BN layer")
        return list(self._gaps)  # type: ignore[arg-type]

    def loss(self) -> torch.Tensor:
        gaps = self.per_layer()
        return self.first_multiplier * gaps[0] + sum(gaps[1:], torch.zeros((), device=gaps[0].device))
