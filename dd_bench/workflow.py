"""The distill -> save -> evaluate -> record pipeline, as library functions with explicit keyword arguments.

The CLI (and the demo) adapt the Hydra config to these calls; nothing here reads a config object.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.data.ipc import check_ipc
from dd_bench.eval import EvalProtocol, EvalResult, evaluate, reference_result
from dd_bench.methods import create_method
from dd_bench.results import RunRecord, collect_provenance, provenance_fields, write_record
from dd_bench.results.provenance import PeakMemory
from dd_bench.synset import SyntheticSet, load_synset, save_synset, synset_sha256


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA device when there is one, else the CPU; anything else is checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"Unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for but CUDA is not available here; use device=cpu or auto")
    return device


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
) -> tuple[SyntheticSet, float]:
    """Distil a set, save it to ``out`` (checkpoints under ``out/.checkpoint``) and return (set, seconds).

    ``validation``: a description of the held-out split ``real`` already excludes, recorded in the provenance.
    """
    check_ipc(real, ipc)
    synthesizer = create_method(method, **method_kwargs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = PeakMemory(real.device)
    start = time.perf_counter()
    with tracker:
        synset = synthesizer.distill(real, ipc=ipc, seed=seed, progress=progress, checkpoint_dir=out / ".checkpoint")
    seconds = time.perf_counter() - start
    synset.preset = preset
    synset.provenance = {**collect_provenance(real.device), **synset.provenance, "seed": seed,
                         "distill_seconds": seconds, "peak_memory": tracker.as_dict(),
                         "validation": validation}
    status = synset.provenance.get("distill_status", {})
    if status.get("stopped_early"):
        print(f"warning: {method} stopped early: {status.get('reason')}; the last good state was saved")
    preview = None if synset.image_encoding == "uint8" else real.to_pixel_space(synset.images.to(real.device))
    save_synset(synset, out, preview_pixels=preview)
    return synset, seconds


def records_from_results(
    results: list[EvalResult],
    *,
    synset: SyntheticSet,
    synset_dir: Path | None,
    protocol: EvalProtocol,
    distill_seconds: float | None,
    config: dict[str, Any],
    device: torch.device,
) -> list[RunRecord]:
    prov = provenance_fields(collect_provenance(device))
    sha = synset_sha256(synset_dir) if synset_dir is not None else None
    records = []
    for r in results:
        records.append(RunRecord(
            kind="evaluation", method=synset.method, dataset=synset.dataset, ipc=synset.ipc, protocol=r.protocol,
            protocol_version=r.protocol_version, model=r.model, seeds=r.seeds, accuracies=r.accuracies,
            ranked=protocol.ranked, storage=synset.storage(), distill_seconds=distill_seconds,
            eval_seconds=r.eval_seconds, peak_memory=r.peak_memory, config=config, preset=synset.preset,
            synset=str(synset_dir) if synset_dir is not None else None, synset_sha256=sha,
            label_kind=synset.label_kind,
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
) -> list[RunRecord]:
    """Evaluate the set in ``synset_dir`` on every model and write one record per model."""
    synset = load_synset(synset_dir)
    results = evaluate(synset, real=real, protocol=protocol, models=models, seeds=seeds, batched=batched,
                       progress=progress)
    records = records_from_results(results, synset=synset, synset_dir=Path(synset_dir), protocol=protocol,
                                   distill_seconds=synset.provenance.get("distill_seconds"), config=config,
                                   device=real.device)
    for rec in records:
        write_record(rec, results_dir)
    return records


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
) -> list[RunRecord]:
    """Full-data and random-subset reference rows (cached on disk), written as records of kind 'reference'.

    ``full_data_seeds``: the seeds of the full-data row (default: ``seeds``; an empty list skips the row). The
    demo scores this ceiling row with one seed: it trains on every image and costs more than all its other rows.
    """
    prov = provenance_fields(collect_provenance(real.device))
    from dd_bench.eval.reference import REFERENCE_KINDS

    unknown = sorted(set(kinds) - set(REFERENCE_KINDS))
    if unknown:
        raise ValueError(f"Unknown reference kind(s) {unknown}; available: {', '.join(REFERENCE_KINDS)}")
    full_seeds = seeds if full_data_seeds is None else full_data_seeds
    jobs: list[tuple[str, int | None, list[int]]] = []
    if "full_data" in kinds and full_seeds:
        jobs.append(("full_data", None, full_seeds))
    if "random_subset" in kinds:
        jobs += [("random_subset", ipc, seeds) for ipc in ipcs]
    records = []
    for model in models:
        for kind, ipc, job_seeds in jobs:
            r, _cached = reference_result(kind, real, protocol=protocol, model=model, seeds=job_seeds, ipc=ipc,
                                          progress=progress)
            n_images = len(real.train_labels) if ipc is None else ipc * real.num_classes
            image_bytes = n_images * real.channels * real.image_size[0] * real.image_size[1]  # uint8 pixels
            rec = RunRecord(
                kind="reference", method=kind, dataset=real.name, ipc=ipc, protocol=r.protocol,
                protocol_version=r.protocol_version, model=model, seeds=r.seeds, accuracies=r.accuracies,
                ranked=protocol.ranked, storage={"images_bytes": image_bytes, "labels_bytes": 8 * n_images,
                                                 "extras_bytes": 0, "eval_assets_bytes": 0,
                                                 "total_bytes": image_bytes + 8 * n_images, "dtype": "uint8"},
                eval_seconds=r.eval_seconds, peak_memory=r.peak_memory, label_kind="hard",
                extra={**r.extra, "protocol": protocol.to_dict(), "from_cache": _cached}, **prov)
            write_record(rec, results_dir)
            records.append(rec)
    return records
