"""Training losses, by name: what a label source's targets are compared with.

* ``ce``: mean cross-entropy against class indices ``(B,)`` int64.
* ``soft_ce``: mean cross-entropy against probabilities ``(B, K)`` (the `mtt` family's soft labels).
* ``kl``: knowledge distillation against teacher *logits* ``(B, K)`` at temperature T:
  ``KL(softmax(t/T) || softmax(s/T))`` summed over classes and averaged over the batch ("batchmean"), with **no**
  T^2 factor, as SRe2L, RDED, INFER and CV-DD train their students (decoupled-methods.md §1.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dd_bench.errors import UserError

LOSS_KINDS = ("ce", "soft_ce", "kl")


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


@dataclass(frozen=True)
class Loss:
    """A named loss; ``temperature`` is used by ``kl`` only; ``scale`` multiplies it (T^2 for the recipes that
    use Hinton's factor, e.g. SRe2L's Tiny-ImageNet student)."""

    kind: str = "ce"
    temperature: float = 1.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise UserError(f"Unknown loss '{self.kind}'; available: {', '.join(LOSS_KINDS)}")
        if not self.temperature > 0:
            raise UserError(f"loss temperature must be > 0; got {self.temperature}")

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.kind == "ce":
            return cross_entropy(logits, targets)
        if self.kind == "soft_ce":
            return soft_cross_entropy(logits, targets)
        return self.scale * kd_kl(logits, targets, self.temperature)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CE for class indices, soft CE for probabilities: the loss of hard and stored-probability targets."""
    return cross_entropy(logits, targets) if targets.dtype == torch.int64 else soft_cross_entropy(logits, targets)


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
