"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021), split into ``sample_params`` and ``apply``.

Semantics follow ``ParamDiffAug`` / ``DiffAugment`` in mode 'S' (VICO-UoE/DatasetCondensation and
GeorgeCazenavette/mtt-distillation ``utils.py``): per call, ONE family of the strategy is drawn uniformly and
applied to the whole batch, with its parameters drawn per sample. What differs is only where randomness lives:
draws come from an explicit ``torch.Generator`` (never the global RNG), and the drawn params are plain tensors,
so Siamese augmentation is ``p = dsa.sample_params(1, generator=g, same_on_batch=True)`` followed by
``dsa.apply(x_real, p)`` and ``dsa.apply(x_syn, p)`` (DSA's ``seed >= 0`` / ``batchmode`` path).

``fyi=True`` is FYI's modified ``DiffAugment`` (Son et al., ECCV 2024; cvlab-yonsei/FYI ``MTT/utils.py``): ``flip``
leaves the draw, every call first flips each sample with probability ``prob_flip`` (one flip for the whole
batch with ``same_on_batch=True``, FYI's ``batchmode``), then ONE of the other families is drawn and applied.

Param dict (leading dimension ``n``, or ``1`` with ``same_on_batch=True``; only the keys of the strategy's
families are present, and ALL of them are drawn every call so params of different calls concatenate; with
``fyi=True`` ``flip`` is always present and ``family`` indexes the non-flip families):

==================  ===========  ==========================================================================
key                 shape/dtype  meaning (defaults at 32x32)
==================  ===========  ==========================================================================
``family``          (n,) int64   index into ``DSA.families``; one value per call, repeated over the n samples
``brightness``      (n,) float   additive offset ``(U(0,1) - 0.5) * brightness``, in [-0.5, 0.5)
``saturation``      (n,) float   factor ``U(0,1) * saturation``, in [0, 2)
``contrast``        (n,) float   factor ``U(0,1) + contrast``, in [0.5, 1.5)
``crop_shift``      (n,2) int64  ``(dy, dx)`` pixels, each ``U{-s..s}``, ``s = int(ratio_crop_pad * H|W + 0.5)``
``cutout_center``   (n,2) int64  ``(cy, cx)`` pixels, ``U{0..H - (k_h % 2)}``, ``k_h = int(ratio_cutout * H + 0.5)``
``flip``            (n,) bool    horizontal flip, ``Bernoulli(prob_flip)`` (fyi=True: applied before the family)
``scale``           (n,2) float  ``(sx, sy)``, each ``U(1/ratio_scale, ratio_scale)``, acting on (width, height)
``rotate``          (n,) float   angle in RADIANS, ``U(-ratio_rotate, ratio_rotate)`` degrees converted
==================  ===========  ==========================================================================

>>> g = torch.Generator().manual_seed(0)
>>> dsa = DSA("crop_flip", image_size=8)
>>> p = dsa.sample_params(1, generator=g, same_on_batch=True)
>>> sorted(p)
['crop_shift', 'family', 'flip']
>>> real, syn = torch.rand(256, 3, 8, 8), torch.rand(10, 3, 8, 8)
>>> dsa.apply(real, p).shape, dsa.apply(syn, p).shape
(torch.Size([256, 3, 8, 8]), torch.Size([10, 3, 8, 8]))
>>> torch.equal(dsa.apply(syn, p), dsa.apply(syn, p))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from dd_bench.augment import ops
from dd_bench.augment.fyi import fyi_families

__all__ = ["FAMILIES", "DSA", "NoAugmentation", "parse_strategy"]

Params = dict[str, torch.Tensor]

FAMILIES: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``"color_crop"`` -> ``("color", "crop")``; ``"none"`` -> ``()``. Unknown, empty or repeated names raise."""
    if strategy == "none":
        return ()
    names = strategy.split("_")
    bad = [name for name in names if name not in FAMILIES]
    if not strategy or bad:
        raise ValueError(
            f"Unknown DSA family {bad[0] if bad else ''!r} in strategy {strategy!r}; valid families: "
            f"{', '.join(FAMILIES)} joined by '_' (e.g. 'color_crop_cutout_flip_scale_rotate'), or 'none'"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"DSA strategy {strategy!r} repeats a family; each of {', '.join(FAMILIES)} at most once")
    return tuple(names)


def _pair(image_size: tuple[int, int] | int) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive; got {image_size!r}")
    return int(h), int(w)


class DSA:
    """DSA in mode 'S': one family per call, per-sample params, explicit generator, replayable params.

    Args:
        strategy: ``_``-joined families from ``FAMILIES``, or ``"none"`` (identity).
        image_size: ``(H, W)`` or ``H`` of the images; fixes the crop range and the cutout size in pixels.
        prob_flip: probability of a horizontal flip per sample.
        ratio_scale: ``sx, sy ~ U(1/ratio_scale, ratio_scale)``.
        ratio_rotate: max rotation in degrees.
        ratio_crop_pad: max translation as a fraction of the side, rounded to whole pixels.
        ratio_cutout: cutout side as a fraction of the image side, rounded to whole pixels.
        brightness, saturation, contrast: see the module's param table.
        fyi: FYI's variant: a per-sample flip (``prob_flip``) on every call, then one non-flip family. Needs
            ``flip`` and another family in the strategy (ValueError otherwise).

    ``families`` are the families one call draws from (what the ``family`` param indexes): the strategy's, or
    with ``fyi=True`` the strategy's without ``flip``.
    """

    def __init__(
        self,
        strategy: str = "color_crop_cutout_flip_scale_rotate",
        *,
        image_size: tuple[int, int] | int,
        prob_flip: float = 0.5,
        ratio_scale: float = 1.2,
        ratio_rotate: float = 15.0,
        ratio_crop_pad: float = 0.125,
        ratio_cutout: float = 0.5,
        brightness: float = 1.0,
        saturation: float = 2.0,
        contrast: float = 0.5,
        fyi: bool = False,
    ) -> None:
        if not 0.0 <= prob_flip <= 1.0:
            raise ValueError(f"prob_flip must be in [0, 1]; got {prob_flip}")
        if ratio_scale <= 0:
            raise ValueError(f"ratio_scale must be > 0; got {ratio_scale}")
        if ratio_crop_pad < 0 or not 0.0 <= ratio_cutout <= 1.0:
            raise ValueError(f"need ratio_crop_pad >= 0, 0 <= ratio_cutout <= 1; got {ratio_crop_pad}, {ratio_cutout}")
        self.strategy = strategy
        self.fyi = fyi
        self.families = fyi_families(parse_strategy(strategy), strategy) if fyi else parse_strategy(strategy)
        self.image_size = _pair(image_size)
        self.prob_flip = prob_flip
        self.ratio_scale = ratio_scale
        self.ratio_rotate = ratio_rotate
        self.ratio_crop_pad = ratio_crop_pad
        self.ratio_cutout = ratio_cutout
        self.brightness = brightness
        self.saturation = saturation
        self.contrast = contrast
        h, w = self.image_size
        # DSA rounds both from the image side: 4 px shift and a 16 px cutout at 32x32, 1 px and 4 px at 8x8.
        self.crop_pad = (int(h * ratio_crop_pad + 0.5), int(w * ratio_crop_pad + 0.5))
        self.cutout_size = (int(h * ratio_cutout + 0.5), int(w * ratio_cutout + 0.5))

    def __repr__(self) -> str:
        return f"DSA({self.strategy!r}, image_size={self.image_size}{', fyi=True' if self.fyi else ''})"

    def describe(self) -> dict:
        """What an evaluation records about its augmentation: the variant, the drawn families, the flip rule."""
        if self.fyi:
            rule = f"FYI: flip p={self.prob_flip} per sample on every call, then one of {'/'.join(self.families)}"
        else:
            rule = f"DSA mode 'S': one of {'/'.join(self.families) or 'none'} per call"
        return {"variant": "fyi" if self.fyi else "dsa", "strategy": self.strategy, "families": list(self.families),
                "always_flip": self.fyi, "prob_flip": self.prob_flip, "image_size": list(self.image_size),
                "summary": rule}

    def sample_params(self, n: int, *, generator: torch.Generator, same_on_batch: bool = False) -> Params:
        """Draw one call's params for ``n`` samples from ``generator`` only, on ``generator.device``.

        The family is drawn first (one per call, outside any per-sample draw), then every family's per-sample
        params in strategy order. ``same_on_batch=True`` draws a single set with leading dimension 1. With
        ``fyi=True`` the flip is drawn before the family, in the order of FYI's ``DiffAugment``.
        """
        if not self.families:
            return {}
        m = 1 if same_on_batch else n
        device = generator.device

        def uniform(size: int = m) -> torch.Tensor:  # U[0, 1), (size,) float32
            return torch.rand(size, generator=generator, device=device)

        def integers(low: int, high_inclusive: int) -> torch.Tensor:  # U{low..high_inclusive}, (m,) int64
            return torch.randint(low, high_inclusive + 1, (m,), generator=generator, device=device)

        flip = uniform() < self.prob_flip if self.fyi else None  # (m,) bool, drawn first as FYI's rand_flip
        choice = torch.randint(len(self.families), (1,), generator=generator, device=device)
        params: Params = {"family": choice.repeat(m)}
        if flip is not None:
            params["flip"] = flip
        (h, w), (pad_h, pad_w), (cut_h, cut_w) = self.image_size, self.crop_pad, self.cutout_size
        for family in self.families:
            if family == "color":
                params["brightness"] = (uniform() - 0.5) * self.brightness
                params["saturation"] = uniform() * self.saturation
                params["contrast"] = uniform() + self.contrast
            elif family == "crop":
                params["crop_shift"] = torch.stack([integers(-pad_h, pad_h), integers(-pad_w, pad_w)], dim=1)
            elif family == "cutout":
                # DSA draws randint(0, H + (1 - k % 2)): centres 0..H for an even side k, 0..H-1 for an odd one.
                centre = [integers(0, h - cut_h % 2), integers(0, w - cut_w % 2)]
                params["cutout_center"] = torch.stack(centre, dim=1)
            elif family == "flip":
                params["flip"] = uniform() < self.prob_flip
            elif family == "scale":
                lo, hi = 1.0 / self.ratio_scale, self.ratio_scale
                params["scale"] = torch.stack([uniform() * (hi - lo) + lo, uniform() * (hi - lo) + lo], dim=1)
            elif family == "rotate":
                params["rotate"] = (uniform() - 0.5) * 2.0 * self.ratio_rotate * math.pi / 180.0
        return params

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        """Apply ``params`` to ``x`` ``(B, C, H, W)``: deterministic, differentiable w.r.t. ``x``, dtype kept.

        Params with leading dimension 1 broadcast over any ``B``; otherwise the leading dimension must be ``B``.
        ``family`` may differ per sample (params of several calls concatenated by ``cat_params``): samples are
        grouped by family, each group goes through its op once, and the results are put back in batch order.
        With ``fyi=True`` the ``flip`` mask is applied to the whole batch before that.
        """
        if not params:
            return x
        if not x.is_floating_point() or x.dim() != 4:
            raise TypeError(f"DSA expects a float (B, C, H, W) tensor; got {x.dtype} of shape {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"DSA was built for image_size {self.image_size}; got images {tuple(x.shape[-2:])}")
        family = params["family"]
        if family.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"params are for {family.shape[0]} samples; got a batch of {x.shape[0]}")
        if self.fyi:
            # FYI flips first, per sample, whatever the family; a (1,) mask flips all or none (Siamese).
            if params["flip"].shape[0] not in (1, x.shape[0]):
                raise ValueError(f"flip params are for {params['flip'].shape[0]} samples; got a batch of {x.shape[0]}")
            x = ops.hflip(x, params["flip"])
        groups = family.unique().tolist()  # host sync, as DSA's own `.item()` on the family draw
        if len(groups) == 1:
            return self._apply_family(groups[0], x, params)
        pieces, positions = [], []
        for index in groups:
            rows = (family == index).nonzero().squeeze(1)  # (B_f,) batch positions of this family
            sub = {k: v if v.shape[0] == 1 else v.index_select(0, rows.to(v.device)) for k, v in params.items()}
            rows = rows.to(x.device)
            pieces.append(self._apply_family(index, x.index_select(0, rows), sub))
            positions.append(rows)
        inverse = torch.cat(positions).argsort()  # where each original sample sits in the grouped batch
        return torch.cat(pieces).index_select(0, inverse)

    def _apply_family(self, index: int, x: torch.Tensor, p: Params) -> torch.Tensor:
        family = self.families[index]
        if family == "color":
            return ops.adjust_color(x, p["brightness"], p["saturation"], p["contrast"])
        if family == "crop":
            return ops.batch_crop(x, p["crop_shift"])
        if family == "cutout":
            return ops.cutout(x, p["cutout_center"], self.cutout_size)
        if family == "flip":
            return ops.hflip(x, p["flip"])
        # Thetas for the whole batch in one tensor op, built on x's device in x's dtype.
        if family == "scale":
            return ops.affine(x, ops.scale_matrix(p["scale"].to(device=x.device, dtype=x.dtype)))
        return ops.affine(x, ops.rotation_matrix(p["rotate"].to(device=x.device, dtype=x.dtype)))

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        """Fresh per-sample params for this batch, applied: ``apply(x, sample_params(len(x), generator=g))``."""
        return self.apply(x, self.sample_params(len(x), generator=generator))

    @staticmethod
    def cat_params(params: Sequence[Params], sizes: Sequence[int]) -> Params:
        """Concatenate the params of several calls along dim 0, expanding leading-dim-1 entries to ``sizes[i]``.

        >>> a = {"family": torch.tensor([0]), "flip": torch.tensor([True])}
        >>> b = {"family": torch.tensor([1, 1]), "flip": torch.tensor([False, True])}
        >>> DSA.cat_params([a, b], [3, 2])["family"]
        tensor([0, 0, 0, 1, 1])
        """
        if len(params) != len(sizes):
            raise ValueError(f"got {len(params)} param dicts but {len(sizes)} sizes")
        if not params:
            return {}
        keys = set(params[0])
        if any(set(p) != keys for p in params):
            raise ValueError(f"param dicts have different keys: {[sorted(p) for p in params]}")
        out: Params = {}
        for key in params[0]:
            parts = []
            for p, size in zip(params, sizes, strict=True):
                v = p[key]
                if v.shape[0] not in (1, size):
                    raise ValueError(f"param {key!r} has leading dimension {v.shape[0]}; expected 1 or {size}")
                parts.append(v.expand(size, *v.shape[1:]))
            out[key] = torch.cat(parts)
        return out


class NoAugmentation:
    """The identity with DSA's interface: no params, ``apply`` returns ``x`` itself, no randomness consumed."""

    families: tuple[str, ...] = ()

    def __init__(self, *, image_size: tuple[int, int] | int | None = None) -> None:
        self.image_size = None if image_size is None else _pair(image_size)

    def __repr__(self) -> str:
        return "NoAugmentation()"

    def sample_params(self, n: int, *, generator: torch.Generator, same_on_batch: bool = False) -> Params:
        return {}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return x

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return x

    cat_params = staticmethod(DSA.cat_params)
