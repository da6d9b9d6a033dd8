"""k-center greedy (Sener & Savarese 2018; DeepCore's ``kCenterGreedy``, class-balanced): per class, start
from a seeded random sample, then repeatedly add the sample farthest from everything already selected."""

from __future__ import annotations

import torch

from dd_bench.methods.base import METHODS
from dd_bench.methods.coreset.feature_space import FeatureSpaceCoreset


def kcenter_order(features: torch.Tensor, budget: int, *, generator: torch.Generator) -> torch.Tensor:
    """Indices (budget,) into ``features`` (n, D): a random start, then max-min distance picks."""
    first = int(torch.randint(len(features), (1,), generator=generator))
    chosen = [first]
    min_dist = torch.linalg.vector_norm(features - features[first], dim=1)
    for _ in range(budget - 1):
        min_dist[chosen] = -1.0  # never re-pick
        i = int(min_dist.argmax())
        chosen.append(i)
        min_dist = torch.minimum(min_dist, torch.linalg.vector_norm(features - features[i], dim=1))
    return torch.tensor(chosen, dtype=torch.long, device=features.device)


@METHODS.register("kcenter")
class KCenter(FeatureSpaceCoreset):
    name = "kcenter"

    def order(self, features: torch.Tensor, budget: int, *, generator: torch.Generator) -> torch.Tensor:
        return kcenter_order(features, budget, generator=generator)
