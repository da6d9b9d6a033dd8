"""Composed sets: images stored as parts and rebuilt at load, as pure tensor code beneath the set format.

A set's ``composition`` (``{"kind": a registered composer, "parts": [extras names], ...its arguments}``) names how its
images are rebuilt from the stored parts; the parts are the set's image bytes and the composites are never written.
The composers here are functions of tensors alone: loading a composed set imports no method. Built in: INFER's
compensated images (``infer_ufc``: :mod:`dd_bench.methods.decoupled.infer` makes the parts) and JPEG streams
(``jpeg``: ``image_store=jpeg``, :mod:`dd_bench.synset.image_store`).
"""

from __future__ import annotations

from typing import Any

import torch

from dd_bench.synset.errors import SynsetError
from dd_bench.synset.jpeg import JPEG_PART, decode_jpeg, split_streams

# Composers rebuild a composed set's images from its stored parts: name -> fn(composition, extras, image_space).
COMPOSERS: dict[str, Any] = {}


def register_composer(name: str):
    def wrap(fn):
        COMPOSERS[name] = fn
        return fn
    return wrap


def compose_images(composition: dict[str, Any], extras: dict[str, torch.Tensor],
                   image_space: dict[str, Any]) -> torch.Tensor:
    kind = composition.get("kind")
    if kind not in COMPOSERS:
        raise SynsetError(f"Unknown image composition {kind!r}; available: {', '.join(sorted(COMPOSERS))}")
    return COMPOSERS[kind](composition, extras, image_space)


# INFER (dd_bench/methods/decoupled/infer.py): base images plus universal feature compensators.
def instance_plan(k: int, m: int) -> list[tuple[int, int]]:
    """Per class, the (base set, teacher) of each instance in the official order; teacher -1: the base image."""
    return [(j % k, j // k - 1) for j in range((m + 1) * k)]


@register_composer("infer_ufc")
def compose_infer(composition: dict[str, Any], extras: dict[str, torch.Tensor],
                  image_space: dict[str, Any]) -> torch.Tensor:
    """Composites from ``infer.base`` (K*C, ch, H, W) uint8 (class-major within each base set: row k*C + c) and
    ``infer.ufc`` (M*K*chunks, ch, H, W) float32 model space -> (C * (M+1) K, ch, H, W), class-major."""
    base, ufc = extras["infer.base"], extras["infer.ufc"].float()
    k, m, c, chunk = (int(composition[n]) for n in ("k", "m", "classes", "batch_size"))
    mean = torch.tensor(image_space["mean"], device=ufc.device).view(1, -1, 1, 1)
    std = torch.tensor(image_space["std"], device=ufc.device).view(1, -1, 1, 1)
    model = (base.to(ufc.device).float() / 255.0 - mean) / std
    lo, hi = (0.0 - mean) / std, (1.0 - mean) / std
    chunks = -(-c // chunk)
    out = []
    for cls in range(c):
        for kk, mm in instance_plan(k, m):
            x = model[kk * c + cls]
            if mm >= 0:
                x = x + ufc[ufc_row(kk, mm, cls // chunk, k=k, chunks=chunks)]
            out.append(torch.maximum(torch.minimum(x, hi[0]), lo[0]))
    return torch.stack(out)


def ufc_row(kk: int, mm: int, chunk: int, *, k: int, chunks: int) -> int:
    """Row of u_{k,m} for a class chunk in ``infer.ufc``: teacher-major, then base set, then chunk."""
    return (mm * k + kk) * chunks + chunk


@register_composer("jpeg")
def compose_jpeg(composition: dict[str, Any], extras: dict[str, torch.Tensor],
                 image_space: dict[str, Any]) -> torch.Tensor:
    """The decoded pixels of a JPEG-stored set: uint8 (N, C, H, W) on the parts' device."""
    blob = extras[JPEG_PART]
    return decode_jpeg(split_streams(composition, blob), channels=int(composition["channels"])).to(blob.device)
