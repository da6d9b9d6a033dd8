"""DM: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023; VICO-UoE/DatasetCondensation
``main_DM.py``).

Every iteration samples a freshly initialised network (no training), embeds a real batch and the synthetic
images of every class with its penultimate features, and moves the synthetic images so that the per-class
mean embeddings match: ``loss = sum_c || mean(embed(real_c)) - mean(embed(syn_c)) ||^2``; SGD on the images
(lr_img 1.0, momentum 0.5 in the official code).

Siamese DSA: each class draws ONE DSA parameter set (leading dimension 1, ``same_on_batch=True``) and
replays it on that class's real batch and its synthetic images. The official code re-seeds the global RNG so
that the synthetic images receive the same draws as the first ``ipc`` real images of the batch; sharing one
explicit parameter set is the design's replay semantics and needs no global RNG.

All classes are embedded in one forward pass (the network has no BatchNorm, so a sample's features do not
depend on its batch), which equals the official per-class loop and is K times fewer kernel launches.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import torch

from dd_bench.augment import DSA
from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.errors import UserError
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.methods.loop import (
    generator_states,
    momentum_state,
    restore_generators,
    restore_momentum,
    resume_key,
    run_iterations,
)
from dd_bench.models import create_model, embed
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet


class Init(enum.StrEnum):
    real = "real"  # a random real subset
    noise = "noise"  # standard normal in model space


@METHODS.register("dm")
class DistributionMatching(Synthesizer):
    TEST_OPTIONS = {"iterations": 3, "batch_real": 16}
    name = "dm"

    @dataclasses.dataclass
    class Config:
        model: str = "convnet"  # embedding network, freshly initialised every iteration
        iterations: int = 20000
        lr_img: float = 1.0  # SGD lr on the images (model-space units)
        momentum: float = 0.5
        batch_real: int = 256  # real images per class per iteration (all of a smaller class)
        init: Init = Init.real
        dsa: bool = True  # Siamese DSA with the dataset's strategy
        checkpoint_every: int = 500  # iterations between atomic checkpoints (when a checkpoint dir is given)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        if self.cfg.iterations < 0 or self.cfg.batch_real <= 0:
            raise UserError("dm: iterations must be >= 0 and batch_real > 0")

    def _config_hash(self, real: RealData, ipc: int, seed: int) -> str:
        return resume_key(self.config_dict(), fingerprint=real.fingerprint(), ipc=ipc, seed=seed)

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        cfg, device, k = self.cfg, real.device, real.num_classes
        g_init = make_generator(seed, "method", "dm", "init")
        g_net = make_generator(seed, "method", "dm", "net")
        g_real = make_generator(seed, "method", "dm", "real")
        g_aug = make_generator(seed, "method", "dm", "aug", device=device)
        labels = hard_labels(k, ipc, device)  # (K*ipc,)
        if cfg.init == "real":
            idx = class_balanced_indices(real.train_labels, ipc, k, generator=g_init)
            images = real.to_model_space(real.train_images[idx])
        else:
            images = torch.randn((k * ipc, real.channels, *real.image_size), generator=g_init).to(device)
        images = images.clone().requires_grad_(True)  # (K*ipc, C, H, W) model space
        opt = torch.optim.SGD([images], lr=cfg.lr_img, momentum=cfg.momentum)
        dsa = DSA(real.dsa_strategy, image_size=real.image_size) if cfg.dsa else None
        class_idx = [real.indices_of_class(c).cpu() for c in range(k)]
        n_real = [min(cfg.batch_real, len(i)) for i in class_idx]
        real_labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_real)]).to(device)
        model_kwargs = dict(num_classes=k, in_channels=real.channels, image_size=real.image_size)

        def step(it: int) -> float:
            net = create_model(cfg.model, generator=g_net, **model_kwargs).to(device)
            for p in net.parameters():
                p.requires_grad_(False)
            picks = torch.cat([i[torch.randperm(len(i), generator=g_real)[:n]]
                               for i, n in zip(class_idx, n_real, strict=True)])
            x_real = real.to_model_space(real.train_images[picks.to(device)])  # (sum n_real, C, H, W)
            x_syn = images
            if dsa is not None:
                per_class = [dsa.sample_params(1, generator=g_aug, same_on_batch=True) for _ in range(k)]
                x_real = dsa.apply(x_real, DSA.cat_params(per_class, n_real))
                x_syn = dsa.apply(x_syn, DSA.cat_params(per_class, [ipc] * k))
            with torch.no_grad():
                mean_real = _class_means(embed(net, x_real), real_labels, k)  # (K, D)
            mean_syn = _class_means(embed(net, x_syn), labels, k)
            loss = ((mean_real - mean_syn) ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()

        generators = {"net": g_net, "real": g_real, "aug": g_aug}

        def save_state() -> tuple[dict[str, torch.Tensor], dict]:
            return {**generator_states(generators), **momentum_state(opt, images)}, {}

        def restore_state(tensors: dict[str, torch.Tensor], state: dict) -> None:
            restore_momentum(opt, images, tensors)
            restore_generators(generators, tensors)

        status = run_iterations(
            iterations=cfg.iterations, leaves={"images": images}, step=step, save_state=save_state,
            restore_state=restore_state, checkpoint_dir=checkpoint_dir, checkpoint_every=cfg.checkpoint_every,
            config_hash=self._config_hash(real, ipc, seed), progress=progress, desc=f"dm ipc{ipc}",
            postfix=lambda it, loss: {"loss": f"{loss:.4g}"})
        return self.new_synset(real, ipc=ipc, images=images.detach(), labels=labels,
                               provenance={"distill_status": status})


def _class_means(features: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Mean feature per class: features (n, D), labels (n,) -> (K, D)."""
    sums = torch.zeros(k, features.shape[1], device=features.device, dtype=features.dtype)
    sums = sums.index_add(0, labels, features)
    counts = torch.bincount(labels, minlength=k).clamp_min(1).unsqueeze(1).to(features.dtype)
    return sums / counts
