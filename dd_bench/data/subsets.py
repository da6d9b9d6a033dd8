"""Class-balanced index sampling shared by the random baseline and the random-subset reference rows."""

from __future__ import annotations

import torch

from dd_bench.errors import UserError


def class_balanced_indices(labels: torch.Tensor, ipc: int, num_classes: int, *,
                           generator: torch.Generator) -> torch.Tensor:
    """``ipc`` distinct random indices per class, class-major: (num_classes * ipc,) int64 on labels' device.

    Draws one ``randperm`` per class from ``generator`` (CPU), in class order, so the result depends only on the
    seed, the labels and ``ipc``.
    """
    labels_cpu = labels.cpu()
    chosen = []
    for c in range(num_classes):
        idx = torch.nonzero(labels_cpu == c, as_tuple=False).flatten()
        if len(idx) < ipc:
            raise UserError(f"ipc={ipc} is larger than class {c}'s {len(idx)} training images")
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:ipc]])
    return torch.cat(chosen).to(labels.device)
