"""Naive compressions of stored FKD labels, the baseline HeLlO's reviewers asked for (decoupled-methods.md §6(g) 3):

* ``fkd_int8``: each stored logit row quantised symmetrically to int8 with one fp16 scale per row
  (``q = round(z / s)``, ``s = max|z| / 127``): C + 2 bytes a row instead of 2C;
* ``fkd_top<k>`` (e.g. ``fkd_top2``): only each row's k largest logits kept (fp16 values + class indices, 1 byte
  each below 256 classes, else 2); the other classes get a logit 10^4 below the row's smallest kept one, so their
  softmax mass is zero at any temperature the protocols use.

The same replayed batches as ``fkd`` (the stored order and augmentation records, charged as FKD charges them); the
compressed logits are computed from the stored fp16 shards as they are opened, bit for bit what a store of the
compressed form would give back, and charged at the compressed size.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from dd_bench.labels.fkd import FKDLabels

TOPK = re.compile(r"^fkd_top(\d+)$")


def int8_roundtrip(z: torch.Tensor) -> torch.Tensor:
    """(N, K) logits -> the same after int8 quantisation with a per-row fp16 scale, as float32."""
    z = z.float()
    scale = (z.abs().amax(dim=1, keepdim=True) / 127.0).half().float().clamp_min(1e-8)
    return torch.round(z / scale).clamp(-127, 127) * scale


def topk_roundtrip(z: torch.Tensor, k: int) -> torch.Tensor:
    """(N, K) logits -> only the k largest per row kept (fp16), the rest 10^4 below the smallest kept."""
    z = z.float()
    values, index = z.topk(min(k, z.shape[1]), dim=1)
    values = values.half().float()
    out = (values[:, -1:] - 1e4).expand_as(z).clone()
    return out.scatter_(1, index, values)


def compressed_bytes_per_row(kind: str, num_classes: int) -> int:
    if kind == "int8":
        return num_classes + 2
    k = int(kind.removeprefix("top"))
    return min(k, num_classes) * (2 + (1 if num_classes <= 256 else 2))


class CompressedFKDLabels(FKDLabels):
    """Stored FKD labels, compressed as ``kind`` (``int8`` or ``top<k>``) when each epoch's shard is opened."""

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.name = kind, f"fkd_{kind}"

    def _load(self, epoch: int) -> dict[str, torch.Tensor]:
        fresh = self._epoch != epoch
        tensors = super()._load(epoch)
        if fresh:
            z = tensors["logits"]
            tensors["logits"] = (int8_roundtrip(z) if self.kind == "int8"
                                 else topk_roundtrip(z, int(self.kind.removeprefix("top"))))
        return tensors


def compressed_entry_bytes(entry: dict[str, Any], kind: str, num_classes: int) -> int:
    """An FKD entry's bytes with its fp16 logits replaced by the compressed form (records unchanged)."""
    rows = int(entry["num_images"]) * int(entry["epochs"])
    return int(entry["bytes"]) - rows * num_classes * 2 + rows * compressed_bytes_per_row(kind, num_classes)
