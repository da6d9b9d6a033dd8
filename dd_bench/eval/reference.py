"""Reference rows scored under the same protocol as every method: the full training set, and random real
subsets of the same size as a synthetic set (seed i trains network i on subset i; the indices are recorded).

References cost as much as the methods they anchor, so results are cached on disk (the ``references`` store
under the cache root, :mod:`dd_bench.io`) by a key of everything that changes them (dataset contents, protocol,
model, seeds, ipc, device type) and reused by later runs; parallel jobs asking for the same row compute it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.errors import UserError
from dd_bench.eval.evaluate import EvalResult, train_and_score
from dd_bench.eval.protocol import EvalProtocol
from dd_bench.io import KeyedStore, atomic_write_json, json_sha256
from dd_bench.registry import Registry
from dd_bench.seeding import make_generator
from dd_bench.synset.labels_section import LabelsSection

_CACHE_VERSION = 1
TrainingSet = tuple[torch.Tensor | list[torch.Tensor], torch.Tensor | list[torch.Tensor], dict[str, Any]]


@dataclass(frozen=True)
class ReferenceKind:
    """One kind of reference row: what its networks train on, and how rows of it are asked for."""

    # (real, ipc, seeds) -> (images, targets, what to record): one tensor for every seed, or a list, one per seed.
    training_set: Callable[[RealData, int | None, list[int]], TrainingSet]
    per_ipc: bool  # one row per set size (ipc given) beside the sets it anchors; else one row for the data set
    teacher_labels: bool = False  # its rows can also learn from a set's teachers (DD-Ranking's same-label comparison)


# Registration order is the order rows are computed and written (reference_records).
REFERENCES: Registry[ReferenceKind] = Registry("reference kind", kind="spec", sort=False)


def get_reference_kind(kind: str) -> ReferenceKind:
    return REFERENCES.get(kind)


def random_subset_indices(real: RealData, ipc: int, seed: int) -> torch.Tensor:
    return class_balanced_indices(real.train_labels, ipc, real.num_classes,
                                  generator=make_generator(seed, "reference", "random_subset", ipc))


def _full_data(real: RealData, ipc: int | None, seeds: list[int]) -> TrainingSet:
    return real.train_images, real.train_labels, {}


def _random_subsets(real: RealData, ipc: int | None, seeds: list[int]) -> TrainingSet:
    """Seed i trains on subset i, drawn class-balanced with ``ipc`` images per class; the indices are recorded."""
    subsets = [random_subset_indices(real, ipc, s) for s in seeds]
    return ([real.train_images[i] for i in subsets], [real.train_labels[i] for i in subsets],
            {"subset_indices": [i.cpu().tolist() for i in subsets]})


REFERENCES.register("full_data")(ReferenceKind(_full_data, per_ipc=False))
REFERENCES.register("random_subset")(ReferenceKind(_random_subsets, per_ipc=True, teacher_labels=True))
# The kind names as the tuple this module held before the registry (kept for code that imports it).
REFERENCE_KINDS = tuple(REFERENCES.list())


def _cache_key(kind: str, real: RealData, protocol: EvalProtocol, model: str, seeds: list[int], ipc: int | None,
               labels: str = "hard") -> str:
    payload = {"v": _CACHE_VERSION, "kind": kind, "data": real.fingerprint(), "protocol": protocol.to_dict(),
               "model": model, "seeds": seeds, "ipc": ipc, "device": real.device.type}
    if labels != "hard":  # hard-label rows keep their keys from before label sources
        payload["labels"] = labels
    return json_sha256(payload, 24)


def _read_cache(path: Path) -> EvalResult | None:
    try:
        d = json.loads(path.read_text())
        d.pop("acc_mean", None)
        d.pop("acc_std", None)
        return EvalResult(**d)
    except (OSError, ValueError, TypeError):
        return None


def reference_result(
    kind: str,
    real: RealData,
    *,
    protocol: EvalProtocol,
    model: str,
    seeds: list[int],
    ipc: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    teachers: LabelsSection | dict | None = None,
    static: bool = False,
) -> tuple[EvalResult, bool]:
    """Score a reference row; returns (result, came_from_cache). ``ipc`` is required for random subsets.

    ``teachers``: a set's labels section (``teachers``, ``weights``, ``bn_train``): the random subsets are then
    distilled from those teachers online, as the method's set is (DD-Ranking's same-label-source comparison).
    ``static``: instead, the teachers' (weighted) mean logits on each subset's clean images, computed once and
    stored, as INFER's static labels are (interpolated as logits under MixUp).
    """
    spec = get_reference_kind(kind)
    if spec.per_ipc and ipc is None:
        raise ValueError(f"{kind} references need ipc")
    store = KeyedStore("references", cache_dir)
    from dd_bench.labels.teacher import committee_identity

    labels = "hard" if teachers is None else ("static:" if static else "") + committee_identity(teachers)
    if teachers is not None and (not spec.teacher_labels or not protocol.trains_by_kd):
        raise UserError("teacher-labelled references are random subsets under a kd protocol")
    if static and teachers is None:
        raise ValueError("static references need the teachers that make their logits")
    key = _cache_key(kind, real, protocol, model, seeds, ipc, labels)
    path = store.path(key, ".json")
    cached = _read_cache(path) if path.is_file() else None
    if cached is not None:
        return cached, True
    with store.lock(key):  # a parallel job computing the same row: wait for it and reuse its result
        cached = _read_cache(path) if path.is_file() else None
        if cached is not None:
            return cached, True
        result = _compute(kind, real, protocol=protocol, model=model, seeds=seeds, ipc=ipc, progress=progress,
                          teachers=teachers, static=static, cache_dir=cache_dir)
        atomic_write_json(path, result.to_dict(), indent=None)
    return result, False


def _compute(kind: str, real: RealData, *, protocol: EvalProtocol, model: str, seeds: list[int], ipc: int | None,
             progress: bool, teachers: LabelsSection | dict | None = None, static: bool = False,
             cache_dir: Path | None = None) -> EvalResult:
    images, targets, extra = get_reference_kind(kind).training_set(real, ipc, seeds)
    source = None
    if teachers is not None:
        from dd_bench.labels.teacher import committee_labels

        resolved = committee_labels(teachers, real=real, protocol=protocol, cache_dir=cache_dir, progress=progress,
                                    stored={})
        source = [resolved.source] * len(seeds)
        extra = {**extra, "label_source": "teacher", "label_identity": resolved.identity,
                 "eval_assets": resolved.assets}
        if static:
            from dd_bench.labels.static import StaticLogits

            # (ipc * C, C) float32 logits per subset, on the clean images in chunks of 512 (eval-mode teachers).
            logits = [torch.cat([resolved.source.logits(real.to_model_space(im[i:i + 512]))
                                 for i in range(0, len(im), 512)]) for im in images]
            source = [StaticLogits(z, protocol.temperature) for z in logits]
            extra = {**extra, "label_source": "static", "label_identity": "static:" + resolved.identity,
                     "eval_assets": {}, "static_logits_bytes": logits[0].numel() * logits[0].element_size()}
    result = train_and_score(
        model=model, images=images, targets=targets, real=real, protocol=protocol, lr=protocol.lr, seeds=seeds,
        transform=real.to_model_space, progress=progress, label_source=source,
        desc=f"reference {kind}{'' if ipc is None else f' ipc{ipc}'} {model}"
             f"{(' static' if static else ' teacher') if source else ''}")
    result.extra.update(extra, reference=kind)
    return result
