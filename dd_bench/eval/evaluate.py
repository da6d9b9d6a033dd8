"""The shared evaluator: ``evaluate(synset, real=..., protocol=..., models=..., seeds=...) -> [EvalResult]``.

Every method's set is scored by this one function under a named protocol; methods cannot change it. What trains
is the protocol itself (:meth:`~dd_bench.eval.protocol.EvalProtocol.train_and_score`); this module resolves what
the set gives it (its images in model space, its targets or label source, the protocol's warm images) and records
how the set was stored.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

import torch
import torch.nn.functional as F

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.eval.mtt import make_augment
from dd_bench.eval.protocol import EvalProtocol
from dd_bench.eval.result import EvalResult
from dd_bench.labels import ResolvedLabels, resolve_labels
from dd_bench.synset import SynsetError, SyntheticSet
from dd_bench.synset.compatibility import check_compatible
from dd_bench.train.loop import Replay, Transform

# EvalResult and make_augment lived here before the protocol became the training function: still importable.
__all__ = ["EvalResult", "check_compatible", "evaluate", "labels_for", "make_augment", "storage_with_labels",
           "synset_targets", "train_and_score"]


def synset_targets(synset: SyntheticSet) -> torch.Tensor:
    """Training targets: class indices (N,) for hard labels, probabilities (N, K) for soft labels."""
    if synset.label_kind == "hard":
        return synset.labels
    if synset.label_kind == "soft_logits":
        return F.softmax(synset.soft_labels.float(), dim=-1)
    return synset.soft_labels.float()


def train_and_score(
    *,
    model: str,
    images: torch.Tensor | list[torch.Tensor],
    targets: torch.Tensor | list[torch.Tensor],
    real: RealData,
    protocol: EvalProtocol,
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
    """Train one network per seed under ``protocol`` and score each once on the real test set: the one call through
    which the set's rows, its test-selected checkpoint and the reference rows reach the protocol's
    :meth:`~dd_bench.eval.protocol.EvalProtocol.train_and_score` (see it for the arguments)."""
    return protocol.train_and_score(
        model=model, images=images, targets=targets, real=real, lr=lr, seeds=seeds, transform=transform,
        batched=batched, progress=progress, desc=desc, label_source=label_source, replay=replay,
        warm_images=warm_images)


def labels_for(synset: SyntheticSet, *, real: RealData, protocol: EvalProtocol, label_source=None,
               cache_dir=None, progress: bool = True) -> ResolvedLabels:
    """The label source a set is scored with: a name (``auto`` or None: the set's own), or a source object."""
    if label_source is None or isinstance(label_source, str):
        return resolve_labels(label_source or "auto", synset=synset, real=real, protocol=protocol,
                              cache_dir=cache_dir, progress=progress)
    if isinstance(label_source, ResolvedLabels):
        return label_source
    name = getattr(label_source, "name", "custom")
    assets = {"teachers": label_source.asset_bytes} if hasattr(label_source, "asset_bytes") else {}
    return ResolvedLabels(label_source, name, f"custom:{name}",
                          {"class_ids": synset.labels.numel() * synset.labels.element_size()}, assets)


def storage_with_labels(synset: SyntheticSet, labels: ResolvedLabels) -> dict[str, Any]:
    """The set's bytes as scored: images, the labels this source reads, extras, and every evaluation asset by name.

    ``total_bytes`` is what the set stores for this evaluation (images + these labels + extras);
    ``total_with_assets_bytes`` adds what must be at hand besides it (a ZCA matrix, an online teacher).
    """
    base = synset.storage()
    assets = dict(labels.assets)
    if synset.eval_assets_bytes:
        assets["zca"] = synset.eval_assets_bytes
    total = base["images_bytes"] + labels.stored_bytes + base["extras_bytes"]
    return {**base, "labels_bytes": labels.stored_bytes, "labels_parts": dict(labels.stored),
            "label_source": labels.kind, "eval_assets_bytes": sum(assets.values()), "eval_assets": assets,
            "total_bytes": total, "total_with_assets_bytes": total + sum(assets.values())}


def evaluate(
    synset: SyntheticSet,
    *,
    real: RealData,
    protocol: EvalProtocol,
    models: list[str],
    seeds: list[int],
    batched: bool | None = None,
    progress: bool = True,
    label_source=None,
    cache_dir=None,
) -> list[EvalResult]:
    """Score ``synset`` on every model with one fresh network per seed (seed i = network i).

    ``label_source``: what the student learns from: a registered kind (``auto``/None: the set's own,
    :mod:`dd_bench.labels`), or a source object (e.g. an online teacher). Each result's ``extra`` carries
    the source, its identity and the set's storage as scored (:func:`storage_with_labels`).
    """
    check_compatible(synset, real)
    synset = synset.to(real.device)
    lr = protocol.lr_for(synset.learned_lr)
    if not lr > 0:  # trajectory matching does not constrain the learned lr (MTT#16): it can end negative
        raise SynsetError(f"the set's learned lr is {lr:.4g}: not a usable evaluation lr (distillation drove it "
                          f"below zero). Re-distil with a smaller lr_lr, or evaluate with eval.use_learned_lr=false")
    labels = labels_for(synset, real=real, protocol=protocol, label_source=label_source, cache_dir=cache_dir,
                        progress=progress)
    transform = real.to_model_space if synset.image_encoding == "uint8" else None
    # the set's own targets (hard classes or stored soft labels) for a source an mtt-family protocol trains on
    targets = synset.labels if labels.kd_only else synset_targets(synset)
    if not protocol.trains_by_kd and labels.kd_only:
        raise UserError(f"label source '{labels.kind}' distils by KD: it needs a kd protocol (eval=kd, "
                        f"eval=kd-quick); protocol '{protocol.name}' trains on the set's own labels")
    source = labels.source if protocol.trains_by_kd else None
    warm_images = protocol.warm_images(synset)
    storage = storage_with_labels(synset, labels)
    paper = _paper_selected(synset) if protocol.scores_paper_selection else None
    results = []
    for model in models:
        result = train_and_score(
            model=model, images=synset.images, targets=targets, real=real, protocol=protocol, lr=lr, seeds=seeds,
            transform=transform, batched=batched, progress=progress, label_source=source, replay=labels.replay,
            desc=f"eval {synset.method} ipc{synset.ipc} {model}", warm_images=warm_images)
        result.extra.update(label_source=labels.kind, label_identity=labels.identity, storage=storage,
                            teachers=labels.teachers)
        if paper is not None:
            tested = train_and_score(
                model=model, images=paper.images, targets=synset_targets(paper), real=real, protocol=protocol,
                lr=protocol.lr_for(paper.learned_lr), seeds=seeds, transform=transform, batched=batched,
                progress=progress, desc=f"eval {synset.method} ipc{synset.ipc} {model} (test-selected)")
            result.extra["acc_test_selected"] = {
                "accuracies": tested.accuracies, "mean": statistics.fmean(tested.accuracies),
                "iteration": synset.provenance.get("distill_status", {}).get("selection", {})
                .get("paper_selection", {}).get("best_iteration"),
                "note": "the checkpoint the papers would pick: best on the TEST set; labelled, never ranked"}
        results.append(result)
    return results


def _paper_selected(synset: SyntheticSet) -> SyntheticSet | None:
    """The papers' test-selected checkpoint a set carries under ``paper_selection`` (else None), as a set."""
    if "paper_selected.images" not in synset.extras:
        return None
    soft = synset.extras.get("paper_selected.soft_labels")
    return dataclasses.replace(synset, images=synset.extras["paper_selected.images"],
                               learned_lr=float(synset.extras["paper_selected.learned_lr"].item()),
                               soft_labels=soft if soft is not None else synset.soft_labels, extras={})
