"""CV-DD's measured priors (``method.priors=sre2l_pp`` without ``prior_file``), found or made as reference rows are.

The card's prior of a pool teacher is the accuracy of a student trained on the set that teacher ALONE distilled
(single-teacher SRe2L++; decoupled-methods.md §5(a), issue CV-DD#1); the authors measured it on the test set. Here,
for each teacher of the run's pool, before the CV-DD set is distilled (``dd-bench run`` / ``distill``):

1. the teacher's SRe2L++ set (:func:`~dd_bench.methods.decoupled.cvdd.single_teacher_options`: CV-DD's options with a
   committee of one) at ``prior_ipc`` is taken from ``<results>/synsets/`` when a set of its hash is there (a run
   of the shipped SRe2L++ preset of that teacher and IPC has that hash), else distilled there (resumable);
2. it is scored under ``prior_eval`` (else the run's protocol) on the run's first model, seeds and label source,
   on the VALIDATION split (:meth:`~dd_bench.data.RealData.validation_view`: the held-out training images stand
   where the test split would; the test split is never scored); each score is stored once under
   ``<results>/priors/scores/``;
3. the mean over the student seeds is the teacher's prior; the entries go to ``<results>/priors/cvdd-<digest>.json``
   (atomically), the digest naming every score's inputs, and the CV-DD set is named by that digest
   (:func:`dd_bench.app.tasks.plan_distill`).

The teachers are keyed by the data with its validation split, so the SRe2L++ sets use the run's own teachers; a
run without a validation split fails before any work. ``method.prior_file=PATH`` overrides all of this.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dd_bench.data import RealData
from dd_bench.data.ipc import check_ipc
from dd_bench.errors import UserError
from dd_bench.io import atomic_write_json, json_sha256, read_json_file
from dd_bench.io.store import path_lock

SCORE_VERSION = 1


@dataclass(frozen=True)
class TeacherSet:
    """The single-teacher SRe2L++ set of one pool teacher: its options, set hash and directory."""

    recipe: str
    options: dict[str, Any]
    set_hash: str
    out: Path


@dataclass(frozen=True)
class MeasuredPriors:
    path: Path  # the prior file
    digest: str  # names every input of its scores: what the CV-DD set hash takes in place of the path
    entries: list[dict[str, Any]]


def needs_measuring(method: str, options: dict[str, Any]) -> bool:
    """Whether a run of ``method`` with these options measures its priors first."""
    return method == "cvdd" and options.get("priors") == "sre2l_pp" and not options.get("prior_file")


def measure_sre2l_pp_priors(*, real: RealData, options: dict[str, Any], dataset: dict[str, Any], ipc: int, seed: int,
                            holdout: dict[str, Any] | None, protocol: Any, model: str, seeds: list[int],
                            label_source: str, results_dir: Path, cache_dir: Path | None = None,
                            progress: bool = True, image_store: str = "native",
                            jpeg_quality: int = 75) -> MeasuredPriors:
    """Find or make the single-teacher SRe2L++ sets of a CV-DD config, score them on the validation split and write
    the prior file (module docstring).

    real: the run's data with its validation split carved out (``holdout``: that split's description, as the set's
    provenance records it); options: the CV-DD method options; dataset: the dataset config the set hash takes;
    ipc, seed: the run's (``options["prior_ipc"]`` replaces ipc); protocol, model, seeds, label_source: how the
    students are trained (``options["prior_eval"]`` replaces protocol); image_store, jpeg_quality: how the sets
    store their images (the run's, as the SRe2L++ presets').
    """
    from dd_bench.eval import get_protocol

    if holdout is None or real.val_images is None:
        raise UserError("cvdd: priors=sre2l_pp scores single-teacher SRe2L++ sets on the validation split, and this "
                        "run has none: add validation=0.1 (the paper presets'), or pass method.prior_file=PATH")
    prior_ipc = int(options.get("prior_ipc") or ipc)
    check_ipc(real, prior_ipc)
    scorer = get_protocol(options["prior_eval"]) if options.get("prior_eval") else protocol
    if not scorer.trains_by_kd:
        raise UserError(f"cvdd: priors=sre2l_pp scores SRe2L++ sets under a kd protocol; '{scorer.name}' is of the "
                        f"{scorer.family} family: set eval=kd-cvdd or method.prior_eval=kd-cvdd")
    if not seeds:
        raise UserError("cvdd: priors=sre2l_pp trains at least one student per SRe2L++ set; got seeds=0")
    jobs = single_teacher_sets(real=real, options=options, dataset=dataset, ipc=prior_ipc, seed=seed,
                               validation=holdout["fraction"], results_dir=results_dir, image_store=image_store,
                               jpeg_quality=jpeg_quality)
    entries, keys = [], []
    for job in jobs:
        entry, key = _teacher_prior(job, real=real, ipc=prior_ipc, seed=seed, holdout=holdout, protocol=scorer,
                                    model=model, seeds=list(seeds), label_source=label_source,
                                    results_dir=Path(results_dir), cache_dir=cache_dir, progress=progress,
                                    store=(image_store, jpeg_quality))
        entries.append(entry)
        keys.append(key)
    digest = json_sha256({"v": SCORE_VERSION, "scores": keys})
    path = Path(results_dir) / "priors" / f"cvdd-{digest[:16]}.json"
    if not path.is_file():
        from dd_bench.methods.decoupled.committee import write_prior_file

        write_prior_file(path, entries)
    return MeasuredPriors(path=path, digest=digest, entries=entries)


def single_teacher_sets(*, real: RealData, options: dict[str, Any], dataset: dict[str, Any], ipc: int, seed: int,
                        validation: float | None, results_dir: Path, image_store: str = "native",
                        jpeg_quality: int = 75) -> list[TeacherSet]:
    """The SRe2L++ set of each teacher of a CV-DD config at ``ipc``: hashed and placed as ``dd-bench distill``
    would place that config's set (:func:`dd_bench.app.tasks.plan_distill`), so a run of it is found there. Every
    set's options are checked here, before any is distilled."""
    from dd_bench.methods import create_method
    from dd_bench.methods.decoupled.cvdd import single_teacher_options
    from dd_bench.results.keys import set_dirname, set_hash
    from dd_bench.synset.image_store import store_identity

    weights = options.get("teacher_weights") or [None] * len(options["teachers"])
    jobs = []
    for recipe, w in zip(options["teachers"], weights, strict=True):
        opts = single_teacher_options(options, teacher=recipe, weights=w)
        create_method("sre2l_pp", **opts)
        digest = set_hash(method="sre2l_pp", method_config=opts, dataset=dataset, data_fingerprint=real.fingerprint(),
                          ipc=ipc, seed=seed, validation=validation, image_store=store_identity(image_store,
                                                                                                jpeg_quality))
        out = Path(results_dir) / "synsets" / set_dirname(method="sre2l_pp", dataset=real.name, ipc=ipc, seed=seed,
                                                          set_hash_hex=digest)
        jobs.append(TeacherSet(recipe=recipe, options=opts, set_hash=digest, out=out))
    return jobs


def _teacher_prior(job: TeacherSet, *, real: RealData, ipc: int, seed: int, holdout: dict[str, Any], protocol: Any,
                   model: str, seeds: list[int], label_source: str, results_dir: Path, cache_dir: Path | None,
                   progress: bool, store: tuple[str, int]) -> tuple[dict[str, Any], str]:
    """One teacher's prior entry (found or computed) and its score key."""
    from dd_bench.eval import evaluate
    from dd_bench.labels import label_identity
    from dd_bench.labels.relabel import ensure_stored_labels
    from dd_bench.pipeline.distill import distill_to_disk
    from dd_bench.synset import load_synset, read_meta
    from dd_bench.synset.labels_section import LabelsSection

    recipe, digest, out = job.recipe, job.set_hash, job.out
    _, _, reused = distill_to_disk(method="sre2l_pp", method_kwargs=job.options, real=real, ipc=ipc, seed=seed,
                                   out=out, progress=progress, validation=holdout, set_hash=digest, cache_dir=cache_dir,
                                   image_store=store[0], jpeg_quality=store[1])
    meta = read_meta(out)
    identity = label_identity(meta, label_source, protocol)
    key = json_sha256({"v": SCORE_VERSION, "kind": "validation_score", "set": digest, "protocol": protocol.to_dict(),
                       "model": model, "seeds": seeds, "labels": identity})
    path = results_dir / "priors" / "scores" / f"{key[:24]}.json"
    with path_lock(path):  # a parallel run asking for the same score waits, then reads it
        if path.is_file():
            entry = read_json_file(path, what=f"'{path}'", missing=f"'{path}' vanished", error=UserError)
            print(f"priors: {recipe} {entry['accuracy']:.2f} % on the validation split (kept {path.name})")
            return entry, key
        ensure_stored_labels(synset_dir=out, real=real, protocol=protocol, label_source=label_source,
                             cache_dir=cache_dir, progress=progress)
        # The validation split in the place of the test split: the only images these students are scored on.
        (result,) = evaluate(load_synset(out), real=real.validation_view(), protocol=protocol, models=[model],
                             seeds=seeds, progress=progress, label_source=label_source, cache_dir=cache_dir)
        teacher = LabelsSection.from_meta(meta).teachers or [{}]
        entry = {"recipe": recipe, "key": teacher[0].get("key"), "accuracy": statistics.fmean(result.accuracies),
                 "accuracies": result.accuracies, "split": "validation", "split_images": len(real.val_labels),
                 "set": str(out), "set_hash": digest, "set_reused": reused, "ipc": ipc,
                 "protocol": f"{protocol.name} v{protocol.version}", "model": model, "seeds": seeds,
                 "label_identity": identity,
                 "source": f"mean final-epoch accuracy on the validation split ({len(real.val_labels)} held-out "
                           f"training images) of {len(seeds)} {model} student(s) under {protocol.name} "
                           f"v{protocol.version} on the single-teacher sre2l_pp set {out.name}"}
        atomic_write_json(path, entry)
    print(f"priors: {recipe} {entry['accuracy']:.2f} % on the validation split ({'kept' if reused else 'made'} "
          f"{out.name})")
    return entry, key
