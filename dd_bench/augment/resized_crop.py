"""RandomResizedCrop + horizontal flip on the device, per sample or shared by the batch.

torchvision's ``RandomResizedCrop(size, scale, ratio)`` semantics for the box: up to 10 tries of an area fraction
``s ~ U(scale)`` and a log-uniform aspect ratio ``r`` in ``ratio``, ``w = round(sqrt(s*A*r))``,
``h = round(sqrt(s*A/r))``; the first try that fits is placed uniformly; if none fits, the centre crop with the
ratio clamped to ``ratio``.
The box is then resized back to the image size by bilinear sampling (``grid_sample``, ``align_corners=False``, no
antialiasing: torchvision antialiases tensor down-scaling, here boxes are only ever up-scaled to the input size),
with the sampling points clamped to the box's outermost pixel centres: torchvision crops first and then resizes, so
a sample near the box's edge repeats the edge pixel instead of blending in the pixel outside the box (version 2;
version 1 blended it, up to 0.24 of the pixel range on the outer ring of a 16 -> 32 crop).

``same_on_batch=True`` draws ONE box and ONE flip for the batch, as SRe2L's and CV-DD's recover scripts do by
applying torchvision transforms to a 4-D batch tensor (decoupled-methods.md §1.2, "implementation trap"); kornia's
default (and ``same_on_batch=False`` here) draws one per image. Params: ``top``, ``left``, ``height``, ``width``
(int64 pixels) and ``flip`` (bool), each (n,) or (1,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Bump when the pixels a given box produces change (teacher recipes that train with this crop hash it into their key).
VERSION = 2


class RandomResizedCropFlip:
    def __init__(self, *, image_size: tuple[int, int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop scale must satisfy 0 < min <= max <= 1; got {scale}")
        self.image_size, self.scale, self.ratio, self.flip = tuple(image_size), tuple(scale), tuple(ratio), flip

    def sample_params(self, n: int, *, generator: torch.Generator, same_on_batch: bool = False
                      ) -> dict[str, torch.Tensor]:
        m = 1 if same_on_batch else n
        device = generator.device
        h_img, w_img = self.image_size
        area = float(h_img * w_img)
        tries = 10
        s = torch.empty((m, tries), device=device).uniform_(*self.scale, generator=generator)
        log_r = torch.empty((m, tries), device=device).uniform_(math.log(self.ratio[0]), math.log(self.ratio[1]),
                                                                generator=generator)
        r = log_r.exp()
        w = torch.sqrt(s * area * r).round().long()
        h = torch.sqrt(s * area / r).round().long()
        fits = (w > 0) & (w <= w_img) & (h > 0) & (h <= h_img)
        first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((m,), -1, device=device))
        u = torch.rand((m, 2), device=device, generator=generator)
        flip = (torch.rand((m,), generator=generator, device=device) < 0.5) if self.flip else \
            torch.zeros((m,), dtype=torch.bool, device=device)
        # Fallback: the centre crop with the aspect ratio clamped into ``ratio`` (torchvision's rule).
        in_ratio = w_img / h_img
        if in_ratio < self.ratio[0]:
            fw, fh = w_img, round(w_img / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            fh, fw = h_img, round(h_img * self.ratio[1])
        else:
            fw, fh = w_img, h_img
        pick = first.clamp_min(0).view(m, 1)
        hh = torch.where(first >= 0, h.gather(1, pick).squeeze(1), torch.full((m,), fh, device=device))
        ww = torch.where(first >= 0, w.gather(1, pick).squeeze(1), torch.full((m,), fw, device=device))
        top = torch.where(first >= 0, (u[:, 0] * (h_img - hh + 1)).floor().long(), (h_img - hh) // 2)
        left = torch.where(first >= 0, (u[:, 1] * (w_img - ww + 1)).floor().long(), (w_img - ww) // 2)
        return {"top": top, "left": left, "height": hh, "width": ww, "flip": flip}

    @staticmethod
    def cat_params(params: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
        return {k: torch.cat([p[k].expand(s) for p, s in zip(params, sizes, strict=True)]) for k in params[0]}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor],
              output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """x (B, C, H, W) -> each sample's box resized to ``output_size`` (default (H, W)), flipped where ``flip``."""
        b, _, h_img, w_img = x.shape
        top, left, hh, ww, flip = (params[k].to(x.device).expand(b) for k in ("top", "left", "height", "width",
                                                                                 "flip"))
        # affine_grid maps output coords in [-1, 1] to input coords: a box of width ww centred at cx spans
        # [cx - ww/W, cx + ww/W] in normalised units (align_corners=False: pixel edges at +-1).
        sx = ww.to(x.dtype) / w_img
        sy = hh.to(x.dtype) / h_img
        cx = (2 * left.to(x.dtype) + ww.to(x.dtype)) / w_img - 1
        cy = (2 * top.to(x.dtype) + hh.to(x.dtype)) / h_img - 1
        sx = torch.where(flip, -sx, sx)
        theta = torch.zeros((b, 2, 3), device=x.device, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, sy, cy
        out_h, out_w = output_size or (h_img, w_img)
        grid = F.affine_grid(theta, [b, x.shape[1], out_h, out_w], align_corners=False)  # (b, out_h, out_w, 2)
        # Pixel i's centre is at (2i + 1) / size - 1: keep every sample between the box's first and last centres.
        lo_x = (2 * left.to(x.dtype) + 1) / w_img - 1
        hi_x = (2 * (left + ww).to(x.dtype) - 1) / w_img - 1
        lo_y = (2 * top.to(x.dtype) + 1) / h_img - 1
        hi_y = (2 * (top + hh).to(x.dtype) - 1) / h_img - 1
        gx = torch.minimum(torch.maximum(grid[..., 0], lo_x.view(b, 1, 1)), hi_x.view(b, 1, 1))
        gy = torch.minimum(torch.maximum(grid[..., 1], lo_y.view(b, 1, 1)), hi_y.view(b, 1, 1))
        return F.grid_sample(x, torch.stack((gx, gy), dim=-1), mode="bilinear", padding_mode="border",
                             align_corners=False)
