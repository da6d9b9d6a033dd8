"""The evaluation protocol: one type for every frozen, versioned recipe named in a run record, and its registry.

A protocol is the function that trains and scores: :meth:`EvalProtocol.train_and_score` trains one fresh network
per seed under its recipe and scores each once on the real test set. Its implementations are frozen dataclasses
whose fields are their identity (``to_dict()`` is hashed into every record):

* :mod:`dd_bench.eval.mtt`: ``mtt`` (the ranking protocol: the official ``evaluate_synset`` of DC/DSA/DM/MTT/FTD/DATM),
  ``quick`` (its CPU demo), and the paper comparisons ``mtt-datm``, ``mtt-fyi``, ``dc`` (DC's dataset rule) and
  ``mtt-ftd-warm`` (FTD's warm start);
* :mod:`dd_bench.eval.kd`: ``kd`` (a student distilled from a label source) and its paper comparisons.

Callers never switch on a protocol's ``family``: they ask what they need (``trains_by_kd``, ``cpu_protocol``,
``warm_images(synset)``, ``without_augmentation()``, ...), and the protocol answers.
"""

from __future__ import annotations

import dataclasses
import enum
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from dd_bench.errors import UserError
from dd_bench.registry import Registry

if TYPE_CHECKING:
    import torch

    from dd_bench.data import RealData
    from dd_bench.eval.result import EvalResult
    from dd_bench.synset import SyntheticSet
    from dd_bench.train.loop import Replay, Transform

PROTOCOLS: Registry = Registry("protocol", kind="spec")

# Fields that name a protocol rather than train with it: custom and no-augmentation variants take them from the base.
_IDENTITY_FIELDS = ("name", "ranked", "version", "description")


class EvalProtocol(ABC):
    """What every protocol answers. Implementations are frozen dataclasses: their fields (``name``, ``version``,
    ``ranked``, ``description``, ``test_batch_size`` and the recipe's own) are the protocol's identity; the class
    attributes below are answers, not fields, so they are never hashed."""

    # The recipe family's name ("mtt", "kd"), for records and messages; what a caller needs is asked below.
    family: ClassVar[str]
    # True when the student is distilled from a label source (an online teacher, stored FKD logits, static logits,
    # ...: relabelling, materialised labels and teacher-labelled reference rows need it); False when it trains on
    # the set's own hard or learned labels.
    trains_by_kd: ClassVar[bool]
    # The registered CPU demo protocol of the same recipe (what help suggests trying first on a CPU).
    cpu_protocol: ClassVar[str]
    # True when a trajectory-matching set's test-selected checkpoint (the number the papers report) is scored beside
    # the set under this recipe; recipes that distil from label sources never report it.
    scores_paper_selection: ClassVar[bool]
    # The field values that turn the recipe's training augmentation off (DD-Ranking's ARS).
    augmentation_off: ClassVar[dict[str, Any]]

    name: str
    version: int
    ranked: bool
    description: str
    test_batch_size: int

    @property
    @abstractmethod
    def length(self) -> str:
        """Its training length in the recipe's own unit, for help texts ("1001 passes", "400 epochs")."""

    @abstractmethod
    def lr_for(self, learned_lr: float | None) -> float:
        """The lr the networks train with, given the set's learned lr (None when it has none)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The identity hashed into every record: its keys, values and order are frozen (test_protocol_hashes)."""

    def warm_images(self, synset: SyntheticSet) -> torch.Tensor | None:
        """Images each seed's network learns before the set's own (FTD's warm start), or None: a fresh network."""
        return None

    @abstractmethod
    def train_and_score(
        self,
        *,
        model: str,
        images: torch.Tensor | list[torch.Tensor],
        targets: torch.Tensor | list[torch.Tensor],
        real: RealData,
        lr: float,
        seeds: list[int],
        transform: Transform | None,
        batched: bool | None = None,
        progress: bool = True,
        desc: str = "",
        label_source: Any = None,
        replay: Replay | None = None,
        warm_images: torch.Tensor | None = None,
    ) -> EvalResult:
        """Train one fresh ``model`` per seed on ``(images, targets)`` and score each once on ``real``'s test set,
        timing it and its peak memory.

        images: (N, C, H, W), or one tensor per seed (random subsets); targets: (N,) int64 class indices or (N, K)
        probabilities, one per seed likewise. ``transform``: the images' way into model space (uint8 sets), or
        None. ``label_source``: what a kd student learns from (None: the targets themselves); ``replay``: stored
        batches to replay (FKD labels); ``warm_images``: see :meth:`warm_images`.
        """

    def without_augmentation(self) -> EvalProtocol:
        """This recipe with its training augmentation off (DD-Ranking's ARS), as an unranked ``<base>+custom``."""
        kept = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _IDENTITY_FIELDS}
        return custom_protocol(self.name.split("+")[0], **{**kept, **self.augmentation_off})


def register_protocol(protocol: EvalProtocol) -> EvalProtocol:
    """Add a frozen protocol to :data:`PROTOCOLS` under its name (``conf/eval/<name>.yaml`` selects it)."""
    return PROTOCOLS.register(protocol.name)(protocol)


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name`` (``mtt``, ``kd``, ``quick``, ...; ``conf/eval/<name>.yaml``'s stem).

    An unknown name raises :class:`~dd_bench.errors.UserError` listing the registered ones.
    """
    return PROTOCOLS.get(name)


def custom_protocol(base: str, **overrides: Any) -> EvalProtocol:
    """A variant of a registered protocol; it is unranked and named ``<base>+custom`` so it never poses as it."""
    protocol = get_protocol(base)
    fields = {f.name for f in dataclasses.fields(protocol)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"Unknown field(s) {unknown} for protocol '{base}'; available: {', '.join(sorted(fields))}")
    overrides = {k: v.value if isinstance(v, enum.Enum) else v for k, v in overrides.items()}
    return dataclasses.replace(protocol, **overrides, name=f"{base}+custom", ranked=False)


# Names this module held before the recipes moved to eval/mtt.py and eval/kd.py: imported from there on first use
# (a module-level import would be circular, as those modules register into PROTOCOLS).
_MOVED = {"Augment": "dd_bench.eval.mtt", "AUGMENT_KINDS": "dd_bench.eval.mtt", "MTTProtocol": "dd_bench.eval.mtt",
          "DatasetRuleProtocol": "dd_bench.eval.mtt", "WarmStartProtocol": "dd_bench.eval.mtt",
          "KDProtocol": "dd_bench.eval.kd"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
