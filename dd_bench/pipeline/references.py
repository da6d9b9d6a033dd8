"""The reference rows a set is compared with: the full training set and random real subsets of its size (with hard
labels, and with the set's teachers under a kd protocol), scored by the same evaluator, cached, and written as
records of kind ``reference``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.eval import EvalProtocol, reference_result
from dd_bench.methods.base import eval_assets_bytes, image_space_of
from dd_bench.results import RunRecord, collect_provenance, provenance_fields, write_record
from dd_bench.results.keys import reference_hash
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection


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
