"""The DeepCore-style feature space of the coreset baselines (herding, k-center greedy).

DeepCore scores samples with the penultimate features of a network trained briefly on the full training set.
Here that network is trained by the shared trainer (SGD 0.9 / 5e-4, lr 0.01, no augmentation) for
``feature_epochs`` passes, seeded, and every training image is embedded once. A coreset method then only says
how it orders one class's samples: :meth:`FeatureSpaceCoreset.order`.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.methods.base import Synthesizer, source_indices
from dd_bench.models import embed
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.train import OptimizerSpec, StepDecay, train_networks
from dd_bench.train.targets import HardLabels


@torch.no_grad()
def embed_training_set(real: RealData, *, model: str, epochs: int, seed: int, progress: bool = True,
                       batch_size: int = 512) -> torch.Tensor:
    """Penultimate features of every training image: (N, D) float32, from a network trained ``epochs`` passes."""
    passes = max(epochs, 1)
    with torch.enable_grad():
        # SGD 0.9 / 5e-4 at lr 0.01, batch 256, no augmentation; the momentum restarts halfway (the evaluator's
        # step rule with factor 1), as this feature space has always been trained.
        trained = train_networks(
            model=model, images=real.train_images, labels=HardLabels(real.train_labels),
            num_classes=real.num_classes, passes=passes, batch_size=256, optimizer=OptimizerSpec("sgd"), lr=0.01,
            schedule=StepDecay(decay_epoch=(passes - 1) // 2 + 1, factor=1.0), seeds=[seed], augment=None,
            transform=real.to_model_space, batched=False, max_steps=0 if epochs == 0 else None, progress=progress,
            desc=f"feature net {model}")
    net = trained.modules[0].eval()
    feats = [embed(net, real.to_model_space(real.train_images[i:i + batch_size]))
             for i in range(0, len(real.train_images), batch_size)]
    return torch.cat(feats).float()


class FeatureSpaceCoreset(Synthesizer):
    """Select ``ipc`` real images per class by a rule on their features; stored as the original uint8 pixels."""

    TEST_OPTIONS = {"feature_epochs": 1}

    @dataclasses.dataclass
    class Config:
        feature_model: str = "convnet"  # network whose penultimate features define the space
        feature_epochs: int = 5  # passes over the training set before embedding (0: random features)

    @abstractmethod
    def order(self, features: torch.Tensor, budget: int, *, generator: torch.Generator) -> torch.Tensor:
        """Indices (budget,) into one class's ``features`` (n, D), in selection order."""

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        feats = embed_training_set(real, model=self.cfg.feature_model, epochs=self.cfg.feature_epochs, seed=seed,
                                   progress=progress)
        g = make_generator(seed, "method", self.name)
        picked = []
        for c in range(real.num_classes):
            idx = real.indices_of_class(c)
            picked.append(idx[self.order(feats[idx], ipc, generator=g)])
        idx = torch.cat(picked)
        return self.new_synset(real, ipc=ipc, images=real.train_images[idx], labels=real.train_labels[idx],
                               image_encoding="uint8", extras={"source_indices": source_indices(real, idx)})
