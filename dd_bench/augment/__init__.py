"""Differentiable augmentations: pure ops, DSA (sample/apply split; FYI variant), FYI's flip concatenation, the
augmentation registry, and the registry of the augmentations recipes name (:mod:`dd_bench.augment.named`).

>>> aug = create_augmentation("dsa", strategy="flip", image_size=32)
>>> AUGMENTATIONS.list()
['dsa', 'none']
"""

from typing import Any

from dd_bench.augment.dsa import DSA, FAMILIES, NoAugmentation, parse_strategy
from dd_bench.augment.fyi import flip_concat
from dd_bench.augment.named import NAMED_AUGMENTS, create_augment
from dd_bench.augment.ops import (
    ALIGN_CORNERS,
    adjust_brightness,
    adjust_color,
    adjust_contrast,
    adjust_saturation,
    affine,
    batch_crop,
    cutout,
    hflip,
    rotation_matrix,
    scale_matrix,
)
from dd_bench.registry import Registry

__all__ = [
    "ALIGN_CORNERS",
    "AUGMENTATIONS",
    "DSA",
    "FAMILIES",
    "NAMED_AUGMENTS",
    "NoAugmentation",
    "adjust_brightness",
    "adjust_color",
    "adjust_contrast",
    "adjust_saturation",
    "affine",
    "batch_crop",
    "create_augment",
    "create_augmentation",
    "cutout",
    "flip_concat",
    "hflip",
    "parse_strategy",
    "rotation_matrix",
    "scale_matrix",
]

# The augmentation classes that share DSA's whole interface, built from an image size alone: every entry takes
# ``image_size=`` and exposes sample_params(n, *, generator, same_on_batch) / apply(x, params) / __call__(x, *,
# generator) / cat_params. No config selects them: a recipe's ``augment`` field names an entry of NAMED_AUGMENTS,
# built for a data set (dd_bench/augment/named.py).
AUGMENTATIONS: Registry = Registry("augmentation", kind="factory")
AUGMENTATIONS.register("dsa")(DSA)
AUGMENTATIONS.register("none")(NoAugmentation)


def create_augmentation(name: str, **kwargs: Any) -> DSA | NoAugmentation:
    """A new augmentation of the class registered as ``name``, with the class's own keywords (``image_size``, ...)."""
    return AUGMENTATIONS.create(name, **kwargs)
