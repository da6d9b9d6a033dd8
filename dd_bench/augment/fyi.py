"""FYI (Flip Your Images; Son et al., ECCV 2024): the flip concatenation and the family split of FYI's DSA.

FYI embeds horizontal flips in two places (trajectory-matching.md section 4a; cvlab-yonsei/FYI ``MTT/utils.py``
and ``DC_DSA_DM/utils.py``):

* ``BatchAug``: a batch is concatenated with its mirror image, labels duplicated -> :func:`flip_concat`.
* A modified ``DiffAugment`` in mode 'S': ``flip`` leaves the single-family draw and is applied to every batch
  first, then one of the remaining families is drawn -> ``DSA(..., fyi=True)``; :func:`fyi_families` is the
  family split it uses.

>>> x, y = torch.arange(4.0).view(1, 1, 2, 2), torch.tensor([3])
>>> xx, yy = flip_concat(x, y)
>>> xx[:, 0]
tensor([[[0., 1.],
         [2., 3.]],
<BLANKLINE>
        [[1., 0.],
         [3., 2.]]])
>>> yy
tensor([3, 3])
"""

from __future__ import annotations

import torch

__all__ = ["flip_concat", "fyi_families"]


def flip_concat(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """FYI's ``BatchAug``: every image followed (as a block) by its horizontal mirror, labels duplicated.

    Args:
        x: ``(B, C, H, W)`` float images.
        y: ``(B,)`` class indices or ``(B, K)`` soft labels / logits.

    Returns:
        ``(2B, C, H, W)`` = ``cat[x, x.flip(W)]`` and ``(2B,)`` / ``(2B, K)`` = ``cat[y, y]``: sample ``i`` and
        sample ``B + i`` are the same image and its mirror with the same label.

    Differentiable w.r.t. ``x``: each pixel ``x[b, c, i, j]`` reaches the output twice, at ``[b, c, i, j]`` and
    at ``[B + b, c, i, W - 1 - j]``, so its gradient is the sum of the gradients at both positions.
    """
    if x.dim() != 4:
        raise ValueError(f"flip_concat expects images (B, C, H, W); got shape {tuple(x.shape)}")
    if y.dim() not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"flip_concat expects labels (B,) or (B, K) with B = {x.shape[0]}; got {tuple(y.shape)}")
    return torch.cat([x, x.flip(3)]), torch.cat([y, y])


def fyi_families(families: tuple[str, ...], strategy: str) -> tuple[str, ...]:
    """The families FYI's DSA draws from: ``families`` without ``flip``, which it applies on every call instead.

    FYI's ``DiffAugment`` silently degrades to plain DSA when the strategy has no ``flip``; here that is an
    error, because asking for FYI on such a dataset (digits/MNIST/SVHN, where mirrored digits are wrong) means
    the comparison is not the one FYI made. ``flip`` alone leaves nothing to draw (FYI's ``torch.randint(0, 0)``
    fails there too).
    """
    if "flip" not in families:
        raise ValueError(
            f"FYI's DSA (fyi=True) flips every batch horizontally, but DSA strategy {strategy!r} excludes 'flip' "
            "(this dataset is one where horizontal flips are wrong, e.g. digits/MNIST/SVHN); FYI's evaluation "
            "does not apply to it: use the plain 'dsa' augmentation (protocol 'mtt') instead"
        )
    rest = tuple(f for f in families if f != "flip")
    if not rest:
        raise ValueError(f"FYI's DSA (fyi=True) needs a family besides 'flip' to draw from; got strategy {strategy!r}")
    return rest
