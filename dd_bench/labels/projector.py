"""HeLlO's online projector labels (decoupled-methods.md §6(a) step 5): every augmented, mixed batch goes through
the set's projector (frozen backbone + stored adapters + stored head); the student matches it by KL at the
protocol's T, as with an online teacher. The adapters and head are the set's label bytes; the backbone is an
evaluation asset, reported apart with its identity (file SHA-256), as the paper's reviewers asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

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


def projector_identity(section: dict[str, Any]) -> str:
    """What the record hash covers beyond the set: the backbone (its key or file SHA-256, or a random seed)."""
    info = section.get("projector") or {}
    bb = info.get("backbone_identity") or {}
    tag = bb.get("key") or bb.get("sha256") or f"random{bb.get('seed')}"
    return f"projector:{bb.get('kind')}:{str(tag)[:16]}:r{info.get('rank')}"


def backbone_asset_name(identity: dict[str, Any]) -> str:
    name = identity.get("model") or identity.get("recipe")
    return f"backbone:{identity.get('kind')}:{name}"
