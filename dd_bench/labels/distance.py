"""NRR-DD's distance-based representative (DBR) labels, a reconstruction (decoupled-methods.md §4(a), §4(b)):
instead of a C-dimensional soft label, two distances per augmented instance per epoch.

Made like FKD labels (:func:`dd_bench.labels.fkd.relabel_fkd`, the same seed, order, crops and mixes, replayed
exactly), under the key ``dbr-<fkd key>``; each shard stores ``distances`` (N, 2) fp16 where FKD stores
``logits`` (N, K): ``d_org`` = CE(teacher(x_mix), one-hot of the image's own class), ``d_aug`` = CE(teacher(x_mix),
the mixed one-hot). The student's loss (``dbr``, :mod:`dd_bench.train.losses`) is soft CE on the mixed one-hot plus
``alpha * (|d_S_org - d_T_org| + |d_S_aug - d_T_aug|)``. The labels cost 2 x 2 bytes per instance per epoch (plus
the augmentation records FKD also stores): C / 2 times less than FKD's logits (5x on CIFAR-10, 500x on ImageNet).

The ``distance`` label source (:class:`Distance`) reads them; the loss settings are the set's (its section's
``distance``: the method's ``alpha_dbr`` and ``dbr_norm``), and both are in its identity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from dd_bench.labels.base import LabelContext, LabelSourceKind, Recorder, ResolvedLabels, register_label_source
from dd_bench.labels.fkd import FKDLabels, fkd_key, stored_entry
from dd_bench.synset import SynsetError
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.losses import Loss, label_distances
from dd_bench.train.targets import Targets

DEFAULT_SETTINGS = {"alpha": 1.0, "norm": "l1"}


def distance_key(protocol: Any) -> str:
    return f"dbr-{fkd_key(protocol)}"


def distance_settings(section: LabelsSection | dict[str, Any]) -> dict[str, Any]:
    """The DBR loss settings a labels section names (the method's ``alpha_dbr`` and ``dbr_norm``)."""
    return LabelsSection.coerce(section).own.get("distance") or dict(DEFAULT_SETTINGS)


def distance_identity(section: LabelsSection | dict[str, Any], protocol: Any) -> str:
    """What the record hash covers: the stored distances of this protocol and the loss they are used with."""
    settings = distance_settings(section)
    return f"distance:{distance_key(protocol)}:a{settings['alpha']:g}:{settings['norm']}"


def own_and_mixed(labels: torch.Tensor, num_classes: int, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor,
                                                                                                      torch.Tensor]:
    """One-hots of a batch's classes (B, K) and the same mixed as its images were (lam, batch-local perm)."""
    own = F.one_hot(labels, num_classes).float()
    if "mix.lam" not in params:
        return own, own
    lam = params["mix.lam"].to(own.device).view(-1, 1)
    return own, lam * own + (1.0 - lam) * own[params["mix.perm"].to(own.device)]


def distance_recorder(teacher: Any, labels: torch.Tensor, num_classes: int):
    """The ``record`` of :func:`relabel_fkd` for DBR labels: the teacher's two distances per augmented image."""
    def record(x_aug: torch.Tensor, idx: torch.Tensor, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        own, mixed = own_and_mixed(labels[idx], num_classes, params)
        return {"distances": label_distances(teacher.logits(x_aug), own, mixed).half()}
    return record


class DistanceLabels(FKDLabels):
    """Stored DBR distances of one protocol: the label source and the replay of its batches."""

    name = "distance"

    def __init__(self, *, labels: torch.Tensor, alpha: float, norm: str, synset_dir: str | Path,
                 entry: dict[str, Any], num_images: int, num_classes: int, device: torch.device | str) -> None:
        super().__init__(synset_dir=synset_dir, entry=entry, num_images=num_images, num_classes=num_classes,
                         temperature=1.0, device=device)
        self.labels, self.loss = labels.to(self.device), Loss("dbr", alpha=float(alpha), norm=norm)

    def check_shard(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        if "distances" not in tensors or tensors["distances"].shape[1:] != (2,):
            raise SynsetError(f"'{path}' holds no (N, 2) distances: it is not a DBR label shard")

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        if aug_params is None or "pos" not in aug_params:
            raise RuntimeError("DBR labels are only valid on their replayed batches (train_networks(replay=...))")
        own, mixed = own_and_mixed(self.labels[idx], self.num_classes, aug_params)
        teacher = self._load(epoch)["distances"][aug_params["pos"]].float()
        return Targets(torch.cat([own, mixed, teacher], dim=1), self.loss)


@register_label_source
class Distance(LabelSourceKind):
    name = "distance"
    reference_kind = "teacher"

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return distance_identity(section, protocol)

    def stored_key(self, protocol: Any) -> str | None:
        return distance_key(protocol)

    def recorder(self, *, teacher: Any, labels: torch.Tensor, num_classes: int) -> Recorder | None:
        return distance_recorder(teacher, labels, num_classes)

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        s = ctx.synset
        settings = distance_settings(ctx.section)
        key = self.stored_key(ctx.protocol)
        entry = stored_entry(ctx, self.name, key)
        source = DistanceLabels(labels=s.labels, alpha=settings["alpha"], norm=settings["norm"],
                                synset_dir=s.directory, entry=entry, num_images=len(s.images),
                                num_classes=s.num_classes, device=s.images.device)
        stored = {**ctx.class_id_bytes(), f"distance:{key}": int(entry["bytes"])}
        return ResolvedLabels(source, self.name, distance_identity(ctx.section, ctx.protocol), stored,
                              replay=source, teachers=list(entry.get("teachers") or []))
