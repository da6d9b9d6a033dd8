"""Herding (Welling 2009; DeepCore's ``Herding``): per class, greedily pick the sample that keeps the running
mean of the selected features closest to the class mean, in a trained network's feature space."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.methods.base import METHODS, Synthesizer, source_indices
from dd_bench.methods.feature_space import embed_training_set
from dd_bench.synset import SyntheticSet


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
class Herding(Synthesizer):
    TEST_OPTIONS = {"feature_epochs": 1}
    name = "herding"

    @dataclasses.dataclass
    class Config:
        feature_model: str = "convnet"  # network whose penultimate features define the space
        feature_epochs: int = 5  # passes over the training set before embedding (0: random features)

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None) -> SyntheticSet:
        feats = embed_training_set(real, model=self.cfg.feature_model, epochs=self.cfg.feature_epochs, seed=seed,
                                   progress=progress)
        picked = []
        for c in range(real.num_classes):
            idx = real.indices_of_class(c)
            picked.append(idx[herding_order(feats[idx], ipc)])
        idx = torch.cat(picked)
        return self.new_synset(real, ipc=ipc, images=real.train_images[idx], labels=real.train_labels[idx],
                               image_encoding="uint8", extras={"source_indices": source_indices(real, idx)})
