"""``scores=[lrs,ars]`` on ``dd-bench evaluate`` / ``run``: DD-Ranking's label- and augmentation-robust scores
(:mod:`dd_bench.eval.robust_scores`) for a set's records, from evaluations under the identical recipe:

* LRS: the set with hard labels (``label_source=hard``), the full training set with hard labels (the full-data
  reference of the protocol), the set's own record, and random real subsets of the same size scored with the same
  label source where one can be (the set's teachers online under a kd protocol), else with hard labels;
* ARS: the set's own record and those random subsets, and both again under the protocol without augmentation
  (``augment=none``; kd: ``crop=none``, ``mix=none``): an unranked ``<name>+custom`` protocol.

Every evaluation is an ordinary record (kept and reused like any other); the scores, with every input, go into
the set's own record under ``extra.robust_scores`` (fractions, not percent) and onto the leaderboard.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError
from dd_bench.registry import Registry


@dataclass(frozen=True)
class ScoreInputs:
    """What a score of one of the set's records asks for: the record, its random-subset row under the protocol,
    and the evaluations it may add (each an ordinary record, kept and reused)."""

    record: Any
    random: Any  # the random subsets of the same size, labelled as the set's own source where one can be
    protocol: Any
    label_source: str
    evaluated: Callable[[Any, str], Any]  # (protocol, label source) -> the set's record under them
    random_row: Callable[[Any], Any]  # protocol -> the random-subset row under it
    full_data: Callable[[], Any]  # the full training set with hard labels under the protocol


# One entry per score: inputs -> its dict (fractions, and the records it used). Registration order is the order the
# scores are computed and written.
ROBUST_SCORES: Registry[Callable[[ScoreInputs], dict[str, Any]]] = Registry("score", kind="spec", sort=False)


def get_robust_score(kind: str) -> Callable[[ScoreInputs], dict[str, Any]]:
    return ROBUST_SCORES.get(kind)


@ROBUST_SCORES.register("lrs")
def _lrs(inputs: ScoreInputs) -> dict[str, Any]:
    from dd_bench.eval.robust_scores import label_robust_score

    full, hard = inputs.full_data(), inputs.evaluated(inputs.protocol, "hard")
    score = label_robust_score(real_hard=_acc(full), syn_hard=_acc(hard), syn_own=_acc(inputs.record),
                               random_own=_acc(inputs.random))
    score["records"] = {"real_hard": full.record_hash, "syn_hard": hard.record_hash,
                        "random_own": inputs.random.record_hash}
    return score


@ROBUST_SCORES.register("ars")
def _ars(inputs: ScoreInputs) -> dict[str, Any]:
    from dd_bench.eval.robust_scores import augmentation_robust_score

    plain = no_augmentation(inputs.protocol)
    syn_plain = inputs.evaluated(plain, inputs.label_source)
    rdm_plain = inputs.random_row(plain)
    score = augmentation_robust_score(syn_aug=_acc(inputs.record), random_aug=_acc(inputs.random),
                                      syn_no_aug=_acc(syn_plain), random_no_aug=_acc(rdm_plain))
    score["records"] = {"syn_no_aug": syn_plain.record_hash, "random_aug": inputs.random.record_hash,
                        "random_no_aug": rdm_plain.record_hash}
    score["no_augmentation_protocol"] = plain.to_dict()
    return score


# The score names as the tuple this module held before the registry (kept for code that imports it).
SCORE_KINDS = tuple(ROBUST_SCORES.list())


def check_scores(kinds: list[str]) -> None:
    unknown = sorted(set(kinds) - set(ROBUST_SCORES.list()))
    if unknown:
        raise UserError(f"Unknown score(s) {unknown}; available: {', '.join(ROBUST_SCORES.list())}")


def no_augmentation(protocol: Any) -> Any:
    """The protocol with its training augmentation off, as ARS scores it (an unranked ``<base>+custom``)."""
    return protocol.without_augmentation()


def _acc(record: Any) -> float:
    return statistics.fmean(record.accuracies) / 100.0


def robust_scores(*, kinds: list[str], own: list[Any], synset_dir: Path, real: Any, protocol: Any, seeds: list[int],
                  results_dir: Path, config: dict[str, Any], label_source: str, cache_dir: Path | None,
                  progress: bool, batched: bool | None) -> list[Any]:
    """Add ``extra.robust_scores`` to each of the set's ``own`` records (one per model); returns them rewritten."""
    from dd_bench.labels import same_label_kinds
    from dd_bench.pipeline.evaluate import evaluate_to_records
    from dd_bench.pipeline.references import reference_records
    from dd_bench.results import write_record
    from dd_bench.synset import read_meta
    from dd_bench.synset.labels_section import LabelsSection

    check_scores(kinds)
    meta = read_meta(synset_dir)
    section = LabelsSection.from_meta(meta)
    how = same_label_kinds(section, [label_source]) if protocol.trains_by_kd else ()
    teachers = section if how else None
    wanted = how[0] if how else "hard"  # the random rows' labels: the set's teachers as the set uses them

    def evaluated(model: str, proto: Any, source: str) -> Any:
        new, kept = evaluate_to_records(synset_dir=synset_dir, real=real, protocol=proto, models=[model],
                                        seeds=seeds, results_dir=results_dir, config=config, batched=batched,
                                        progress=progress, label_source=source, cache_dir=cache_dir, relabel=True)
        return (new + kept)[0]

    def random_row(model: str, proto: Any) -> Any:
        rows = reference_records(real=real, protocol=proto, models=[model], seeds=seeds, ipcs=[int(meta["ipc"])],
                                 results_dir=results_dir, kinds=("random_subset",), progress=progress,
                                 cache_dir=cache_dir, teachers=teachers, teacher_labels=how)
        return next(r for r in rows if r.storage.get("label_source", "hard") == wanted)

    def full_row(model: str) -> Any:
        (full,) = reference_records(real=real, protocol=protocol, models=[model], seeds=seeds, ipcs=[],
                                    results_dir=results_dir, kinds=("full_data",), progress=progress,
                                    cache_dir=cache_dir)
        return full

    out = []
    for record in own:
        scores: dict[str, Any] = {"random_labels": wanted}
        model = record.model
        inputs = ScoreInputs(record=record, random=random_row(model, protocol), protocol=protocol,
                             label_source=label_source, evaluated=functools.partial(evaluated, model),
                             random_row=functools.partial(random_row, model),
                             full_data=functools.partial(full_row, model))
        for kind in (k for k in ROBUST_SCORES.list() if k in kinds):
            scores[kind] = get_robust_score(kind)(inputs)
        record.extra["robust_scores"] = scores
        write_record(record, results_dir)
        out.append(record)
    return out
