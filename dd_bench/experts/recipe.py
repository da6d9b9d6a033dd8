"""ExpertRecipe: everything that decides how experts are trained, and the cache key derived from it.

Defaults are MTT's ``buffer.py`` (trajectory-matching.md §1c): ConvNet, 50 epochs, SGD lr 0.01, momentum 0,
weight decay 0, constant lr, batch 256, DSA on every real batch. FTD/DATM experts (§2c, §3c) are
``optimizer="gsam", rho=0.01, alpha=0.3`` (DATM's alpha; FTD's script leaves 0.4), and DATM trains 100 epochs.

>>> r = ExpertRecipe(model_kwargs={"width": 8}, epochs=2)
>>> r.model_kwargs, r.model_kwargs_dict
((('width', 8),), {'width': 8})
>>> ExpertRecipe(optimizer="adam")
Traceback (most recent call last):
...
ValueError: Unknown expert optimizer 'adam'; available: gsam, sgd
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from dd_bench.augment import DSA, NoAugmentation, create_augment
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import json_sha256
from dd_bench.models import MODELS, create_model, list_models

__all__ = ["AUGMENTS", "EXPERTS_CODE_VERSION", "OPTIMIZERS", "ExpertRecipe", "make_expert_augment",
           "template_kwargs"]

class ExpertOptimizer(enum.StrEnum):
    sgd = "sgd"  # MTT
    gsam = "gsam"  # FTD, DATM


OPTIMIZERS = tuple(sorted(o.value for o in ExpertOptimizer))
AUGMENTS = ("dsa", "dsa_fyi", "none")  # the names of dd_bench/augment/named.py an expert recipe accepts
# Bump when a code change alters the trajectories a recipe produces (random-number order, update rule, ...):
# every cached expert then gets a new key and is retrained instead of silently reused.
EXPERTS_CODE_VERSION = 1

JSONScalar = (bool, int, float, str, type(None))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class ExpertRecipe:
    model: str = "convnet"
    # Extra create_model kwargs (e.g. width, depth), normalised to sorted (name, value) pairs so the recipe
    # is hashable; pass a dict. Values must be JSON scalars (they go into the cache key and meta.json).
    model_kwargs: tuple[tuple[str, Any], ...] | Mapping[str, Any] = field(default=())
    epochs: int = 50  # passes over the real training set; snapshots at epochs 0 (init) .. epochs
    optimizer: str = "sgd"  # sgd (MTT) | gsam (FTD, DATM)
    lr: float = 0.01  # constant, per batch of batch_size images
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256  # real images per step; the last batch of an epoch may be smaller
    rho: float = 0.01  # GSAM perturbation radius (adaptive: relative to |w|)
    alpha: float = 0.3  # GSAM weight of the ascent-orthogonal component
    adaptive: bool = True  # GSAM: ASAM-style perturbation scaled by w**2
    augment: str = "dsa"  # dsa | dsa_fyi (FYI's flip-aware DSA) | none; on every real batch
    seed: int = 0  # expert i draws from make_generator(seed, "expert", i, "init" | "data" | "aug")

    def __post_init__(self) -> None:
        kwargs = self.model_kwargs
        if isinstance(kwargs, Mapping):
            kwargs = tuple(sorted(kwargs.items()))
        else:
            kwargs = tuple(sorted((str(k), v) for k, v in kwargs))
        object.__setattr__(self, "model_kwargs", kwargs)
        for name, value in kwargs:
            if not isinstance(value, JSONScalar):
                raise UserError(f"model_kwargs['{name}'] must be a JSON scalar (bool/int/float/str/None); got "
                                 f"{type(value).__name__}")
        if self.model not in MODELS and not self.model.startswith("timm."):
            raise UserError(f"Unknown expert model '{self.model}'; available: {', '.join(list_models())}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"Unknown expert optimizer '{self.optimizer}'; available: {', '.join(OPTIMIZERS)}")
        if self.augment not in AUGMENTS:
            raise UserError(f"Unknown expert augment '{self.augment}'; available: {', '.join(AUGMENTS)}")
        checks = [
            ("epochs", _is_int(self.epochs) and self.epochs >= 1, "an int >= 1"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size >= 1, "an int >= 1"),
            ("lr", _is_number(self.lr) and self.lr > 0, "a number > 0"),
            ("momentum", _is_number(self.momentum) and 0.0 <= self.momentum < 1.0, "a number in [0, 1)"),
            ("weight_decay", _is_number(self.weight_decay) and self.weight_decay >= 0, "a number >= 0"),
            ("rho", _is_number(self.rho) and (self.rho > 0 or self.optimizer != "gsam"),
             "a number, > 0 for optimizer 'gsam'"),
            ("alpha", _is_number(self.alpha) and self.alpha >= 0, "a number >= 0"),
            ("adaptive", isinstance(self.adaptive, bool), "a bool"),
            ("seed", _is_int(self.seed) and self.seed >= 0, "an int >= 0"),
        ]
        for name, ok, need in checks:
            if not ok:
                raise UserError(f"ExpertRecipe.{name} must be {need}; got {getattr(self, name)!r}")

    @property
    def model_kwargs_dict(self) -> dict[str, Any]:
        return dict(self.model_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (model_kwargs as a dict); ``ExpertRecipe.from_dict(r.to_dict()) == r``."""
        d = dataclasses.asdict(self)
        d["model_kwargs"] = self.model_kwargs_dict
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExpertRecipe:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"Unknown ExpertRecipe field(s) {', '.join(unknown)}; fields: {', '.join(sorted(known))}")
        return cls(**d)

    def key(self, real: RealData) -> str:
        """A 24-hex-digit hash of everything that changes the trajectories of ``real``-trained experts.

        Covers the recipe, the data (:meth:`RealData.fingerprint`: train/test tensors, image space, ZCA matrix
        hash), the dataset's DSA strategy, the model's parameter count and
        :data:`EXPERTS_CODE_VERSION`. Not the device: all random draws happen on CPU generators, so trajectories
        agree across devices up to floating-point rounding.
        """
        payload = {"v": EXPERTS_CODE_VERSION, "recipe": self.to_dict(), "data": real.fingerprint(),
                   "dsa_strategy": real.dsa_strategy, "num_params": num_params(real, self)}
        return json_sha256(payload, 24)


def template_kwargs(real: RealData, recipe: ExpertRecipe) -> dict[str, Any]:
    """The create_model kwargs of the experts' network for ``real``: shape arguments plus the recipe's kwargs."""
    return {"num_classes": real.num_classes, "in_channels": real.channels, "image_size": real.image_size,
            **recipe.model_kwargs_dict}


def num_params(real: RealData, recipe: ExpertRecipe) -> int:
    """P for the recipe's model on ``real``; built on the meta device (no memory, no random draws)."""
    with torch.device("meta"):
        net = create_model(recipe.model, **template_kwargs(real, recipe))
    return sum(p.numel() for p in net.parameters())


def make_expert_augment(real: RealData, recipe: ExpertRecipe) -> DSA | NoAugmentation:
    """The augmentation applied to every real batch: the dataset's DSA strategy, FYI's variant, or none (the
    identity with DSA's interface, which draws no random numbers)."""
    augment = create_augment(recipe.augment, real=real)
    return NoAugmentation(image_size=real.image_size) if augment is None else augment
