"""A seeded, stratified validation split carved out of the training set, for selection (best checkpoint, lr
search) when a user asks for it. Never the test set. By default nothing is held out (ARCHITECTURE.md, Selection).

Per class c with n_c training images, ``per_class`` holds out exactly that many, ``fraction`` holds out
round(fraction * n_c) (at least 1, at most n_c - 1), so e.g. 10% of digits or fraction=0.1 -> 5,000 CIFAR-10 images.
The draw is one ``randperm`` per class, in class order, from a CPU generator seeded with ``seed``.

A set distilled with a split in ZCA space was whitened by a ZCA fitted without the held-out images;
:func:`evaluation_real` refits that matrix for the evaluator.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from dd_bench.data.real_data import RealData
from dd_bench.errors import UserError


def _holdout_sizes(counts: list[int], fraction: float | None, per_class: int | None) -> list[int]:
    if (fraction is None) == (per_class is None):
        raise UserError("split_validation needs exactly one of fraction= or per_class=")
    if fraction is not None:
        if not 0.0 < fraction < 1.0:
            raise UserError(f"validation fraction must be in (0, 1); got {fraction}")
        return [min(max(1, round(fraction * n)), n - 1) for n in counts]
    assert per_class is not None
    smallest = min(counts)
    if per_class < 1 or per_class >= smallest:
        raise UserError(
            f"per_class={per_class} must be in [1, {smallest - 1}] (the smallest class has {smallest} images)"
        )
    return [per_class] * len(counts)


def split_validation(
    real: RealData,
    *,
    fraction: float | None = None,
    per_class: int | None = None,
    seed: int,
    refit_zca: bool = True,
) -> tuple[RealData, dict[str, Any]]:
    """Hold out a stratified validation subset of ``real``'s training set.

    Returns the reduced RealData (``train_indices`` = positions in the original, full training set, ascending)
    and a dict with the validation ``images`` (uint8), ``labels``, ``indices`` (original positions, ascending),
    ``seed``, ``fraction``, ``per_class``, ``zca_refit``. Nested splits compose: indices always refer to the full
    training set.
    When ``real`` is ZCA-whitened and ``refit_zca`` is set, the whitening is refitted on the remaining training
    images so the validation images are held out from everything.
    """
    labels = real.train_labels.cpu()
    counts = torch.bincount(labels, minlength=real.num_classes).tolist()
    if min(counts) < 2:
        raise UserError(f"every class needs >= 2 training images to hold some out; counts are {counts}")
    sizes = _holdout_sizes(counts, fraction, per_class)
    generator = torch.Generator().manual_seed(int(seed))
    held = []
    for c, k in enumerate(sizes):
        idx = torch.nonzero(labels == c, as_tuple=False).flatten()
        held.append(idx[torch.randperm(len(idx), generator=generator)[:k]])
    val_local = torch.cat(held).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_local] = False
    train_local = torch.nonzero(keep, as_tuple=False).flatten()

    original = real.train_indices.cpu() if real.train_indices is not None else torch.arange(len(labels))
    device = real.device
    reduced = replace(
        real,
        train_images=real.train_images[train_local.to(device)],
        train_labels=real.train_labels[train_local.to(device)],
        train_indices=original[train_local],
        val_images=real.train_images[val_local.to(device)],
        val_labels=real.train_labels[val_local.to(device)],
    )
    if real.zca is not None and refit_zca:
        from dd_bench.data.zca import fit_zca

        reduced.zca = fit_zca(reduced.train_images.float().div(255.0), eps=real.zca.eps)
    validation = {
        "images": real.train_images[val_local.to(device)],
        "labels": real.train_labels[val_local.to(device)],
        "indices": original[val_local],
        "seed": int(seed),
        "fraction": fraction,
        "per_class": per_class,
        "zca_refit": reduced.zca is not real.zca,
    }
    return reduced, validation


def evaluation_real(real: RealData, meta: dict[str, Any]) -> RealData:
    """The data a set is scored against: ``real``, except that a set distilled with a validation split in ZCA space
    was whitened by a ZCA fitted without the held-out images, so the evaluator refits that same matrix (checked by
    its SHA-256) and whitens the test images with it."""
    space = meta.get("image_space") or {}
    validation = (meta.get("provenance") or {}).get("validation")
    if real.zca is None or space.get("space") != "zca" or not validation or space.get("sha256") == real.zca.sha256:
        return real
    from dd_bench.data.zca import fit_zca

    keep = torch.ones(len(real.train_labels), dtype=torch.bool)
    keep[torch.as_tensor(validation["indices"], dtype=torch.long)] = False
    zca = fit_zca(real.train_images[keep.to(real.device)].float().div(255.0), eps=real.zca.eps)
    if zca.sha256 != space.get("sha256"):
        raise UserError("the set's ZCA matrix (fitted without its validation split) could not be reproduced from "
                        "this data: evaluate with the dataset the set was distilled from")
    return replace(real, zca=zca)
