"""Pure, deterministic, differentiable image ops on batched float tensors ``(B, C, H, W)``.

No function here draws random numbers: every per-sample quantity (offset, factor, shift, centre, angle) is an
argument, so the same arguments always give the same output and gradients flow to ``x``. Per-sample arguments
have leading dimension ``B`` or ``1``; a leading ``1`` broadcasts over the batch (Siamese replay).

These reproduce the maths of DSA's ``rand_*`` functions (Zhao & Bilen 2021; ``ParamDiffAug`` in
VICO-UoE/DatasetCondensation and GeorgeCazenavette/mtt-distillation ``utils.py``) with the sampling removed.

>>> x = torch.arange(4.0).view(1, 1, 2, 2)
>>> hflip(x, torch.tensor([True]))[0, 0]
tensor([[1., 0.],
        [3., 2.]])
>>> batch_crop(x, torch.tensor([[1, 0]]))[0, 0]  # out[i, j] = x[i + 1, j]; the vacated last row is 0
tensor([[2., 3.],
        [0., 0.]])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "ALIGN_CORNERS",
    "adjust_brightness",
    "adjust_saturation",
    "adjust_contrast",
    "adjust_color",
    "batch_crop",
    "cutout",
    "hflip",
    "scale_matrix",
    "rotation_matrix",
    "affine",
]

# The one place the sampling-grid convention is fixed. DSA uses align_corners=True in both affine_grid and
# grid_sample: normalised coordinates -1/+1 are the centres of the corner pixels, so an identity theta samples
# exactly at pixel centres and reproduces the input (copies of DSA that drifted to False blur every image).
ALIGN_CORNERS = True


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-sample scalar ``(B,)`` or ``(1,)`` as ``(B|1, 1, 1, 1)`` in ``x``'s dtype/device, for broadcasting."""
    return v.to(device=x.device, dtype=x.dtype).reshape(-1, 1, 1, 1)


def adjust_brightness(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``x + offset``: one additive offset per sample, ``offset`` of shape ``(B,)`` or ``(1,)``."""
    return x + _per_sample(offset, x)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``(x - m) * factor + m`` with ``m`` the per-pixel mean over channels ``(B, 1, H, W)``.

    ``factor`` 0 gives the grey image, 1 the identity. With one channel ``x == m`` and this is the identity.
    """
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``(x - m) * factor + m`` with ``m`` the per-sample mean over ``(C, H, W)``, shape ``(B, 1, 1, 1)``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _per_sample(factor, x) + mean


def adjust_color(
    x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor
) -> torch.Tensor:
    """DSA's 'color' family: brightness, then saturation, then contrast, each on the previous result."""
    return adjust_contrast(adjust_saturation(adjust_brightness(x, brightness), saturation), contrast)


def _expand_batch(v: torch.Tensor, batch: int) -> torch.Tensor:
    """Broadcast a per-sample tensor with leading dimension 1 to ``batch``; leave a ``(batch, ...)`` one alone."""
    if v.shape[0] not in (1, batch):
        raise ValueError(f"per-sample argument has leading dimension {v.shape[0]}; expected 1 or {batch}")
    return v.expand(batch, *v.shape[1:])


def batch_crop(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Integer translation with zero fill: ``out[b, :, i, j] = x[b, :, i + dy_b, j + dx_b]``, 0 outside ``x``.

    Args:
        x: ``(B, C, H, W)``.
        shifts: int ``(B, 2)`` or ``(1, 2)``, columns ``(dy, dx)`` in pixels along ``(H, W)``. A positive ``dy``
            moves the content up (towards row 0) and zeroes the last ``dy`` rows.

    As DSA's ``rand_crop``: gather from a copy of ``x`` zero-padded by 1 px, with indices clamped into the
    padded image, so every out-of-range read lands on a zero border pixel. Rows and columns are independent, so
    the 2-D gather is done as two 1-D gathers (rows, then columns) on ``(B, C, H, W + 2)`` and ``(B, C, H, W)``.
    """
    b, c, h, w = x.shape
    shifts = _expand_batch(shifts.to(device=x.device, dtype=torch.long), b)
    rows = torch.arange(h, device=x.device).unsqueeze(0) + shifts[:, :1] + 1  # (B, H), index into padded rows
    cols = torch.arange(w, device=x.device).unsqueeze(0) + shifts[:, 1:] + 1  # (B, W), index into padded cols
    rows = rows.clamp(0, h + 1)
    cols = cols.clamp(0, w + 1)
    x_pad = F.pad(x, (1, 1, 1, 1))  # (B, C, H + 2, W + 2)
    x_rows = x_pad.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2))  # (B, C, H, W + 2)
    return x_rows.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))  # (B, C, H, W)


def cutout(x: torch.Tensor, centers: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero a ``size = (sh, sw)`` rectangle per sample; the part outside the image is dropped (partial cutout).

    Args:
        x: ``(B, C, H, W)``.
        centers: int ``(B, 2)`` or ``(1, 2)``, columns ``(cy, cx)`` in pixels; may lie on the far border
            (``cy == H``) as DSA draws them.
        size: ``(sh, sw)`` side lengths in pixels.

    Rows ``cy - sh // 2 .. cy - sh // 2 + sh - 1`` and the matching columns are zeroed, as DSA's
    ``rand_cutout`` (which clamps the indices into the image; for DSA's centre range that equals intersecting
    the rectangle with the image).
    """
    b, _, h, w = x.shape
    sh, sw = size
    centers = _expand_batch(centers.to(device=x.device, dtype=torch.long), b)
    top = centers[:, :1] - sh // 2  # (B, 1)
    left = centers[:, 1:] - sw // 2  # (B, 1)
    rows = torch.arange(h, device=x.device).unsqueeze(0)  # (1, H)
    cols = torch.arange(w, device=x.device).unsqueeze(0)  # (1, W)
    in_rows = (rows >= top) & (rows < top + sh)  # (B, H)
    in_cols = (cols >= left) & (cols < left + sw)  # (B, W)
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))  # (B, H, W)
    return x * keep.unsqueeze(1).to(x.dtype)


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the width axis of the samples where the bool ``mask`` ``(B,)`` or ``(1,)`` is True."""
    return torch.where(mask.to(x.device).reshape(-1, 1, 1, 1), x.flip(3), x)


def scale_matrix(scale: torch.Tensor) -> torch.Tensor:
    """Affine thetas ``(B, 2, 3)`` = ``[[sx, 0, 0], [0, sy, 0]]`` from ``scale`` ``(B, 2)`` = ``(sx, sy)``.

    ``theta`` maps output to input coordinates, so ``sx > 1`` samples a wider region: the content shrinks.
    ``sx`` acts on the width (x) axis and ``sy`` on the height (y) axis.
    """
    zero = torch.zeros_like(scale[:, 0])
    sx, sy = scale[:, 0], scale[:, 1]
    return torch.stack([sx, zero, zero, zero, sy, zero], dim=1).view(-1, 2, 3)


def rotation_matrix(angle: torch.Tensor) -> torch.Tensor:
    """Affine thetas ``(B, 2, 3)`` = ``[[cos, -sin, 0], [sin, cos, 0]]`` from ``angle`` ``(B,)`` in radians."""
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(angle)
    return torch.stack([cos, -sin, zero, sin, cos, zero], dim=1).view(-1, 2, 3)


def affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Warp ``x`` by per-sample thetas ``(B|1, 2, 3)``: bilinear sampling, zeros outside, ``ALIGN_CORNERS``."""
    theta = _expand_batch(theta.to(device=x.device, dtype=x.dtype), x.shape[0])
    grid = F.affine_grid(theta, list(x.shape), align_corners=ALIGN_CORNERS)  # (B, H, W, 2) in [-1, 1]
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=ALIGN_CORNERS)
