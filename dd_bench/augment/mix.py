"""MixUp, CutMix, and the `kd` family's training augmentation: a crop + flip, then a mix (SRe2L's CIFAR recipe:
RandomCrop + flip + MixUp; RDED's: RandomResizedCrop + flip + CutMix).

MixUp (Zhang et al.; SRe2L ``relabel_cifar.py``): one ``lam ~ Beta(alpha, alpha)`` and one permutation per batch,
``x_mix = lam * x + (1 - lam) * x[perm]``. Params are stored per sample (``lam`` repeated, ``perm`` as indices into
the batch) so that several seeds' batches concatenate (:meth:`KDAugment.cat_params` offsets each group's
permutation) and a label source can replay the mix on its targets.
"""

from __future__ import annotations

import numpy as np
import torch


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


class CutMix:
    """CutMix (Yun et al. 2019; RDED's and SRe2L-ImageNet's ``--mix-type cutmix``): ``lam ~ Beta(alpha, alpha)``, one
    box per batch of side ``sqrt(1 - lam)`` times the image's, centred uniformly and clipped to the image, pasted
    from ``x[perm]``; ``lam`` is then the kept area fraction ``1 - box area / image area`` (what the labels mix by).
    Params per sample like MixUp's (``lam``, ``perm``) plus the box rows/cols ``y0, y1, x0, x1`` (int64)."""

    def __init__(self, *, alpha: float, image_size: tuple[int, int]) -> None:
        if not alpha > 0:
            raise ValueError(f"CutMix alpha must be > 0; got {alpha}")
        self.alpha, self.image_size = float(alpha), tuple(image_size)

    def sample_params(self, n: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        device = generator.device
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
        lam = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        h, w = self.image_size
        cut_h, cut_w = int(h * np.sqrt(1.0 - lam)), int(w * np.sqrt(1.0 - lam))
        cy = int(torch.randint(0, h, (1,), generator=generator, device=device))
        cx = int(torch.randint(0, w, (1,), generator=generator, device=device))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        kept = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        perm = torch.randperm(n, generator=generator, device=device)
        box = {k: torch.full((n,), v, dtype=torch.int64, device=device) for k, v in
               (("y0", y0), ("y1", y1), ("x0", x0), ("x1", x1))}
        return {"lam": torch.full((n,), kept, device=device), "perm": perm, **box}

    @staticmethod
    def apply(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Paste each sample's box from its partner; boxes are per sample (one per batch, repeated), (B,) each."""
        b, _, h, w = x.shape
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        y0, y1, x0, x1 = (params[k].to(x.device).view(b, 1, 1) for k in ("y0", "y1", "x0", "x1"))
        inside = ((rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)).unsqueeze(1)  # (B, 1, H, W)
        return torch.where(inside, x[params["perm"].to(x.device)], x)


class KDAugment:
    """Per-sample crop + flip, then MixUp or CutMix: sample_params / apply / cat_params like every augmentation."""

    def __init__(self, *, crop, mix: MixUp | CutMix | None) -> None:
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
            out["mix.perm"] = torch.cat([p["mix.perm"] + o for p, o in zip(params, offsets, strict=True)])
        return out

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.crop.apply(x, {k[5:]: v for k, v in params.items() if k.startswith("crop.")})
        if self.mix is not None:
            x = self.mix.apply(x, {k[4:]: v for k, v in params.items() if k.startswith("mix.")})
        return x
