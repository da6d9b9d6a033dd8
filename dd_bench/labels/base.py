"""What a label source is: one object per kind, registered once, that owns the kind's whole life.

A kind answers, for a set's :class:`~dd_bench.synset.labels_section.LabelsSection` (read only through these objects):

* ``identity(section, protocol=..., label_kind=...)``: the string the record hash covers, from ``meta.json`` alone
  (before anything is loaded): a set scored with another source, teacher or stored labels is another record;
* ``resolve(ctx)``: the per-batch source the student learns from (:class:`~dd_bench.train.targets.LabelSource`,
  ``targets(x_aug, idx, epoch, aug_params) -> Targets``), with the bytes it reads from the set by part, its
  evaluation assets by name, and stored batches to replay;
* ``stored_key(protocol)`` and ``recorder(...)``: the stored labels it reads, and what relabelling stores per
  augmented batch to make them (:mod:`dd_bench.labels.relabel`); none for a source that stores nothing;
* ``export_assets(section, cache_dir=...)`` and ``needs_at_evaluation(section)``: the files an export bundles for
  it and what its datasheet says it needs (the section's teachers are everyone's: :mod:`dd_bench.labels.teacher`);
* ``reference_kind``: the random-subset reference row it is compared with (``hard``, ``teacher``: the set's teachers
  online, ``static``: their logits stored), for the reference rows beside a set and the board's IOR.

A kind may stand for a family of names (``fkd_top<k>``): :meth:`LabelSourceKind.for_name` gives the member.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dd_bench.errors import UserError
from dd_bench.registry import Registry
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.targets import LabelSource

REFERENCE_KINDS = ("hard", "teacher", "static")  # how a random-subset reference row is labelled

# What relabelling stores per augmented batch: (x_aug (B, C, H, W), idx (B,), augmentation params) -> named tensors,
# each (B, ...), for the shard of the epoch.
Recorder = Callable[[Any, Any, dict[str, Any]], dict[str, Any]]


@dataclass
class ResolvedLabels:
    source: LabelSource
    kind: str
    identity: str  # what the record hash covers: the kind, and for teachers their keys and BN mode
    stored: dict[str, int]  # bytes stored in the set for these labels, by part
    assets: dict[str, int] = field(default_factory=dict)  # bytes needed at evaluation besides the set, by name
    replay: Any = None  # stored batches the evaluator must replay (fkd)
    teachers: list[dict[str, Any]] = field(default_factory=list)  # specs of the teachers involved
    # False: an mtt-family (non-KD) protocol trains on the set's own targets (hard classes or stored soft labels);
    # True: only a kd protocol can use it (set from the kind's ``kd_only``; a custom source object is KD)
    kd_only: bool = True

    @property
    def stored_bytes(self) -> int:
        return sum(self.stored.values())

    @property
    def asset_bytes(self) -> int:
        return sum(self.assets.values())


@dataclass
class LabelContext:
    synset: Any  # SyntheticSet (on the evaluation device)
    real: Any  # RealData
    protocol: Any  # EvalProtocol | KDProtocol
    cache_dir: Path | None = None
    progress: bool = True

    @property
    def kd(self) -> bool:
        return self.protocol.trains_by_kd

    @property
    def section(self) -> LabelsSection:
        return self.synset.label_section

    def class_id_bytes(self) -> dict[str, int]:
        return {"class_ids": self.synset.labels.numel() * self.synset.labels.element_size()}


@dataclass(frozen=True)
class ExportAsset:
    """A cached file or directory a set's labels need at evaluation, copied into an export's ``assets/``."""

    what: str  # how the datasheet names it when it is missing
    source: Path | None  # the cached file or directory; None: needed, but nothing to copy (e.g. a built-in model)
    target: str  # its path in the export ("assets/teachers/<key>")
    files: tuple[str, ...] = ()  # a directory's files to copy, the first the one whose bytes count; (): a file

    @property
    def present(self) -> bool:
        if self.source is None:
            return False
        return (self.source / self.files[0]).is_file() if self.files else self.source.is_file()


class LabelSourceKind(ABC):
    """One kind of label source (see the module docstring); subclasses set ``name`` and register an instance."""

    name: str = ""
    kd_only: bool = True  # distils by KD: only under a kd protocol
    reference_kind: str = "hard"  # the random-subset row it is compared with (REFERENCE_KINDS)

    def for_name(self, name: str) -> LabelSourceKind | None:
        """The kind a label source name asks for, when this registered kind answers it (a family: its member)."""
        return self if name == self.name else None

    @abstractmethod
    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        """What the record hash covers, from the set's section and stored-label kind (``meta.json`` alone)."""

    @abstractmethod
    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        """The source for ``ctx.synset`` under ``ctx.protocol``, with its bytes and assets."""

    def stored_key(self, protocol: Any) -> str | None:
        """The key of the stored labels it reads under ``protocol`` (``<set>/labels/<key>``); None: it reads none."""
        return None

    def recorder(self, *, teacher: Any, labels: Any, num_classes: int) -> Recorder | None:
        """What relabelling stores per augmented batch for it; None: the teacher's fp16 logits (FKD's)."""
        return None

    def export_assets(self, section: LabelsSection, *, cache_dir: Path | None) -> list[ExportAsset]:
        """Its own files an export bundles for a set with this section (the section's teachers are not its own)."""
        return []

    def needs_at_evaluation(self, section: LabelsSection) -> list[str]:
        """Its own needs at evaluation, for the datasheet (besides the section's teachers)."""
        return []

    def check_kd(self, ctx: LabelContext) -> None:
        if self.kd_only and not ctx.kd:
            raise UserError(f"label source '{self.name}' distils by KD: it needs a kd protocol (eval=kd, "
                            f"eval=kd-quick); protocol '{ctx.protocol.name}' trains on the set's own hard or "
                            "learned labels")


# One object per kind (a family such as fkd_top<k> under its pattern name), filled by the files of dd_bench/labels/:
# a spec registry (objects are looked up, never created).
LABEL_SOURCES: Registry[LabelSourceKind] = Registry("label source", kind="spec")

K = TypeVar("K", bound=type[LabelSourceKind])


def register_label_source(cls: K) -> K:
    """Class decorator: register one instance of a :class:`LabelSourceKind` under its ``name``."""
    kind = cls()
    if kind.reference_kind not in REFERENCE_KINDS:
        raise ValueError(f"label source '{kind.name}': reference_kind is one of {REFERENCE_KINDS}")
    LABEL_SOURCES.register(kind.name)(kind)
    return cls
