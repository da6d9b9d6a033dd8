"""DC's own evaluation augmentation (VICO-UoE/DatasetCondensation ``utils.py`` ``augment`` L365-425 and
``get_daparam`` L428-445), split into ``sample_params`` and ``apply``.

``main.py`` trains DC sets with it only where ``get_daparam`` turns it on: ``crop_scale_rotate`` on MNIST and
``crop_noise`` for a ConvNetBN evaluation model (1000 epochs then; 300 without augmentation elsewhere). Per
sample, ONE family of the strategy is drawn uniformly (``np.random.permutation(augs)[0]``):

* ``crop``: the image on a canvas padded by ``crop`` (4) pixels filled with the batch's per-channel means, a window
  at offset ``(r, c)``, each ``U{0..2 crop - 1}`` (so shifts of -4..3 pixels);
* ``scale``: nearest-neighbour resize to ``(int(U(1 - s, 1 + s) H), int(U(1 - s, 1 + s) H))`` (both from the
  height, as the official code), centred on a zero canvas of side ``max(h, w, H, W)``, centre window cut back;
* ``rotate``: ``scipy.ndimage.rotate`` by an integer angle ``U{-45..44}`` degrees (``np.random.randint``),
  reshape on, cubic spline (scipy's default order 3), filled with the mean of the channel means, centre window;
* ``noise``: ``+ 0.001 * N(0, 1)`` per pixel.

The means are the batch's, taken before any sample is changed, as the official loop computes them. Rotation calls
scipy itself (the exact official operation; it runs on the CPU, per image, which costs little at DC's set sizes).
Draws come from an explicit generator, never numpy's or torch's global RNG.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Params = dict[str, torch.Tensor]
DC_FAMILIES = ("crop", "scale", "rotate", "noise")


class DCAugment:
    """``DCAugment("crop_scale_rotate", image_size=(28, 28))``; ``apply`` is not differentiable (evaluation only)."""

    def __init__(self, strategy: str, *, image_size: tuple[int, int], crop: int = 4, scale: float = 0.2,
                 rotate: int = 45, noise: float = 0.001) -> None:
        names = tuple(strategy.split("_"))
        bad = [n for n in names if n not in DC_FAMILIES]
        if bad or not names:
            raise ValueError(f"Unknown DC augmentation family {bad}; valid: {', '.join(DC_FAMILIES)} joined by '_'")
        self.families, self.image_size = names, tuple(image_size)
        self.crop, self.scale, self.rotate, self.noise = crop, scale, rotate, noise

    def __repr__(self) -> str:
        return f"DCAugment({'_'.join(self.families)!r}, image_size={self.image_size})"

    def sample_params(self, n: int, *, generator: torch.Generator, same_on_batch: bool = False) -> Params:
        """Per sample: its family, crop offsets, scaled sizes, rotation angle and noise seed (all int64)."""
        m = 1 if same_on_batch else n
        h = self.image_size[0]
        dev = generator.device
        params = {
            "family": torch.randint(len(self.families), (m,), generator=generator, device=dev),
            "crop_offset": torch.randint(2 * self.crop, (m, 2), generator=generator, device=dev),
            # int(U(1 - s, 1 + s) * H), as int() truncates toward zero
            "scaled": (((torch.rand(m, 2, generator=generator, device=dev) * 2 - 1) * self.scale + 1) * h).long(),
            "angle": torch.randint(-self.rotate, self.rotate, (m,), generator=generator, device=dev),
            "noise_seed": torch.randint(2 ** 31 - 1, (m,), generator=generator, device=dev),
        }
        return {k: v.expand(n, *v.shape[1:]) for k, v in params.items()} if same_on_batch else params

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """(N, C, H, W) -> the same, each sample through its drawn family."""
        from scipy.ndimage import rotate as scipy_rotate

        n, channels, height, width = x.shape
        means = x.mean(dim=(0, 2, 3))  # per-channel means of the batch before any change: (C,)
        out = x.clone()
        for i in range(n):
            family = self.families[int(params["family"][i])]
            if family == "crop":
                canvas = means.view(channels, 1, 1).expand(channels, height + 2 * self.crop,
                                                            width + 2 * self.crop).clone()
                canvas[:, self.crop:self.crop + height, self.crop:self.crop + width] = x[i]
                r, c = (int(v) for v in params["crop_offset"][i])
                out[i] = canvas[:, r:r + height, c:c + width]
            elif family == "scale":
                h, w = (int(v) for v in params["scaled"][i])
                resized = F.interpolate(x[i:i + 1], [h, w])[0]  # the official call: mode 'nearest'
                side = max(h, w, height, width)
                canvas = x.new_zeros(channels, side, side)
                top, left = int((side - h) / 2), int((side - w) / 2)
                canvas[:, top:top + h, left:left + w] = resized
                top, left = int((side - height) / 2), int((side - width) / 2)
                out[i] = canvas[:, top:top + height, left:left + width]
            elif family == "rotate":
                turned = scipy_rotate(x[i].detach().cpu().numpy(), angle=int(params["angle"][i]), axes=(-2, -1),
                                      cval=float(means.mean()))
                top, left = int((turned.shape[-2] - height) / 2), int((turned.shape[-1] - width) / 2)
                out[i] = torch.from_numpy(np.ascontiguousarray(turned[:, top:top + height, left:left + width])).to(x)
            else:  # noise
                g = torch.Generator().manual_seed(int(params["noise_seed"][i]))
                out[i] = x[i] + self.noise * torch.randn(x.shape[1:], generator=g).to(x)
        return out

    @staticmethod
    def cat_params(params: list[Params], sizes: list[int] | None = None) -> Params:
        """Concatenate parameter dicts along the sample dimension (the batched path's several seeds)."""
        return {k: torch.cat([p[k] for p in params]) for k in params[0]}
