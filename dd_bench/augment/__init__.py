"""Differentiable augmentations: pure ops, DSA (sample/apply split; FYI variant), FYI's flip concatenation and
the augmentation registry.

>>> aug = AUGMENTATIONS.create("dsa", strategy="flip", image_size=32)
>>> AUGMENTATIONS.list()
['dsa', 'none']
"""

from dd_bench.augment.dsa import DSA, FAMILIES, NoAugmentation, parse_strategy
from dd_bench.augment.fyi import flip_concat
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
    "NoAugmentation",
    "adjust_brightness",
    "adjust_color",
    "adjust_contrast",
    "adjust_saturation",
    "affine",
    "batch_crop",
    "cutout",
    "flip_concat",
    "hflip",
    "parse_strategy",
    "rotation_matrix",
    "scale_matrix",
]

# Keys are the augmentation names (no config group selects them: an evaluation protocol's ``augment`` field picks
# the evaluator's augmentation, dd_bench/eval/mtt.py: make_augment). Every entry takes ``image_size=`` and exposes
# sample_params(n, *, generator, same_on_batch) / apply(x, params) / __call__(x, *, generator) / cat_params.
AUGMENTATIONS: Registry = Registry("augmentation")
AUGMENTATIONS.register("dsa")(DSA)
AUGMENTATIONS.register("none")(NoAugmentation)
