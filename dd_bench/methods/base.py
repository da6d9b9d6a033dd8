"""Synthesizer: the one interface every distillation method implements, and the method registry.

A method is a class with a typed ``Config`` dataclass (its Hydra schema; unknown keys fail) and
``distill(real, *, ipc, seed, ...) -> SyntheticSet``. It is registered under the same lowercase name as its
config file ``conf/method/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from dd_bench.data import RealData
from dd_bench.registry import Registry
from dd_bench.synset import SyntheticSet

METHODS: Registry = Registry("method")


class DistillationDiverged(RuntimeError):
    """Raised inside a method's loop; the driver keeps the last good state and reports it."""


class Synthesizer(ABC):
    name: ClassVar[str]
    # Options that make distill() finish in about a second on digits: registry-driven smoke tests use them.
    TEST_OPTIONS: ClassVar[dict[str, Any]] = {}

    @dataclasses.dataclass
    class Config:
        pass

    def __init__(self, **kwargs: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise ValueError(f"Unknown option(s) {unknown} for method '{self.name}'; available: "
                             f"{', '.join(sorted(fields)) or '(none)'}")
        self.cfg = self.Config(**kwargs)

    def config_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self.cfg)}

    @abstractmethod
    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None) -> SyntheticSet:
        """Produce a synthetic set of ``ipc`` images per class from ``real``; deterministic for a seed."""

    def new_synset(self, real: RealData, *, ipc: int, images: torch.Tensor, labels: torch.Tensor,
                   image_encoding: str = "model", **kwargs: Any) -> SyntheticSet:
        """A SyntheticSet carrying this method's name and config and the dataset's image space."""
        return SyntheticSet(
            images=images.detach(), labels=labels.detach().long(), dataset=real.name, ipc=ipc, method=self.name,
            class_names=list(real.class_names), image_space=image_space_of(real), image_encoding=image_encoding,
            config=self.config_dict(), eval_assets_bytes=eval_assets_bytes(real) if image_encoding == "model" else 0,
            **kwargs)


def source_indices(real: RealData, idx: torch.Tensor) -> torch.Tensor:
    """Indices into the dataset's original training set (a validation split re-indexes ``real.train_*``)."""
    return (real.train_indices[idx.to(real.train_indices.device)] if real.train_indices is not None else idx).cpu()


def image_space_of(real: RealData) -> dict[str, Any]:
    if real.zca is None:
        return {"space": "mean_std", "mean": list(real.mean), "std": list(real.std)}
    return {"space": "zca", "dataset": real.name, "split": "train", "eps": real.zca.eps, "sha256": real.zca.sha256}


def eval_assets_bytes(real: RealData) -> int:
    """ZCA whitening needs its D x D matrix and D-vector mean at evaluation (float32); mean/std needs nothing."""
    if real.zca is None:
        return 0
    d = real.channels * real.image_size[0] * real.image_size[1]
    return 4 * (d * d + d)


def hard_labels(num_classes: int, ipc: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Class-major labels ``[0]*ipc + [1]*ipc + ...``: (num_classes * ipc,) int64."""
    return torch.arange(num_classes, device=device).repeat_interleave(ipc)
