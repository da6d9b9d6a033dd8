"""The online teacher (or weighted committee) label source, and the set's teachers every source shares.

:class:`TeacherLogits`: every augmented (and mixed) batch goes through the teachers; the target is the weighted mean
of their logits, compared with the student by KL at temperature T (no T^2 factor). BN in eval mode by default;
``bn_train=True`` runs the teachers' BatchNorm on the batch's own statistics, as SRe2L's CIFAR relabel script does by
accident and CV-DD does on purpose ("BSSL", on half-batches: ``bn_split=2``). The teachers are evaluation assets.

The teachers a labels section names (with their weights and BN mode) are shared: they relabel stored labels
(:mod:`dd_bench.labels.relabel`), label the random-subset reference rows beside a set (online or as static logits)
and are bundled by an export. :func:`committee_labels` builds them online and :func:`committee_identity` names them
for the record hash; :func:`committee_assets` and :func:`committee_needs` say what an export and its datasheet need.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dd_bench.errors import UserError
from dd_bench.labels.base import ExportAsset, LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.synset.labels_section import LabelsSection
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


def teacher_labels(specs: list[dict[str, Any]], *, real: Any, protocol: Any, weights: list[float] | None,
                   bn_train: bool, cache_dir: Path | None, progress: bool, stored: dict[str, int],
                   bn_split: int = 1) -> ResolvedLabels:
    """An online teacher committee from teacher specs; its identity names the teachers as loaded (their keys)."""
    from dd_bench.teachers.spec import teacher_from_spec

    teachers = [teacher_from_spec(spec, real, cache_dir=cache_dir, progress=progress) for spec in specs]
    source = TeacherLogits([t.module for t in teachers], temperature=protocol.temperature, weights=weights,
                           bn_train=bn_train, bn_split=bn_split)
    identity = _identity([t.key for t in teachers], bn_train, weights, bn_split)
    assets = {f"teacher:{spec.get('recipe') or t.model}": t.parameter_bytes
              for spec, t in zip(specs, teachers, strict=True)}
    return ResolvedLabels(source, "teacher", identity, stored, assets, teachers=list(specs))


def committee_labels(section: LabelsSection | Mapping[str, Any], *, real: Any, protocol: Any,
                     cache_dir: Path | None, progress: bool, stored: dict[str, int]) -> ResolvedLabels:
    """:func:`teacher_labels` with everything a labels section says (teachers, weights, BN mode and split)."""
    section = LabelsSection.coerce(section)
    return teacher_labels(section.teachers or [], real=real, protocol=protocol, weights=section.weights,
                          bn_train=bool(section.bn_train), cache_dir=cache_dir, progress=progress, stored=stored,
                          bn_split=int(section.bn_split or 1))


def committee_identity(section: LabelsSection | Mapping[str, Any]) -> str:
    """The identity of a labels section's teachers (keys, BN mode, committee weights): what the record hash covers."""
    section = LabelsSection.coerce(section)
    return _identity([t.get("key") for t in section.teachers or []], bool(section.bn_train), section.weights,
                     int(section.bn_split or 1))


def _identity(keys: list[str], bn_train: bool, weights: list[float] | None, bn_split: int = 1) -> str:
    identity = "teacher:" + ",".join(keys) + (":bn_train" if bn_train else "")
    if bn_train and bn_split > 1:
        identity += f":split{bn_split}"
    if weights:
        identity += ":w" + ",".join(f"{w:.6g}" for w in weights)
    return identity


def committee_assets(section: LabelsSection, *, cache_dir: Path | None) -> list[ExportAsset]:
    """The cached weights of the section's teachers (those with a key), for an export's ``assets/teachers/``."""
    from dd_bench.io import KeyedStore

    return [ExportAsset(what=f"teacher {spec.get('recipe')} ({spec['key'][:12]})",
                        source=KeyedStore("teachers", cache_dir).path(spec["key"]),
                        target=f"assets/teachers/{spec['key']}", files=("weights.safetensors", "meta.json"))
            for spec in section.teachers or [] if spec.get("key")]


def committee_needs(section: LabelsSection) -> list[str]:
    """The section's teachers by recipe (or architecture), as a datasheet lists them."""
    return [t.get("recipe") or t.get("model") for t in section.teachers or []]


@register_label_source
class Teacher(LabelSourceKind):
    name = "teacher"
    reference_kind = "teacher"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return committee_identity(section)

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        if not ctx.section.teachers:
            raise UserError(f"label source 'teacher' needs the set's teachers; the {ctx.synset.method} set names "
                            f"none (its own source is '{ctx.synset.label_source}')")
        # The identity of the teachers as loaded: the same keys as the section's, unless a weights file changed.
        return committee_labels(ctx.section, real=ctx.real, protocol=ctx.protocol, cache_dir=ctx.cache_dir,
                                progress=ctx.progress, stored=ctx.class_id_bytes())
