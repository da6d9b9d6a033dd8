"""Labels and initialisation for trajectory matching: hard labels, DATM's learned soft labels, and DATM's
"samples the experts classify correctly" image initialisation (DATM:distill/DATM.py, trajectory-matching.md §3a).

DATM initialises its learned labels two ways (DATM.py L270-320): with the correctly-classified image init, the mean
logits of the experts that classify each image correctly (:func:`expert_logit_labels`); with random real images
(``pix_init == "real"``), the logits of ONE expert, the first of the loaded buffer at its last epoch, with no
filter and no averaging (:func:`single_expert_logit_labels`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
def correctly_classified_init(real: RealData, *, ipc: int,
                              classifiers: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                              generator: torch.Generator, batch_size: int = 256) -> tuple[torch.Tensor, dict]:
    """DATM's ``samples_predicted_correctly`` (DATM.py L190-232): per class, walk a random permutation of the class's
    real images in batches of 256 and keep those the first expert's final checkpoint labels correctly, until ``ipc``
    are found; when the walk reaches the end of the class first, start it again with the NEXT expert, keeping what
    was found (DATM cycles ``cur`` through its buffer files the same way). Only when every expert has walked the
    class and fewer than ``ipc`` were found (DATM would loop forever) is the class filled with the remaining images
    in permutation order, and counted.

    Returns indices into the training set, class-major (K*ipc,), and ``{"experts_used": per class, "filled":
    per class}`` for the set's provenance.
    """
    chosen, experts_used, filled = [], [], []
    for c in range(real.num_classes):
        idx = real.indices_of_class(c).cpu()
        order = idx[torch.randperm(len(idx), generator=generator)]
        found: list[int] = []  # positions in ``order``, in the order the experts found them
        used = 0
        for classify in classifiers:
            if len(found) >= ipc:
                break
            used += 1
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                pred = classify(real.to_model_space(real.train_images[batch.to(real.device)])).argmax(-1).cpu()
                seen = set(found)
                found += [start + i for i in (pred == c).nonzero().flatten().tolist() if start + i not in seen]
                if len(found) >= ipc:
                    break
        # What the earlier experts found is kept first; DATM then holds the positions as a set, so in position order.
        positions = sorted(found[:ipc])
        short = ipc - len(positions)
        if short > 0:
            taken = set(positions)
            positions += [i for i in range(len(order)) if i not in taken][:short]
        picked = order[torch.tensor(positions, dtype=torch.long)]
        chosen.append(picked)
        experts_used.append(used)
        filled.append(max(0, short))
    return torch.cat(chosen).to(real.device), {"experts_used": experts_used, "filled": filled}


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


@torch.no_grad()
def single_expert_logit_labels(images: torch.Tensor, classify: Callable[[torch.Tensor], torch.Tensor],
                               batch_size: int = 256) -> torch.Tensor:
    """DATM's label init for random real images: one expert's logits (N, K) on the images, as they come."""
    return torch.cat([classify(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
