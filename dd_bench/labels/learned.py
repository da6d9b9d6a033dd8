"""Learned labels: the soft labels a method stored (DATM's learned logits; format-1 sets' soft labels load as this),
softmaxed once; soft CE (under a kd protocol mixed as the images are). Compared with the hard-label random subset.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from dd_bench.errors import UserError
from dd_bench.labels.base import LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.labels.hard import MixedLabels
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.targets import StoredProbabilities


@register_label_source
class Learned(LabelSourceKind):
    name = "learned"
    kd_only = False
    reference_kind = "hard"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return label_kind or "soft_logits"  # soft_logits / soft_probs, as before the labels section

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        s = ctx.synset
        if s.soft_labels is None:
            raise UserError(f"label source 'learned' needs stored soft labels; the {s.method} set has none "
                            "(try label_source=hard)")
        probs = F.softmax(s.soft_labels.float(), dim=-1) if s.label_kind == "soft_logits" else s.soft_labels.float()
        source = MixedLabels(probs, ctx.real.num_classes, name="learned") if ctx.kd else StoredProbabilities(probs)
        stored = {**ctx.class_id_bytes(), "soft_labels": s.soft_labels.numel() * s.soft_labels.element_size()}
        if s.learned_lr is not None:
            stored["learned_lr"] = 4  # one float32 scalar
        return ResolvedLabels(source, self.name, self.identity(ctx.section, protocol=ctx.protocol,
                                                              label_kind=s.label_kind), stored)
