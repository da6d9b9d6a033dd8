"""Static labels: one stored logit vector per instance, computed once (INFER's static labels, decoupled-methods.md
§3), distilled by KL at the protocol's temperature. Under MixUp the logits are interpolated as the images were
(``lam * z_i + (1 - lam) * z_perm(i)``: INFER's "logit interpolation"); without a mix they are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dd_bench.train.losses import Loss
from dd_bench.train.targets import Targets


@dataclass
class StaticLogits:
    logits: torch.Tensor  # (N, K) float
    temperature: float
    name: str = "static"

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        z = self.logits[idx].float()
        if aug_params is not None and "mix.lam" in aug_params:
            lam = aug_params["mix.lam"].to(z.device).view(-1, 1)
            z = lam * z + (1.0 - lam) * z[aug_params["mix.perm"].to(z.device)]
        return Targets(z, Loss("kl", temperature=self.temperature))
