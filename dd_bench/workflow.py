"""The distill -> save -> evaluate -> record pipeline, as library functions with explicit keyword arguments.

The CLI (and the demo) adapt the Hydra config to these calls; nothing here reads a config object. Every output is
keyed by its config (:mod:`dd_bench.results.keys`): a set whose directory already holds this set hash, or a record
whose file already exists, is reused unless ``rerun`` is set, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.data.ipc import check_ipc
from dd_bench.errors import UserError
from dd_bench.eval import EvalProtocol, EvalResult, evaluate, reference_result
from dd_bench.io.store import path_lock
from dd_bench.methods import create_method
from dd_bench.methods.base import eval_assets_bytes, image_space_of
from dd_bench.results import RunRecord, collect_provenance, provenance_fields, write_record
from dd_bench.results.keys import record_hash, reference_hash, set_identity
from dd_bench.results.provenance import PeakMemory
from dd_bench.results.record import read_record, record_path
from dd_bench.synset import SynsetError, SyntheticSet, load_synset, read_meta, save_synset


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU; anything else is checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"Unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' was asked for but CUDA is not available here; use device=cpu or auto")
    return device


def existing_set(out: Path) -> dict[str, Any] | None:
    """meta.json of a complete set in ``out`` (meta.json is written last), or None."""
    try:
        return read_meta(out) if (Path(out) / "meta.json").is_file() else None
    except SynsetError:
        return None


def distill_to_disk(
    *,
    method: str,
    method_kwargs: dict[str, Any],
    real: RealData,
    ipc: int,
    seed: int,
    out: Path,
    preset: str | None = None,
    progress: bool = True,
    validation: dict[str, Any] | None = None,
    set_hash: str | None = None,
    cache_dir: Path | None = None,
    rerun: bool = False,
) -> tuple[SyntheticSet, float, bool]:
    """Distil a set into ``out`` (checkpoints under ``out/.checkpoint``); returns (set, seconds, reused).

    With ``set_hash``, a complete set of that hash already in ``out`` is returned as it is (``reused``) unless
    ``rerun``; a set of another hash there is an error unless ``rerun`` (two configs never share a directory).
    ``validation``: a description of the held-out split ``real`` already excludes, recorded in the provenance.
    """
    check_ipc(real, ipc)
    synthesizer = create_method(method, **method_kwargs)
    out = Path(out)
    with path_lock(out):  # a second job of the same config waits here, then reuses the first one's set
        meta = existing_set(out)
        if meta is not None and not rerun:
            if set_hash is not None and meta.get("set_hash") == set_hash:
                synset = load_synset(out)
                return synset, float(synset.provenance.get("distill_seconds") or 0.0), True
            if set_hash is not None:
                raise UserError(f"out={out} holds another config's set (set hash {str(meta.get('set_hash'))[:12]}, "
                                f"this config's is {set_hash[:12]}); choose another out= or pass rerun=true "
                                "to replace it")
        out.mkdir(parents=True, exist_ok=True)
        tracker = PeakMemory(real.device)
        start = time.perf_counter()
        with tracker:
            synset = synthesizer.distill(real, ipc=ipc, seed=seed, progress=progress,
                                         checkpoint_dir=out / ".checkpoint", cache_dir=cache_dir)
        seconds = time.perf_counter() - start
        synset.preset = preset
        synset.set_hash = set_hash
        synset.provenance = {**collect_provenance(real.device), **synset.provenance, "seed": seed,
                             "distill_seconds": seconds, "peak_memory": tracker.as_dict(),
                             "validation": validation}
        status = synset.provenance.get("distill_status", {})
        if status.get("stopped_early"):
            print(f"warning: {method} stopped early: {status.get('reason')}; the last good state was saved")
        preview = None if synset.image_encoding == "uint8" else real.to_pixel_space(synset.images.to(real.device))
        save_synset(synset, out, preview_pixels=preview)
    return synset, seconds, False


def evaluation_hash(*, meta: dict[str, Any], protocol: EvalProtocol, model: str, seeds: list[int]) -> str:
    """The record hash of scoring the set described by ``meta`` (its meta.json) under this protocol and model."""
    return record_hash(set_id=set_identity(meta), protocol=protocol.to_dict(), model=model, seeds=seeds,
                       label_source=meta.get("label_kind", "hard"))


def records_from_results(
    results: list[EvalResult],
    *,
    synset: SyntheticSet,
    synset_dir: Path,
    protocol: EvalProtocol,
    distill_seconds: float | None,
    config: dict[str, Any],
    device: torch.device,
) -> list[RunRecord]:
    prov = provenance_fields(collect_provenance(device))
    meta = read_meta(synset_dir)
    records = []
    for r in results:
        records.append(RunRecord(
            kind="evaluation", method=synset.method, dataset=synset.dataset, ipc=synset.ipc, protocol=r.protocol,
            protocol_version=r.protocol_version, model=r.model, seeds=r.seeds, accuracies=r.accuracies,
            ranked=protocol.ranked, storage=synset.storage(), distill_seconds=distill_seconds,
            eval_seconds=r.eval_seconds, peak_memory=r.peak_memory, config=config, preset=synset.preset,
            synset=str(synset_dir), synset_sha256=meta["tensors_sha256"], label_kind=synset.label_kind,
            set_hash=meta.get("set_hash"),
            record_hash=evaluation_hash(meta=meta, protocol=protocol, model=r.model, seeds=r.seeds),
            extra={"eval_lr": r.lr, "batched": r.batched, "protocol": protocol.to_dict(),
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
) -> tuple[list[RunRecord], list[RunRecord]]:
    """Evaluate the set in ``synset_dir`` on every model whose record is missing (every model with ``rerun``) and
    write one record per model. Returns (new records, existing records that were kept)."""
    meta = read_meta(synset_dir)
    kept, todo = [], []
    for model in models:
        found = read_record(record_path(evaluation_hash(meta=meta, protocol=protocol, model=model, seeds=seeds)[:16],
                                        results_dir))
        if found is not None and not rerun:
            kept.append(found)
        else:
            todo.append(model)
    if not todo:
        return [], kept
    synset = load_synset(synset_dir)
    results = evaluate(synset, real=real, protocol=protocol, models=todo, seeds=seeds, batched=batched,
                       progress=progress)
    records = records_from_results(results, synset=synset, synset_dir=Path(synset_dir), protocol=protocol,
                                   distill_seconds=synset.provenance.get("distill_seconds"), config=config,
                                   device=real.device)
    for rec in records:
        write_record(rec, results_dir)
    return records, kept


def reference_storage(real: RealData, num_images: int) -> dict[str, Any]:
    """Storage of a reference row as if stored like a ``random`` set: uint8 pixels, int64 labels, ZCA as asset."""
    as_set = SyntheticSet(images=real.train_images[:num_images], labels=real.train_labels[:num_images].long(),
                          dataset=real.name, ipc=0, method="reference", class_names=list(real.class_names),
                          image_space=image_space_of(real), image_encoding="uint8",
                          eval_assets_bytes=eval_assets_bytes(real))
    return as_set.storage()


def reference_records(
    *,
    real: RealData,
    protocol: EvalProtocol,
    models: list[str],
    seeds: list[int],
    ipcs: list[int],
    results_dir: Path,
    kinds: tuple[str, ...] = ("full_data", "random_subset"),
    full_data_seeds: list[int] | None = None,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> list[RunRecord]:
    """Full-data and random-subset reference rows (cached on disk), written as records of kind 'reference'.

    ``full_data_seeds``: the seeds of the full-data row (default: ``seeds``; an empty list skips the row).
    """
    from dd_bench.eval.reference import REFERENCE_KINDS

    unknown = sorted(set(kinds) - set(REFERENCE_KINDS))
    if unknown:
        raise UserError(f"Unknown reference kind(s) {unknown}; available: {', '.join(REFERENCE_KINDS)}")
    prov = provenance_fields(collect_provenance(real.device))
    full_seeds = seeds if full_data_seeds is None else full_data_seeds
    jobs: list[tuple[str, int | None, list[int]]] = []
    if "full_data" in kinds and full_seeds:
        jobs.append(("full_data", None, full_seeds))
    if "random_subset" in kinds:
        jobs += [("random_subset", ipc, seeds) for ipc in ipcs]
    records = []
    for model in models:
        for kind, ipc, job_seeds in jobs:
            r, cached = reference_result(kind, real, protocol=protocol, model=model, seeds=job_seeds, ipc=ipc,
                                         progress=progress, cache_dir=cache_dir)
            n_images = len(real.train_labels) if ipc is None else ipc * real.num_classes
            rec = RunRecord(
                kind="reference", method=kind, dataset=real.name, ipc=ipc, protocol=r.protocol,
                protocol_version=r.protocol_version, model=model, seeds=r.seeds, accuracies=r.accuracies,
                ranked=protocol.ranked, storage=reference_storage(real, n_images), eval_seconds=r.eval_seconds,
                peak_memory=r.peak_memory, label_kind="hard",
                record_hash=reference_hash(reference=kind, data_fingerprint=real.fingerprint(), ipc=ipc,
                                           protocol=protocol.to_dict(), model=model, seeds=r.seeds),
                extra={**r.extra, "protocol": protocol.to_dict(), "from_cache": cached}, **prov)
            write_record(rec, results_dir)
            records.append(rec)
    return records
