"""MixUp, and the `kd` family's training augmentation: RandomCrop + flip, then MixUp, as SRe2L's CIFAR recipe.

MixUp (Zhang et al.; SRe2L ``relabel_cifar.py``): one ``lam ~ Beta(alpha, alpha)`` and one permutation per batch,
``x_mix = lam * x + (1 - lam) * x[perm]``. Params are stored per sample (``lam`` repeated, ``perm`` as indices into
the batch) so that several seeds' batches concatenate (:meth:`KDAugment.cat_params` offsets each group's
permutation) and a label source can replay the mix on its targets.
"""

from __future__ import annotations

import numpy as np
import torch

from dd_bench.augment.crop_flip import RandomCropFlip


class MixUp:
    def __init__(self, *, alpha: float) -> None:
        if not alpha > 0:
            raise ValueError(f"MixUp alpha must be > 0; got {alpha}")
        self.alpha = float(alpha)

    def sample_params(self, n: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``lam`` (n,) float (one value per batch, repeated) and ``perm`` (n,) int64 indices into the batch."""
        # torch draws Beta only from the global RNG; numpy's, seeded from this generator, keeps it explicit.
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
        lam = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        perm = torch.randperm(n, generator=generator, device=generator.device)
        return {"lam": torch.full((n,), lam, device=generator.device), "perm": perm}

    @staticmethod
    def apply(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        lam = params["lam"].to(x.device, x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return lam * x + (1.0 - lam) * x[params["perm"].to(x.device)]


class KDAugment:
    """Per-sample RandomCrop(pad) + flip, then MixUp: sample_params / apply / cat_params like every augmentation."""

    def __init__(self, *, crop: RandomCropFlip, mix: MixUp | None) -> None:
        self.crop, self.mix = crop, mix

    def sample_params(self, n: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = {f"crop.{k}": v for k, v in self.crop.sample_params(n, generator=generator).items()}
        if self.mix is not None:
            params.update({f"mix.{k}": v for k, v in self.mix.sample_params(n, generator=generator).items()})
        return params

    @staticmethod
    def cat_params(params: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
        out = {k: torch.cat([p[k] for p in params]) for k in params[0] if k != "mix.perm"}
        if "mix.perm" in params[0]:  # each group's permutation indexes its own slice of the concatenated batch
            offsets = torch.tensor([0, *sizes[:-1]]).cumsum(0).tolist()
            out["mix.perm"] = torch.cat([p["mix.perm"] + o for p, o in zip(params, offsets)])
        return out

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.crop.apply(x, {k[5:]: v for k, v in params.items() if k.startswith("crop.")})
        if self.mix is not None:
            x = MixUp.apply(x, {k[4:]: v for k, v in params.items() if k.startswith("mix.")})
        return x
