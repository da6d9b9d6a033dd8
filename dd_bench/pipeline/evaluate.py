"""Score a saved set and write one record per model: a record of this set, protocol, model, seeds and label source
that already exists is kept (unless ``rerun``), so a killed sweep resumes where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.eval import EvalProtocol, EvalResult, evaluate
from dd_bench.labels import label_identity
from dd_bench.labels.relabel import ensure_stored_labels
from dd_bench.results import RunRecord, collect_provenance, provenance_fields, write_record
from dd_bench.results.keys import record_hash, set_identity
from dd_bench.results.record import read_record, record_path
from dd_bench.synset import SyntheticSet, load_synset, read_meta


def evaluation_hash(*, meta: dict[str, Any], protocol: EvalProtocol, model: str, seeds: list[int],
                    label_source: str = "auto") -> str:
    """The record hash of scoring the set described by ``meta`` (its meta.json) under this protocol and model, with
    this label source (its identity: hard labels hash as before the labels section, teachers by their keys)."""
    return record_hash(set_id=set_identity(meta), protocol=protocol.to_dict(), model=model, seeds=seeds,
                       label_source=label_identity(meta, label_source, protocol))


def records_from_results(
    results: list[EvalResult],
    *,
    synset: SyntheticSet,
    synset_dir: Path,
    protocol: EvalProtocol,
    distill_seconds: float | None,
    config: dict[str, Any],
    device: torch.device,
    label_source: str = "auto",
) -> list[RunRecord]:
    prov = provenance_fields(collect_provenance(device))
    meta = read_meta(synset_dir)
    records = []
    for r in results:
        records.append(RunRecord(
            kind="evaluation", method=synset.method, dataset=synset.dataset, ipc=synset.ipc, protocol=r.protocol,
            protocol_version=r.protocol_version, model=r.model, seeds=r.seeds, accuracies=r.accuracies,
            ranked=protocol.ranked, storage=r.extra.get("storage") or synset.storage(),
            distill_seconds=distill_seconds,
            eval_seconds=r.eval_seconds, peak_memory=r.peak_memory, config=config, preset=synset.preset,
            synset=str(synset_dir), synset_sha256=meta["tensors_sha256"], label_kind=synset.label_kind,
            set_hash=meta.get("set_hash"),
            record_hash=evaluation_hash(meta=meta, protocol=protocol, model=r.model, seeds=r.seeds,
                                        label_source=label_source),
            extra={"eval_lr": r.lr, "batched": r.batched, "protocol": protocol.to_dict(),
                   "label_source": r.extra.get("label_source"), "label_identity": r.extra.get("label_identity"),
                   "teachers": r.extra.get("teachers"),
                   "best_during_training": r.extra.get("best_during_training"),
                   "acc_test_selected": r.extra.get("acc_test_selected"),
                   "distill_status": synset.provenance.get("distill_status", {}),
                   "preset_verified": config.get("verified"), "preset_published": config.get("published")},
            **prov))
    return records


def evaluate_to_records(
    *,
    synset_dir: Path,
    real: RealData,
    protocol: EvalProtocol,
    models: list[str],
    seeds: list[int],
    results_dir: Path,
    config: dict[str, Any],
    batched: bool | None = None,
    progress: bool = True,
    rerun: bool = False,
    label_source: str = "auto",
    cache_dir: Path | None = None,
    relabel: bool = False,
) -> tuple[list[RunRecord], list[RunRecord]]:
    """Evaluate the set in ``synset_dir`` on every model whose record is missing (every model with ``rerun``) and
    write one record per model. Returns (new records, existing records that were kept).

    ``label_source``: a registered kind or ``auto`` (the set's own); ``relabel``: make missing stored (fkd) labels
    for this protocol first (``dd-bench run`` does; ``dd-bench evaluate`` fails naming ``dd-bench relabel``).
    """
    meta = read_meta(synset_dir)
    if relabel and ensure_stored_labels(synset_dir=Path(synset_dir), real=real, protocol=protocol,
                                        label_source=label_source, cache_dir=cache_dir, progress=progress):
        meta = read_meta(synset_dir)
    kept, todo = [], []
    for model in models:
        found = read_record(record_path(evaluation_hash(meta=meta, protocol=protocol, model=model, seeds=seeds,
                                                        label_source=label_source)[:16], results_dir))
        if found is not None and not rerun:
            kept.append(found)
        else:
            todo.append(model)
    if not todo:
        return [], kept
    synset = load_synset(synset_dir)
    results = evaluate(synset, real=real, protocol=protocol, models=todo, seeds=seeds, batched=batched,
                       progress=progress, label_source=label_source, cache_dir=cache_dir)
    records = records_from_results(results, synset=synset, synset_dir=Path(synset_dir), protocol=protocol,
                                   distill_seconds=synset.provenance.get("distill_seconds"), config=config,
                                   device=real.device, label_source=label_source)
    for rec in records:
        write_record(rec, results_dir)
    return records, kept
