"""Herding (Welling 2009; DeepCore's ``Herding``): per class, greedily pick the sample that keeps the running
mean of the selected features closest to the class mean, in a trained network's feature space."""

from __future__ import annotations

import torch

from dd_bench.methods.base import METHODS
from dd_bench.methods.coreset.feature_space import FeatureSpaceCoreset


def herding_order(features: torch.Tensor, budget: int) -> torch.Tensor:
    """Indices (budget,) into ``features`` (n, D), in selection order. Deterministic (no randomness)."""
    mu = features.mean(dim=0)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    chosen: list[int] = []
    running = torch.zeros_like(mu)
    for k in range(1, budget + 1):
        # distance of each candidate's would-be mean to the class mean; taken ones are excluded
        dist = torch.linalg.vector_norm(k * mu - running - features, dim=1)
        dist[~available] = float("inf")
        i = int(dist.argmin())
        chosen.append(i)
        available[i] = False
        running += features[i]
    return torch.tensor(chosen, dtype=torch.long, device=features.device)


@METHODS.register("herding")
class Herding(FeatureSpaceCoreset):
    name = "herding"

    def order(self, features: torch.Tensor, budget: int, *, generator: torch.Generator) -> torch.Tensor:
        return herding_order(features, budget)
