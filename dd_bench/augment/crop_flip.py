"""RandomCrop with zero-pixel padding plus a horizontal flip, per sample: the teachers' and the `kd` family's
training augmentation (torchvision ``RandomCrop(size, padding=pad)`` + ``RandomHorizontalFlip()``), and
:class:`NoCrop`, the identity that stands in for it where a recipe drops crop and flip (``crop="none"``).

Split like every augmentation here: ``sample_params(n, *, generator, same_on_batch)`` draws the offsets and flips,
``apply(x, params)`` replays them, so the same crops can be replayed on another batch (stored labels).
torchvision pads the *pixels* with 0 before normalising; images here are already in model space, so the padding
value is the model-space value of a black pixel (``fill``, one value per channel).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


class RandomCropFlip:
    def __init__(self, *, image_size: tuple[int, int], pad: int, flip: bool = True,
                 fill: Sequence[float] | None = None) -> None:
        self.image_size, self.pad, self.flip = tuple(image_size), int(pad), bool(flip)
        self.fill = None if fill is None else torch.tensor(list(fill), dtype=torch.float32)

    def sample_params(self, n: int, *, generator: torch.Generator, same_on_batch: bool = False
                      ) -> dict[str, torch.Tensor]:
        """Offsets ``dy``, ``dx`` in [0, 2*pad] and ``flip`` flags, (n,) each (or (1,) with ``same_on_batch``)."""
        m = 1 if same_on_batch else n
        device = generator.device
        dy = torch.randint(0, 2 * self.pad + 1, (m,), generator=generator, device=device)
        dx = torch.randint(0, 2 * self.pad + 1, (m,), generator=generator, device=device)
        flip = (torch.rand((m,), generator=generator, device=device) < 0.5) if self.flip else \
            torch.zeros((m,), dtype=torch.bool, device=device)
        return {"dy": dy, "dx": dx, "flip": flip}

    @staticmethod
    def cat_params(params: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
        """Concatenate per-group params (broadcasting (1,) groups to their size) for one batched apply."""
        return {k: torch.cat([p[k].expand(s) for p, s in zip(params, sizes, strict=True)]) for k in params[0]}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """x (B, C, H, W) float -> the cropped, flipped batch of the same shape."""
        b, c, h, w = x.shape
        p = self.pad
        if p > 0:
            padded = F.pad(x, (p, p, p, p))
            if self.fill is not None:
                border = torch.ones((1, 1, h, w), device=x.device, dtype=x.dtype)
                border = F.pad(border, (p, p, p, p)) == 0  # (1, 1, H+2p, W+2p): the padded frame
                padded = torch.where(border, self.fill.to(x.device, x.dtype).view(1, c, 1, 1), padded)
        else:
            padded = x
        dy, dx, flip = (params[k].to(x.device).expand(b) for k in ("dy", "dx", "flip"))
        rows = (dy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w)
        cols = (dx.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
        out = _crop(padded, rows, cols)
        return torch.where(flip.view(b, 1, 1, 1), out.flip(-1), out)


def _crop(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Gather a (B, C, H, W) window at per-sample offsets from padded (B, C, H+2p, W+2p)."""
    b, c, h, w = rows.shape
    picked_rows = padded.gather(2, rows[..., :1].expand(b, c, h, padded.shape[3]))  # (B, C, H, W+2p)
    return picked_rows.gather(3, cols)


def crop_flip_for(real, pad: int | None = None) -> RandomCropFlip:
    """The crops of a :class:`~dd_bench.data.RealData`'s model-space images: pad = image size / 8 (4 on 32x32,
    1 on 8x8) unless given, black-pixel padding, and a flip only where the dataset's DSA strategy has one."""
    pad = pad if pad is not None else max(1, real.image_size[0] // 8)
    black = real.to_model_space(torch.zeros(1, real.channels, 1, 1, dtype=torch.uint8, device=real.device))
    return RandomCropFlip(image_size=real.image_size, pad=pad, flip="flip" in real.dsa_strategy,
                          fill=black.flatten().tolist())


class NoCrop:
    """The identity in place of the crop + flip (a kd recipe with ``crop="none"``: DD-Ranking's ARS "without
    augmentation"): no parameters drawn, the batch unchanged."""

    def sample_params(self, n: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {}

    @staticmethod
    def apply(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return x
