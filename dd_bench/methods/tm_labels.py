"""Labels and initialisation for trajectory matching: hard labels, DATM's learned soft labels, and DATM's
"samples the experts classify correctly" image initialisation (DATM:distill/DATM.py, trajectory-matching.md §3a).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from dd_bench.data import RealData


class HardTargets:
    """Class indices of the synthetic images: ``targets(idx) -> labels[idx]`` (b,) int64."""

    leaf = None

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx]


class LearnedTargets:
    """DATM's learned soft labels: logits Y (N, K) are the leaf; training targets are ``softmax(Y[idx])``."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.leaf = logits  # (N, K), requires_grad

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.leaf[idx], dim=-1)


@torch.no_grad()
def correctly_classified_init(real: RealData, *, ipc: int, classify: Callable[[torch.Tensor], torch.Tensor],
                              generator: torch.Generator, batch_size: int = 256) -> torch.Tensor:
    """DATM's ``samples_predicted_correctly``: per class, walk a random permutation of the class's real images in
    batches of 256 and keep those ``classify`` (an expert's final checkpoint) labels correctly, until ``ipc`` are
    found. Returns indices into the training set, class-major (K*ipc,). A class with too few correctly classified
    images is filled with the remaining images in permutation order (DATM would cycle experts; see note)."""
    chosen = []
    for c in range(real.num_classes):
        idx = real.indices_of_class(c).cpu()
        order = idx[torch.randperm(len(idx), generator=generator)]
        good: list[torch.Tensor] = []
        found = 0
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            pred = classify(real.to_model_space(real.train_images[batch.to(real.device)])).argmax(-1).cpu()
            good.append(batch[pred == c])
            found += int((pred == c).sum())
            if found >= ipc:
                break
        picked = torch.cat(good)[:ipc]
        if len(picked) < ipc:  # the expert misclassifies most of this class: fall back to the permutation
            rest = order[~torch.isin(order, picked)]
            picked = torch.cat([picked, rest[: ipc - len(picked)]])
        chosen.append(picked)
    return torch.cat(chosen).to(real.device)


@torch.no_grad()
def expert_logit_labels(images: torch.Tensor, labels: torch.Tensor,
                        classifiers: list[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    """DATM's soft-label init: per image, the mean logits (N, K) over the experts whose arg-max is the true
    class (all experts when none is right)."""
    logits = torch.stack([f(images) for f in classifiers])  # (E, N, K)
    correct = (logits.argmax(-1) == labels.unsqueeze(0)).float()  # (E, N)
    none_right = correct.sum(0) == 0
    correct[:, none_right] = 1.0
    return (logits * correct.unsqueeze(-1)).sum(0) / correct.sum(0).unsqueeze(-1)
