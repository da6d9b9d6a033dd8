"""Score a saved set the way ``dd-bench evaluate`` does: each label source in turn (records kept or made, stored
labels made first when asked), its robust scores, and the reference rows beside it. ``dd_bench.score`` and the
``evaluate`` / ``run`` tasks share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dd_bench.data import RealData
from dd_bench.eval import EvalProtocol
from dd_bench.labels import same_label_kinds
from dd_bench.pipeline.evaluate import evaluate_to_records
from dd_bench.pipeline.references import reference_records
from dd_bench.pipeline.robust import check_scores, robust_scores
from dd_bench.results import RunRecord
from dd_bench.synset.labels_section import LabelsSection


def score_set(*, synset_dir: Path, real: RealData, protocol: EvalProtocol, models: list[str], seeds: list[int],
              results_dir: Path, config: dict[str, Any], label_sources: Sequence[str], scores: Sequence[str] = (),
              batched: bool | None = None, progress: bool = True, rerun: bool = False, cache_dir: Path | None = None,
              relabel: bool = False) -> tuple[list[RunRecord], list[RunRecord]]:
    """(new records, existing records that were kept) of the set in ``synset_dir``: one per model and label source,
    in the order of ``label_sources``, each with ``extra.robust_scores`` when ``scores`` names any (``lrs``, ``ars``).
    ``relabel``: make missing stored labels for this protocol first (:func:`evaluate_to_records`)."""
    check_scores(list(scores))
    new: list[RunRecord] = []
    kept: list[RunRecord] = []
    for source in label_sources:
        done, found = evaluate_to_records(
            synset_dir=synset_dir, real=real, protocol=protocol, models=list(models), seeds=seeds,
            results_dir=results_dir, config=config, batched=batched, progress=progress, rerun=rerun,
            label_source=source, cache_dir=cache_dir, relabel=relabel)
        if scores:
            scored = {r.record_hash: r for r in robust_scores(
                kinds=list(scores), own=done + found, synset_dir=synset_dir, real=real, protocol=protocol,
                seeds=seeds, results_dir=results_dir, config=config, label_source=source, cache_dir=cache_dir,
                progress=progress, batched=batched)}
            done = [scored.get(r.record_hash, r) for r in done]
            found = [scored.get(r.record_hash, r) for r in found]
        new, kept = new + done, kept + found
    return new, kept


def set_references(*, meta: dict[str, Any], real: RealData, protocol: EvalProtocol, models: list[str],
                   seeds: list[int], results_dir: Path, kinds: Sequence[str], label_sources: Sequence[str],
                   progress: bool = True, cache_dir: Path | None = None) -> list[RunRecord]:
    """The reference rows beside the set described by ``meta`` (its meta.json; ``kinds``: ``full_data``,
    ``random_subset``) at its IPC; under a kd protocol the random subsets are also labelled by the set's teachers as
    ``label_sources`` use them."""
    section = LabelsSection.from_meta(meta)
    how = same_label_kinds(section, list(label_sources))
    return reference_records(real=real, protocol=protocol, models=list(models), seeds=seeds, ipcs=[int(meta["ipc"])],
                             results_dir=results_dir, kinds=tuple(kinds), progress=progress, cache_dir=cache_dir,
                             teachers=section if how else None, teacher_labels=how)
