"""What trajectory matching samples each iteration: the expert (without replacement over shuffled experts, as the
official loaders do, or with replacement) and the start-epoch window (MTT: fixed; DATM: growing with sequential
generation)."""

from __future__ import annotations

import enum
from typing import Any

import torch


class ExpertSampling(enum.StrEnum):
    without_replacement = "without_replacement"  # MTT/FTD/FYI/DATM distill.py default: each expert once per pass
    with_replacement = "with_replacement"  # their --load_all: buffer[np.random.randint(len(buffer))]


class ExpertSampler:
    """The expert of every iteration, drawn from ``generator`` (CPU).

    ``without_replacement``: the official loaders shuffle the experts and take them in that order, reshuffling when
    all have been used (MTT ``distill.py`` L305-322: ``buffer_id`` shuffled, ``expert_idx`` advanced, a new shuffle
    with the next file), so over one pass over the buffer each expert is matched exactly once. The pass's order and
    position are part of the checkpointed state (``state()`` / ``load_state``), so a resumed run continues it.
    """

    def __init__(self, num_experts: int, mode: ExpertSampling, generator: torch.Generator) -> None:
        self.num_experts, self.mode, self.generator = num_experts, ExpertSampling(mode), generator
        self.order: list[int] = []
        self.position = 0
        self.counts = [0] * num_experts

    def next(self) -> int:
        if self.mode == ExpertSampling.with_replacement:
            e = int(torch.randint(self.num_experts, (1,), generator=self.generator))
        else:
            if self.position >= len(self.order):
                self.order = torch.randperm(self.num_experts, generator=self.generator).tolist()
                self.position = 0
            e = self.order[self.position]
            self.position += 1
        self.counts[e] += 1
        return e

    def state(self) -> dict[str, Any]:
        return {"order": list(self.order), "position": self.position, "counts": list(self.counts)}

    def load_state(self, saved: dict[str, Any]) -> None:
        self.order, self.position = list(saved["order"]), int(saved["position"])
        self.counts = list(saved["counts"])


def start_epoch_upper(it: int, *, max_start: int, current_max: int, expansion_end: int, sequential: bool) -> int:
    """DATM's difficulty window: the exclusive upper bound of the start epoch at iteration ``it``.

    Without sequential generation it is ``max_start``; with it, it grows linearly from ``current_max`` to
    ``max_start`` over ``expansion_end`` iterations (DATM.py L486-487).
    """
    if not sequential or expansion_end <= 0:
        return max_start
    return min(max_start, current_max + int((max_start - current_max) * it / expansion_end))
