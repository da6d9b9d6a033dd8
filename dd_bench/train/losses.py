"""Training losses, by name: what a label source's targets are compared with.

* ``ce``: mean cross-entropy against class indices ``(B,)`` int64.
* ``soft_ce``: mean cross-entropy against probabilities ``(B, K)`` (the `mtt` family's soft labels).
* ``kl``: knowledge distillation against teacher *logits* ``(B, K)`` at temperature T:
  ``KL(softmax(t/T) || softmax(s/T))`` summed over classes and averaged over the batch ("batchmean"), with **no**
  T^2 factor, as SRe2L, RDED, INFER and CV-DD train their students (decoupled-methods.md §1.4).
* ``dbr``: NRR-DD's distance-based representative labels (a reconstruction, §4): targets ``(B, 2K + 2)`` =
  [one-hot of each image's own class | the mixed one-hot | the teacher's two distances d_org, d_aug]; the loss is
  ``soft CE(s, mixed) + alpha * mean(|d_S_org - d_T_org| + |d_S_aug - d_T_aug|)`` (``norm="squared"``: squares),
  with d = the cross-entropy of the logits against the one-hot / the mixed one-hot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dd_bench.errors import UserError

LOSS_KINDS = ("ce", "soft_ce", "kl", "dbr")
DISTANCE_NORMS = ("l1", "squared")


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits (B, K), targets (B,) int64 -> mean CE."""
    return F.cross_entropy(logits, targets)


def soft_cross_entropy(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """logits (B, K), probs (B, K) rows summing to 1 -> mean of -sum_k p_k log softmax(logits)_k."""
    return -(probs * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def kd_kl(logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)), batchmean, no T^2 factor."""
    log_p_student = F.log_softmax(logits / temperature, dim=-1)
    p_teacher = F.softmax(teacher_logits.to(log_p_student.dtype) / temperature, dim=-1)  # fp16 stored labels too
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean")


def label_distances(logits: torch.Tensor, own: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """NRR-DD's two distances per instance: CE of ``logits`` (B, K) against the one-hot of the image's own class
    and against the mixed one-hot, both (B, K) -> (B, 2)."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    return torch.stack([-(own * log_p).sum(-1), -(mixed * log_p).sum(-1)], dim=-1)


def dbr_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, norm: str) -> torch.Tensor:
    k = (targets.shape[1] - 2) // 2
    own, mixed, teacher = targets[:, :k], targets[:, k:2 * k], targets[:, 2 * k:].to(logits.dtype)
    gap = label_distances(logits, own, mixed) - teacher
    gap = gap.abs() if norm == "l1" else gap.square()
    return soft_cross_entropy(logits, mixed) + alpha * gap.sum(-1).mean()


@dataclass(frozen=True)
class Loss:
    """A named loss; ``temperature`` is used by ``kl`` only; ``scale`` multiplies it (T^2 for the recipes that
    use Hinton's factor, e.g. SRe2L's Tiny-ImageNet student)."""

    kind: str = "ce"
    temperature: float = 1.0
    scale: float = 1.0
    alpha: float = 1.0  # dbr: the weight of the distance term
    norm: str = "l1"  # dbr: l1 | squared

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise UserError(f"Unknown loss '{self.kind}'; available: {', '.join(LOSS_KINDS)}")
        if not self.temperature > 0:
            raise UserError(f"loss temperature must be > 0; got {self.temperature}")
        if self.norm not in DISTANCE_NORMS:
            raise UserError(f"Unknown distance norm '{self.norm}'; available: {', '.join(DISTANCE_NORMS)}")

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.kind == "ce":
            return cross_entropy(logits, targets)
        if self.kind == "soft_ce":
            return soft_cross_entropy(logits, targets)
        if self.kind == "dbr":
            return self.scale * dbr_loss(logits, targets, self.alpha, self.norm)
        return self.scale * kd_kl(logits, targets, self.temperature)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CE for class indices, soft CE for probabilities: the loss of hard and stored-probability targets."""
    return cross_entropy(logits, targets) if targets.dtype == torch.int64 else soft_cross_entropy(logits, targets)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
