"""The augmentation a recipe names, built for a data set's images: one registry behind every recipe's ``augment``
field (evaluation protocols, experts, teachers) and the kd protocols' ``crop``, so each name is turned into an
object in one place.

Each recipe accepts its own subset of these names, checked where the recipe is built (an expert never trains with
DC's augmentation); :func:`create_augment` builds the named one for ``real``. Every entry takes the same keywords and
uses those it needs: the data set (its image size, DSA strategy and whether flips are allowed), ``pad`` (crop_flip's
zero padding; None: image size / 8) and ``scale_min`` (resized_crop_flip's smallest area fraction). ``none`` builds
nothing (None): the training loop then draws no parameters.

>>> from dd_bench.data import load_dataset
>>> create_augment("dsa", real=load_dataset("digits"))
DSA('color_crop_cutout_scale_rotate', image_size=(8, 8))
>>> NAMED_AUGMENTS.list()
['crop_flip', 'dc_crop_noise', 'dc_crop_scale_rotate', 'dsa', 'dsa_fyi', 'none', 'resized_crop_flip']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dd_bench.augment.crop_flip import crop_flip_for
from dd_bench.augment.dc_aug import DCAugment
from dd_bench.augment.dsa import DSA
from dd_bench.augment.resized_crop import RandomResizedCropFlip
from dd_bench.registry import Registry

if TYPE_CHECKING:
    from dd_bench.data import RealData

NAMED_AUGMENTS: Registry = Registry("augment", kind="factory")


def create_augment(name: str, *, real: RealData, pad: int | None = None, scale_min: float = 0.08) -> Any:
    """The augmentation ``name`` for ``real``'s images (None for ``none``); an unknown name lists the registered."""
    return NAMED_AUGMENTS.create(name, real=real, pad=pad, scale_min=scale_min)


@NAMED_AUGMENTS.register("none")
def _none(*, real: RealData, pad: int | None, scale_min: float) -> None:
    return None


@NAMED_AUGMENTS.register("dsa")
def _dsa(*, real: RealData, pad: int | None, scale_min: float) -> DSA:
    """The data set's DSA strategy (MTT's ``buffer.py`` and ``evaluate_synset``)."""
    return DSA(real.dsa_strategy, image_size=real.image_size)


@NAMED_AUGMENTS.register("dsa_fyi")
def _dsa_fyi(*, real: RealData, pad: int | None, scale_min: float) -> DSA:
    """FYI's DSA: flip with p=0.5 on every batch, then one other family; a ValueError for a strategy without flip."""
    return DSA(real.dsa_strategy, image_size=real.image_size, fyi=True)


@NAMED_AUGMENTS.register("dc_crop_scale_rotate")
def _dc_crop_scale_rotate(*, real: RealData, pad: int | None, scale_min: float) -> DCAugment:
    """DC's own per-sample augmentation (``get_daparam``: MNIST)."""
    return DCAugment("crop_scale_rotate", image_size=real.image_size)


@NAMED_AUGMENTS.register("dc_crop_noise")
def _dc_crop_noise(*, real: RealData, pad: int | None, scale_min: float) -> DCAugment:
    """DC's own, for a BatchNorm evaluation model (``get_daparam``: ConvNetBN)."""
    return DCAugment("crop_noise", image_size=real.image_size)


@NAMED_AUGMENTS.register("crop_flip")
def _crop_flip(*, real: RealData, pad: int | None, scale_min: float) -> Any:
    """RandomCrop(size, pad) + flip, no flip where the data set's DSA drops it (the teachers' and kd's crops)."""
    return crop_flip_for(real, pad)


@NAMED_AUGMENTS.register("resized_crop_flip")
def _resized_crop_flip(*, real: RealData, pad: int | None, scale_min: float) -> RandomResizedCropFlip:
    """RandomResizedCrop((scale_min, 1)) + flip, no flip where the data set's DSA drops it."""
    return RandomResizedCropFlip(image_size=real.image_size, scale=(scale_min, 1.0), flip="flip" in real.dsa_strategy)
