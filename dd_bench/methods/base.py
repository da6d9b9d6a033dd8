"""Synthesizer: the one interface every distillation method implements, and the method registry.

A method is a class with a typed ``Config`` dataclass (its Hydra schema; unknown keys fail) and
``distill(real, *, ipc, seed, ...) -> SyntheticSet``. It is registered under the same lowercase name as its
config file ``conf/method/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.registry import Registry
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection

METHODS: Registry = Registry("method", kind="factory")


class Synthesizer(ABC):
    name: ClassVar[str]
    # True when its sets are scored by a student distilled from their label source (a kd protocol: teachers,
    # stored logits); False when the evaluation networks train on the set's own hard or learned labels (mtt). The
    # demo picks its protocol, models and reference rows by it.
    scored_by_kd: ClassVar[bool] = False
    # Options that make distill() finish in about a second on digits: registry-driven smoke tests use them.
    TEST_OPTIONS: ClassVar[dict[str, Any]] = {}

    @dataclasses.dataclass
    class Config:
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if vars(cls).get("family") == "kd":  # the declaration before scored_by_kd (2026-12): still understood
            warnings.warn(f"method {cls.__name__}: family = 'kd' is deprecated; declare scored_by_kd = True",
                          DeprecationWarning, stacklevel=2)
            cls.scored_by_kd = True

    def __init__(self, **kwargs: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise UserError(f"Unknown option(s) {unknown} for method '{self.name}'; available: "
                            f"{', '.join(sorted(fields)) or '(none)'}")
        self.cfg = self.Config(**_checked_choices(self.name, self.Config, kwargs))

    def smallest_ipc(self, num_classes: int) -> int:
        """The smallest IPC this configuration can distil (INFER: its budget leaves no base set below it)."""
        return 1

    def instances_per_class(self, ipc: int, num_classes: int) -> int:
        """Images per class in the set it distils at ``ipc`` (INFER: base images + composites within the budget)."""
        return ipc

    def labels_for_stored_images(self, synset: SyntheticSet, *, real: RealData, cache_dir: Path | None = None,
                                 progress: bool = True) -> SyntheticSet:
        """The set after ``image_store`` converted its images (uint8 / decoded JPEG): a method whose stored labels
        it computed from the images at distillation (INFER's static logits) remakes them from the stored images,
        as the official scripts compute them from the saved files; every other method returns ``synset``."""
        return synset

    def resolve_options(self, *, real: RealData, ipc: int) -> dict[str, Any]:
        """Options whose value this configuration chooses from the data and device (``auto`` choices), resolved
        before the set is hashed: returned as {option: value that will run} and set on ``self.cfg``. A set's
        identity then names what ran, never ``auto``. Most methods choose nothing."""
        return {}

    def config_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self.cfg)}

    @abstractmethod
    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        """Produce a synthetic set of ``ipc`` images per class from ``real``; deterministic for a seed.

        ``checkpoint_dir``: where to checkpoint and resume (keyed by the config, :mod:`dd_bench.io.checkpoint`);
        ``cache_dir``: the cache root for what the method trains once and shares (experts, teachers).
        """

    def new_synset(self, real: RealData, *, ipc: int, images: torch.Tensor, labels: torch.Tensor,
                   image_encoding: str = "model", **kwargs: Any) -> SyntheticSet:
        """A SyntheticSet carrying this method's name and config and the dataset's image space.

        ``label_section``: the set's labels section (:class:`~dd_bench.synset.labels_section.LabelsSection`); a method
        written before it may still pass ``label_source=`` and a ``label_info=`` dict instead."""
        if "label_source" in kwargs or "label_info" in kwargs:
            info = kwargs.pop("label_info", None) or {}
            kwargs["label_section"] = LabelsSection.from_dict({**info, "source": kwargs.pop("label_source", None)})
        return SyntheticSet(
            images=images.detach(), labels=labels.detach().long(), dataset=real.name, ipc=ipc, method=self.name,
            class_names=list(real.class_names), image_space=image_space_of(real), image_encoding=image_encoding,
            # uint8 coresets are whitened at evaluation too, so a ZCA matrix is their asset as well.
            config=self.config_dict(), eval_assets_bytes=eval_assets_bytes(real),
            **kwargs)


def _checked_choices(method: str, config_cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Enum fields take their members or their values (``"real"``); model fields take registered model names.

    Hydra validates the enums at composition; this makes the Python API (``create_method("dm", init="bogus")``)
    fail as clearly, before any work.
    """
    from dd_bench.models import MODELS, list_models

    hints = typing.get_type_hints(config_cls)
    out = dict(kwargs)
    for name, value in kwargs.items():
        kind = hints.get(name)
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            try:
                out[name] = kind(value.value if isinstance(value, enum.Enum) else value)
            except ValueError:
                raise UserError(f"Unknown {name} {value!r} for method '{method}'; available: "
                                f"{', '.join(m.value for m in kind)}") from None
        elif (name == "model" or name.endswith("_model")) and isinstance(value, str):
            if value not in MODELS and not value.startswith("timm."):
                raise UserError(f"Unknown model {value!r} for method '{method}' option {name}; available: "
                                f"{', '.join(list_models())}")
    return out


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
