"""Whether a set can be scored against a data set as loaded: the same data set, classes, image shape and image space
(ZCA matrix included). Asked before any training (the evaluator) and before any relabelling (the label sources)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dd_bench.synset.errors import SynsetError
from dd_bench.synset.format import SyntheticSet

if TYPE_CHECKING:
    from dd_bench.data import RealData


def check_compatible(synset: SyntheticSet, real: RealData) -> None:
    """Fail before any training when the set cannot be evaluated against this dataset."""
    if synset.dataset != real.name:
        raise SynsetError(f"the set was distilled from '{synset.dataset}' but the dataset is '{real.name}'")
    if synset.num_classes != real.num_classes:
        raise SynsetError(f"the set has {synset.num_classes} classes; '{real.name}' has {real.num_classes}")
    if tuple(synset.images.shape[1:]) != (real.channels, *real.image_size):
        raise SynsetError(f"set images are {tuple(synset.images.shape[1:])}; '{real.name}' images are "
                          f"{(real.channels, *real.image_size)}")
    if synset.image_encoding == "uint8":
        return  # raw pixels: converted with whatever space the dataset is loaded in
    space = synset.image_space.get("space")
    if space != real.image_space:
        hint = "dataset.zca=true" if space == "zca" else "dataset.zca=false"
        raise SynsetError(f"the set's images are in '{space}' space but the dataset is loaded in "
                          f"'{real.image_space}' space; load it with {hint}")
    if space == "zca" and real.zca is not None and synset.image_space.get("sha256") not in (None, real.zca.sha256):
        raise SynsetError("the set was whitened with a different ZCA matrix (SHA-256 mismatch) than this dataset's")
