"""The labels section of a synthetic set (``meta.json``'s ``labels``), typed: the set's own label source and what
its label sources need. Part of the set format, so it sits beside :mod:`dd_bench.synset`; only the label sources
(:mod:`dd_bench.labels`) interpret it.

Its parts, as ``meta.json`` names them:

========== ====================================================================================================
source     the set's own label source (a name registered in :data:`dd_bench.labels.LABEL_SOURCES`)
teachers   the teachers its labels come from: one spec each (:func:`dd_bench.teachers.spec.teacher_spec`)
weights    the committee weights (null: equal) } how the teachers run online; written together, and not at all
bn_train   BatchNorm on the batch's statistics } by a set whose teachers never run online (INFER's static logits)
bn_split   with bn_train, the parts a batch is split into (CV-DD's BSSL); absent: 1
fkd        stored labels by protocol key (FKD logits, NRR-DD's distances): :func:`dd_bench.labels.fkd.relabel_fkd`'s
           entries
(others)   what one label source keeps for itself, under its own key (``distance``: NRR-DD's loss settings,
           ``projector``: HeLlO's projector, ``static``: how INFER's logits were made), and notes such as
           ``reconstruction``. A source's tensors live in the set's extras as ``<its key>.<name>`` (HeLlO's
           ``projector.*``): label bytes of that source, not extras.
========== ====================================================================================================

``shape``, ``dtype`` and ``stored_bytes`` are written from the tensors at save (:meth:`SyntheticSet.labels_meta`)
and never read back. :meth:`LabelsSection.to_dict` gives back exactly the keys it was read from (or, for a new set,
the ones its method gave), so a set written today has the ``meta.json`` it had when sections were plain dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# The parts every label source may read; everything else in the section belongs to one source (LabelsSection.own).
SHARED_KEYS = ("source", "teachers", "weights", "bn_train", "bn_split", "fkd")
DERIVED_KEYS = ("shape", "dtype", "stored_bytes")  # from the stored tensors, at save


@dataclass
class LabelsSection:
    source: str | None = None  # None until the set fills it in: hard, or learned when soft labels are stored
    teachers: list[dict[str, Any]] | None = None  # None: the section names no teachers
    weights: list[float] | None = None  # committee weights, summing to 1; None: equal
    bn_train: bool | None = None  # None: not written (the teachers never run online)
    bn_split: int | None = None  # None: not written (1)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)  # "fkd": stored-labels entries by key
    own: dict[str, Any] = field(default_factory=dict)  # each source's own parts, by key

    @classmethod
    def from_dict(cls, section: Mapping[str, Any] | None) -> LabelsSection:
        """The section of a ``meta.json`` labels dict (or of a pre-``LabelsSection`` ``label_info`` dict)."""
        section = dict(section or {})
        return cls(source=section.get("source"), teachers=section.get("teachers"), weights=section.get("weights"),
                   bn_train=section.get("bn_train"), bn_split=section.get("bn_split"),
                   stored=dict(section.get("fkd") or {}),
                   own={k: v for k, v in section.items() if k not in SHARED_KEYS + DERIVED_KEYS})

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> LabelsSection:
        """A set's section from its meta.json alone; a version-1 set (no section) has hard or learned labels."""
        section = cls.from_dict(meta.get("labels"))
        if section.source is None:
            section.source = "hard" if meta.get("label_kind", "hard") == "hard" else "learned"
        return section

    @classmethod
    def coerce(cls, section: LabelsSection | Mapping[str, Any] | None) -> LabelsSection:
        """A section, or the same from a meta.json labels dict (callers that still pass dicts)."""
        return section if isinstance(section, LabelsSection) else cls.from_dict(section)

    def to_dict(self) -> dict[str, Any]:
        """The section as meta.json writes it, less the keys derived from the tensors."""
        out: dict[str, Any] = {**self.own, "source": self.source, "fkd": self.stored}
        if self.teachers is not None:
            out["teachers"] = self.teachers
        if self.bn_train is not None or self.weights is not None:
            out["weights"] = self.weights
        if self.bn_train is not None:
            out["bn_train"] = self.bn_train
        if self.bn_split is not None:
            out["bn_split"] = self.bn_split
        return out

    def copy(self) -> LabelsSection:
        return replace(self, teachers=copy.deepcopy(self.teachers), weights=copy.copy(self.weights),
                       stored=copy.deepcopy(self.stored), own=copy.deepcopy(self.own))

    @property
    def stored_bytes(self) -> int:
        """Bytes of every stored-labels entry (the shards under ``<set>/labels/``)."""
        return sum(int(e["bytes"]) for e in self.stored.values())

    def owns_extra(self, name: str) -> bool:
        """Whether the extra tensor ``name`` belongs to a label source (``<its key>.<name>``): label bytes."""
        return "." in name and name.split(".", 1)[0] in self.own
