"""HeLlO's online projector labels (decoupled-methods.md §6(a) step 5): every augmented, mixed batch goes through
the set's projector (frozen backbone + stored adapters + stored head); the student matches it by KL at the
protocol's T, as with an online teacher. The adapters and head are the set's label bytes; the backbone is an
evaluation asset, reported apart with its identity (file SHA-256), as the paper's reviewers asked.

The ``projector`` label source (:class:`Projector`): its section (``projector``: backbone config and identity, rank,
adapted layers) and its tensors (the set's extras ``projector.*``) are HeLlO's; an export bundles the backbone's
weights file when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.labels.base import ExportAsset, LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.losses import Loss
from dd_bench.train.targets import Targets


@dataclass
class ProjectorLogits:
    projector: torch.nn.Module
    temperature: float
    asset_bytes: int  # the backbone's
    name: str = "projector"

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(x).float()

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        return Targets(self.logits(x_aug), Loss("kl", temperature=self.temperature))


def projector_identity(section: LabelsSection | dict[str, Any]) -> str:
    """What the record hash covers beyond the set: the backbone (its key or file SHA-256, or a random seed)."""
    info = LabelsSection.coerce(section).own.get("projector") or {}
    bb = info.get("backbone_identity") or {}
    tag = bb.get("key") or bb.get("sha256") or f"random{bb.get('seed')}"
    return f"projector:{bb.get('kind')}:{str(tag)[:16]}:r{info.get('rank')}"


def backbone_asset_name(identity: dict[str, Any]) -> str:
    name = identity.get("model") or identity.get("recipe")
    return f"backbone:{identity.get('kind')}:{name}"


@register_label_source
class Projector(LabelSourceKind):
    name = "projector"
    reference_kind = "teacher"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return projector_identity(section)

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        from dd_bench.projector import build_projector, projector_bytes

        s = ctx.synset
        section = ctx.section.own.get("projector")
        if not section:
            raise UserError(f"label source 'projector' needs a fitted projector; the {s.method} set has none "
                            "(method=hello makes one)")
        projector, backbone = build_projector(section, real=ctx.real, extras=s.extras, cache_dir=ctx.cache_dir,
                                              progress=ctx.progress)
        asset = int(backbone.identity["bytes"])
        source = ProjectorLogits(projector, temperature=ctx.protocol.temperature, asset_bytes=asset)
        stored = {**ctx.class_id_bytes(), **projector_bytes(s.extras)}
        return ResolvedLabels(source, self.name, projector_identity(ctx.section), stored,
                              {backbone_asset_name(backbone.identity): asset},
                              teachers=[{"backbone": backbone.identity}])

    def export_assets(self, section: LabelsSection, *, cache_dir: Path | None) -> list[ExportAsset]:
        backbone = (section.own.get("projector") or {}).get("backbone_identity") or {}
        if not backbone:
            return []
        file = backbone.get("file")  # a backbone made from a recipe or a seed has no file of its own to bundle
        return [ExportAsset(what=f"projector backbone {file}", source=Path(file) if file else None,
                            target=f"assets/backbone/{Path(file).name}" if file else "")]

    def needs_at_evaluation(self, section: LabelsSection) -> list[str]:
        return ["projector backbone"] if section.own.get("projector") else []
