"""k-center greedy (Sener & Savarese 2018; DeepCore's ``kCenterGreedy``, class-balanced): per class, start
from a seeded random sample, then repeatedly add the sample farthest from everything already selected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.methods.base import METHODS, Synthesizer, source_indices
from dd_bench.methods.feature_space import embed_training_set
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet


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
class KCenter(Synthesizer):
    TEST_OPTIONS = {"feature_epochs": 1}
    name = "kcenter"

    @dataclasses.dataclass
    class Config:
        feature_model: str = "convnet"
        feature_epochs: int = 5

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None) -> SyntheticSet:
        feats = embed_training_set(real, model=self.cfg.feature_model, epochs=self.cfg.feature_epochs, seed=seed,
                                   progress=progress)
        g = make_generator(seed, "method", "kcenter")
        picked = []
        for c in range(real.num_classes):
            idx = real.indices_of_class(c)
            picked.append(idx[kcenter_order(feats[idx], ipc, generator=g)])
        idx = torch.cat(picked)
        return self.new_synset(real, ipc=ipc, images=real.train_images[idx], labels=real.train_labels[idx],
                               image_encoding="uint8", extras={"source_indices": source_indices(real, idx)})
