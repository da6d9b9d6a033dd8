"""The DeepCore-style feature space of the coreset baselines (herding, k-center greedy).

DeepCore scores samples with the penultimate features of a network trained briefly on the full training set.
Here that network is trained by the shared trainer (SGD 0.9 / 5e-4, lr 0.01, no augmentation) for
``epochs`` passes, seeded, and every training image is embedded once.
"""

from __future__ import annotations

import torch

from dd_bench.data import RealData
from dd_bench.eval.protocol import EvalProtocol
from dd_bench.eval.trainer import train_networks
from dd_bench.models import embed


@torch.no_grad()
def embed_training_set(real: RealData, *, model: str, epochs: int, seed: int, progress: bool = True,
                       batch_size: int = 512) -> torch.Tensor:
    """Penultimate features of every training image: (N, D) float32, from a network trained ``epochs`` passes."""
    recipe = EvalProtocol(name="coreset-features", version=1, epochs=max(epochs - 1, 0), augment="none",
                          decay_factor=1.0, ranked=False)
    with torch.enable_grad():
        trained = train_networks(
            model=model, images=real.train_images, targets=real.train_labels, num_classes=real.num_classes,
            protocol=recipe, lr=recipe.lr, seeds=[seed], augment=None, transform=real.to_model_space,
            batched=False, max_steps=0 if epochs == 0 else None, progress=progress, desc=f"feature net {model}")
    net = trained.modules[0].eval()
    feats = [embed(net, real.to_model_space(real.train_images[i:i + batch_size]))
             for i in range(0, len(real.train_images), batch_size)]
    return torch.cat(feats).float()
