"""Hard labels: the class of each image, CE; under a kd protocol mixed as the images are (MixUp), soft CE.

:class:`MixedLabels` is what a hard-label (or stored-probability) row means under MixUp:
``lam * onehot(y) + (1 - lam) * onehot(y[perm])``, with soft CE. It stores nothing but the class ids and is compared
with the hard-label random subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from dd_bench.labels.base import LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.losses import Loss
from dd_bench.train.targets import HardLabels, Targets


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


@register_label_source
class Hard(LabelSourceKind):
    name = "hard"
    kd_only = False
    reference_kind = "hard"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return "hard"  # as before the labels section: hard-label records keep their hashes

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        labels = ctx.synset.labels
        source = MixedLabels(labels, ctx.real.num_classes) if ctx.kd else HardLabels(labels)
        return ResolvedLabels(source, self.name, "hard", ctx.class_id_bytes())
