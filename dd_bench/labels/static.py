"""Static labels: one stored logit vector per instance, computed once (INFER's static labels, decoupled-methods.md
§3), distilled by KL at the protocol's temperature. Under MixUp the logits are interpolated as the images were
(``lam * z_i + (1 - lam) * z_perm(i)``: INFER's "logit interpolation"); without a mix they are used as they are.

The logits are the set's soft labels (``label_kind`` ``soft_logits``); its section names the teachers that made
them, so the random-subset reference row is labelled the same way: those teachers' logits, stored once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.labels.base import LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.synset.labels_section import LabelsSection
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


@register_label_source
class Static(LabelSourceKind):
    name = "static"
    reference_kind = "static"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return "static"

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        s = ctx.synset
        if s.soft_labels is None or s.label_kind != "soft_logits":
            raise UserError(f"label source 'static' needs stored logits; the {s.method} set has "
                            f"{s.label_kind} labels")
        stored = {**ctx.class_id_bytes(), "static_logits": s.soft_labels.numel() * s.soft_labels.element_size()}
        return ResolvedLabels(StaticLogits(s.soft_labels, ctx.protocol.temperature), self.name, "static", stored)
