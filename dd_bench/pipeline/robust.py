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

import statistics
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError

SCORE_KINDS = ("lrs", "ars")


def check_scores(kinds: list[str]) -> None:
    unknown = sorted(set(kinds) - set(SCORE_KINDS))
    if unknown:
        raise UserError(f"Unknown score(s) {unknown}; available: {', '.join(SCORE_KINDS)}")


def no_augmentation(protocol: Any) -> Any:
    """The protocol with its training augmentation off, as ARS scores it (an unranked ``<base>+custom``)."""
    return protocol.without_augmentation()


def _acc(record: Any) -> float:
    return statistics.fmean(record.accuracies) / 100.0


def robust_scores(*, kinds: list[str], own: list[Any], synset_dir: Path, real: Any, protocol: Any, seeds: list[int],
                  results_dir: Path, config: dict[str, Any], label_source: str, cache_dir: Path | None,
                  progress: bool, batched: bool | None) -> list[Any]:
    """Add ``extra.robust_scores`` to each of the set's ``own`` records (one per model); returns them rewritten."""
    from dd_bench.eval.robust_scores import augmentation_robust_score, label_robust_score
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

    out = []
    for record in own:
        scores: dict[str, Any] = {"random_labels": wanted}
        rdm = random_row(record.model, protocol)
        if "lrs" in kinds:
            (full,) = reference_records(real=real, protocol=protocol, models=[record.model], seeds=seeds, ipcs=[],
                                        results_dir=results_dir, kinds=("full_data",), progress=progress,
                                        cache_dir=cache_dir)
            hard = evaluated(record.model, protocol, "hard")
            scores["lrs"] = label_robust_score(real_hard=_acc(full), syn_hard=_acc(hard), syn_own=_acc(record),
                                               random_own=_acc(rdm))
            scores["lrs"]["records"] = {"real_hard": full.record_hash, "syn_hard": hard.record_hash,
                                        "random_own": rdm.record_hash}
        if "ars" in kinds:
            plain = no_augmentation(protocol)
            syn_plain = evaluated(record.model, plain, label_source)
            rdm_plain = random_row(record.model, plain)
            scores["ars"] = augmentation_robust_score(syn_aug=_acc(record), random_aug=_acc(rdm),
                                                      syn_no_aug=_acc(syn_plain), random_no_aug=_acc(rdm_plain))
            scores["ars"]["records"] = {"syn_no_aug": syn_plain.record_hash, "random_aug": rdm.record_hash,
                                        "random_no_aug": rdm_plain.record_hash}
            scores["ars"]["no_augmentation_protocol"] = plain.to_dict()
        record.extra["robust_scores"] = scores
        write_record(record, results_dir)
        out.append(record)
    return out
