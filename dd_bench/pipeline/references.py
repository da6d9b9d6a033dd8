"""The distill -> save -> evaluate -> record pipeline, as library functions with explicit keyword arguments.

The CLI (and the demo) adapt the Hydra config to these calls; nothing here reads a config object. Every output is
keyed by its config (:mod:`dd_bench.results.keys`): a set whose directory already holds this set hash, or a record
whose file already exists, is reused unless ``rerun`` is set, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.data.ipc import check_ipc
from dd_bench.errors import UserError
from dd_bench.eval import EvalProtocol, EvalResult, evaluate, reference_result
from dd_bench.io.store import path_lock
from dd_bench.labels import label_identity, same_label_kinds
from dd_bench.labels.relabel import ensure_stored_labels, relabel_to_disk
from dd_bench.methods import create_method
from dd_bench.methods.base import eval_assets_bytes, image_space_of
from dd_bench.results import RunRecord, collect_provenance, provenance_fields, write_record
from dd_bench.results.keys import record_hash, reference_hash, set_identity
from dd_bench.results.record import read_record, record_path
from dd_bench.synset import SynsetError, SyntheticSet, load_synset, read_meta, save_synset
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.tracking.provenance import PeakMemory

# relabel_to_disk, ensure_stored_labels and same_label_kinds live in dd_bench.labels (the label sources own them);
# they stay importable from here (CHANGELOG).
__all__ = ["distill_to_disk", "ensure_stored_labels", "evaluate_to_records", "evaluation_hash", "existing_set",
           "records_from_results", "reference_records", "reference_storage", "relabel_to_disk", "resolve_device",
           "same_label_kinds"]


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
    image_store: str = "native",
    jpeg_quality: int = 75,
    data_fingerprint: str | None = None,
) -> tuple[SyntheticSet, float, bool]:
    """Distil a set into ``out`` (checkpoints under ``out/.checkpoint``); returns (set, seconds, reused).

    With ``set_hash``, a complete set of that hash already in ``out`` is returned as it is (``reused``) unless
    ``rerun``; a set of another hash there is an error unless ``rerun`` (two configs never share a directory).
    ``validation``: a description of the held-out split ``real`` already excludes, recorded in the provenance.
    ``image_store`` / ``jpeg_quality``: how the set stores its images (:mod:`dd_bench.synset.image_store`); the set hash
    must cover them (:func:`dd_bench.synset.image_store.store_identity`). ``data_fingerprint``: the fingerprint of the
    data set as loaded (before any validation split; default ``real``'s), recorded in the provenance so that exports
    name the data the set came from (it is not part of the set hash, which covers ``real`` itself).
    """
    from dd_bench.synset.image_store import apply_image_store, check_image_store

    check_image_store(image_store, jpeg_quality, channels=real.channels)
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
            # Distillation never holds the test split: nothing in it can be selected on the test set.
            # paper_selection: the test split goes to the checkpoint selector alone, for a never-ranked column.
            paper = ({"paper_test": (real.test_images, real.test_labels)}
                     if getattr(synthesizer.cfg, "paper_selection", False) else {})
            synset = synthesizer.distill(real.without_test(), ipc=ipc, seed=seed, progress=progress,
                                         checkpoint_dir=out / ".checkpoint", cache_dir=cache_dir, **paper)
            if image_store != "native":
                synset = apply_image_store(synset, image_store=image_store, jpeg_quality=jpeg_quality,
                                           to_pixels=lambda x: real.to_pixel_space(x.to(real.device)))
                # Labels a method computed from its images (INFER's static logits) are remade on the stored ones.
                synset = synthesizer.labels_for_stored_images(synset, real=real.without_test(), cache_dir=cache_dir,
                                                              progress=progress)
        seconds = time.perf_counter() - start
        synset.preset = preset
        synset.set_hash = set_hash
        synset.provenance = {**collect_provenance(real.device), **synset.provenance, "seed": seed,
                             "distill_seconds": seconds, "peak_memory": tracker.as_dict(),
                             "validation": validation, "data_fingerprint": data_fingerprint or real.fingerprint()}
        status = synset.provenance.get("distill_status", {})
        if status.get("stopped_early"):
            print(f"warning: {method} stopped early: {status.get('reason')}; the last good state was saved")
        preview = None if synset.image_encoding == "uint8" else real.to_pixel_space(synset.images.to(real.device))
        save_synset(synset, out, preview_pixels=preview)
        # A finished set needs no checkpoint: a later rerun=true starts over instead of resuming at the end.
        shutil.rmtree(out / ".checkpoint", ignore_errors=True)
    return synset, seconds, False


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
    teachers: LabelsSection | dict[str, Any] | None = None,
    teacher_labels: tuple[str, ...] = ("teacher",),
) -> list[RunRecord]:
    """Full-data and random-subset reference rows (cached on disk), written as records of kind 'reference'.

    ``full_data_seeds``: the seeds of the full-data row (default: ``seeds``; an empty list skips the row).
    ``teachers``: a set's labels section (or its meta.json dict) naming teachers: under a kd protocol the random
    subsets are also scored
    with those teachers (the same label source as the method), beside the hard-label row: online (``teacher`` in
    ``teacher_labels``) and/or as static logits on the clean subset (``static``: INFER's labels).
    """
    from dd_bench.eval.reference import REFERENCES

    unknown = sorted(set(kinds) - set(REFERENCES.list()))
    if unknown:
        raise UserError(f"Unknown reference kind(s) {unknown}; available: {', '.join(REFERENCES.list())}")
    prov = provenance_fields(collect_provenance(real.device))
    full_seeds = seeds if full_data_seeds is None else full_data_seeds
    bad = sorted(set(teacher_labels) - {"teacher", "static"})
    if bad:
        raise ValueError(f"teacher_labels {bad}: each is 'teacher' (online) or 'static'")
    jobs: list[tuple[str, int | None, list[int], LabelsSection | None, bool]] = []
    section = None if teachers is None else LabelsSection.coerce(teachers)
    for kind in (k for k in REFERENCES.list() if k in kinds):
        spec = REFERENCES.get(kind)
        if not spec.per_ipc:  # one row for the whole data set, with its own seeds
            jobs += [(kind, None, full_seeds, None, False)] if full_seeds else []
            continue
        jobs += [(kind, ipc, seeds, None, False) for ipc in ipcs]
        if spec.teacher_labels and section is not None and section.teachers and protocol.trains_by_kd:
            jobs += [(kind, ipc, seeds, section, how == "static") for how in teacher_labels for ipc in ipcs]
    records = []
    for model in models:
        for kind, ipc, job_seeds, job_teachers, static in jobs:
            r, cached = reference_result(kind, real, protocol=protocol, model=model, seeds=job_seeds, ipc=ipc,
                                         progress=progress, cache_dir=cache_dir, teachers=job_teachers,
                                         static=static)
            n_images = len(real.train_labels) if ipc is None else ipc * real.num_classes
            storage = {**reference_storage(real, n_images), "label_source": "hard"}
            labels = "hard"
            if static:
                labels = r.extra["label_identity"]
                logit_bytes = int(r.extra["static_logits_bytes"])
                storage = {**storage, "label_source": "static", "labels_bytes": storage["labels_bytes"] + logit_bytes,
                           "total_bytes": storage["total_bytes"] + logit_bytes}
            elif job_teachers is not None:
                labels = r.extra["label_identity"]
                assets = {**r.extra.get("eval_assets", {}), **({"zca": storage["eval_assets_bytes"]}
                                                               if storage["eval_assets_bytes"] else {})}
                storage = {**storage, "label_source": "teacher", "eval_assets": assets,
                           "eval_assets_bytes": sum(assets.values()),
                           "total_with_assets_bytes": storage["total_bytes"] + sum(assets.values())}
            rec = RunRecord(
                kind="reference", method=kind, dataset=real.name, ipc=ipc, protocol=r.protocol,
                protocol_version=r.protocol_version, model=model, seeds=r.seeds, accuracies=r.accuracies,
                ranked=protocol.ranked, storage=storage, eval_seconds=r.eval_seconds,
                peak_memory=r.peak_memory, label_kind="hard",
                record_hash=reference_hash(reference=kind if labels == "hard" else f"{kind}:{labels}",
                                           data_fingerprint=real.fingerprint(), ipc=ipc,
                                           protocol=protocol.to_dict(), model=model, seeds=r.seeds),
                extra={**r.extra, "protocol": protocol.to_dict(), "from_cache": cached}, **prov)
            write_record(rec, results_dir)
            records.append(rec)
    return records
