"""IOR: a method's improvement over the random real subset of the same size, in points.

DD-Ranking's IOR (``metrics/soft_label.py``: ``ior = syn - rdm``) with the pairing dd-bench already uses for its
reference rows (:func:`reference_label_kind`, each label source's ``reference_kind``): the random subset is scored
under the same protocol (and version), dataset, IPC and evaluation model, labelled by the label source that matches
the set's own: hard labels for hard and learned labels, the set's teachers online for every teacher-made source
(teacher, fkd and its compressed forms, distance, projector), the teachers' static logits for static ones, and always
by the same teachers. Where no such reference row exists, IOR is empty: never taken from another protocol, label
source or teacher.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from dd_bench.labels.registry import reference_label_kind
from dd_bench.results.record import RunRecord

__all__ = ["ior_by_record", "random_reference_for", "reference_label_kind"]


def _teacher_keys_of_reference(record: RunRecord) -> tuple[str, ...]:
    # "teacher:k1,k2[:bn_train...]" or "static:teacher:k1,k2..." (dd_bench.labels.teacher.committee_identity)
    identity = str(record.extra.get("label_identity") or "")
    if "teacher:" not in identity:
        return ()
    return tuple(identity.split("teacher:", 1)[1].split(":", 1)[0].split(","))


def _teacher_keys_of_set(record: RunRecord) -> tuple[str, ...]:
    return tuple(str(t.get("key")) for t in record.extra.get("teachers") or [] if isinstance(t, dict))


def _label_source(record: RunRecord) -> str:
    return str((record.storage or {}).get("label_source") or ("hard" if record.label_kind in (None, "hard")
                                                              else "learned"))


def _block(record: RunRecord) -> tuple:
    return (record.protocol, record.protocol_version, record.dataset, record.ipc, record.model)


def random_reference_for(record: RunRecord, references: list[RunRecord]) -> RunRecord | None:
    """The random-subset reference row IOR subtracts for ``record`` (an evaluation record), or None.

    Several candidates (other seed lists) are narrowed to the one with the record's seeds, else the newest."""
    kind = reference_label_kind(_label_source(record))
    keys = _teacher_keys_of_set(record) if kind != "hard" else ()
    if kind != "hard" and not keys:
        return None  # a teacher-made source whose teachers the record does not name: nothing to pair it with
    candidates = [r for r in references
                  if r.kind == "reference" and r.method == "random_subset" and _block(r) == _block(record)
                  and _label_source(r) == kind and (kind == "hard" or _teacher_keys_of_reference(r) == keys)]
    if not candidates:
        return None
    same_seeds = [r for r in candidates if list(r.seeds) == list(record.seeds)]
    return max(same_seeds or candidates, key=lambda r: (r.created or "", r.record_id))


def ior_by_record(records: Iterable[RunRecord]) -> dict[str, float]:
    """IOR in points for every evaluation record (by ``record_id``); NaN where no paired reference row exists."""
    records = list(records)
    references = [r for r in records if r.kind == "reference"]
    out = {}
    for rec in records:
        if rec.kind != "evaluation":
            continue
        ref = random_reference_for(rec, references)
        out[rec.record_id] = math.nan if ref is None else float(rec.acc_mean) - float(ref.acc_mean)
    return out
