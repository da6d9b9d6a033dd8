"""The tasks behind ``dd-bench TASK``: each adapts the composed config to the library's keyword-argument calls.

``run(cfg)`` dispatches on ``cfg.task`` and is importable and testable without a subprocess; this module and
:mod:`dd_bench.app.cli` are the only ones that read a config object.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dd_bench.app.config_schema import TASKS
from dd_bench.errors import UserError

LOGGERS = ("none", "wandb")


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain JSON-ready data (enums by value): what records, meta.json and wandb receive."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def _cache_dir(cfg: DictConfig) -> Path | None:
    return Path(cfg.dataset.cache_dir) if cfg.dataset.cache_dir else None


def load_real(cfg: DictConfig, dataset_name: str | None = None):
    from dd_bench.data import load_dataset
    from dd_bench.pipeline.references import resolve_device

    d = cfg.dataset
    device = resolve_device(cfg.device)  # a bad device fails before the data is read
    real = load_dataset(dataset_name or d.name, root=d.root, download=d.download, zca=d.zca, cache_dir=d.cache_dir,
                        image_size=d.image_size, progress=cfg.progress)
    return real.to(device)


def protocol_of(cfg: DictConfig):
    from dd_bench.eval import custom_protocol, get_protocol

    fields = ("epochs", "batch_size", "lr", "use_learned_lr", "augment")
    overrides = {f: cfg.eval[f] for f in fields if cfg.eval[f] is not None}
    return custom_protocol(cfg.eval.name, **overrides) if overrides else get_protocol(cfg.eval.name)


def check_models(models: list[str]) -> None:
    from dd_bench.models import MODELS, list_models

    for m in models:
        if not m.startswith("timm.") and m not in MODELS:
            raise UserError(f"Unknown model '{m}'; available: {', '.join(list_models())}")


def _published() -> Path | None:
    from dd_bench.resources import PUBLISHED_CSV

    return PUBLISHED_CSV if PUBLISHED_CSV.is_file() else None


def _print_board(df) -> None:
    from dd_bench.results import format_leaderboard_text

    print(format_leaderboard_text(df))


@dataclass
class DistillPlan:
    method: str
    options: dict[str, Any]
    real: Any  # RealData the method sees (the validation split removed)
    holdout: dict[str, Any] | None
    set_hash: str
    out: Path
    image_store: str = "native"
    jpeg_quality: int = 75


def check_image_store_of(cfg: DictConfig) -> None:
    """``image_store`` / ``jpeg_quality`` checked before any data is read (one line naming the valid values)."""
    from dd_bench.synset.image_store import check_image_store

    check_image_store(cfg.image_store, cfg.jpeg_quality)


def plan_distill(cfg: DictConfig, real, prior_file: tuple[str, str] | None = None) -> DistillPlan:
    """Everything about the set this config makes, before any work: options checked, set hash, directory.
    ``prior_file``: (path, digest) of CV-DD's measured priors; the set hash takes the digest, not the path."""
    from dd_bench.methods import create_method
    from dd_bench.results.keys import set_dirname, set_hash
    from dd_bench.synset.image_store import check_image_store, store_identity

    check_image_store(cfg.image_store, cfg.jpeg_quality, channels=real.channels)
    config = job_config(cfg)
    options = config["method"]
    name = options.pop("name")
    hashed = options
    if prior_file is not None:
        options = {**options, "prior_file": prior_file[0]}
        hashed = {**options, "prior_file": f"measured:{prior_file[1]}"}
    # Unknown or impossible options fail here, before distilling; `auto` choices are resolved (and hashed) here.
    resolved = create_method(name, **options).resolve_options(real=real, ipc=cfg.ipc)
    options, hashed = {**options, **resolved}, {**hashed, **resolved}
    holdout = None
    if cfg.validation is not None:
        from dd_bench.data import split_validation

        # Everything fitted to data (experts, teachers, the ZCA whitening) sees the training set minus the split;
        # the evaluator whitens with that same matrix (evaluation_real).
        real, val = split_validation(real, fraction=cfg.validation, seed=cfg.seed, refit_zca=True)
        holdout = {"fraction": cfg.validation, "seed": cfg.seed, "num_images": len(val["indices"]),
                   "indices": [int(i) for i in val["indices"]]}
    digest = set_hash(method=name, method_config=hashed, dataset=config["dataset"],
                      data_fingerprint=real.fingerprint(), ipc=cfg.ipc, seed=cfg.seed, validation=cfg.validation,
                      image_store=store_identity(cfg.image_store, cfg.jpeg_quality))
    out = Path(cfg.out) if cfg.out else Path(cfg.results) / "synsets" / set_dirname(
        method=name, dataset=real.name, ipc=cfg.ipc, seed=cfg.seed, set_hash_hex=digest)
    return DistillPlan(method=name, options=options, real=real, holdout=holdout, set_hash=digest, out=out,
                       image_store=cfg.image_store, jpeg_quality=cfg.jpeg_quality)


def evaluation_real(real, meta: dict[str, Any]):
    """The data a set is scored against: ``real``, except that a set distilled with a validation split in ZCA space
    was whitened by a ZCA fitted without the held-out images, so the evaluator refits that same matrix (checked by
    its SHA-256) and whitens the test images with it."""
    space = meta.get("image_space") or {}
    validation = (meta.get("provenance") or {}).get("validation")
    if real.zca is None or space.get("space") != "zca" or not validation or space.get("sha256") == real.zca.sha256:
        return real
    import dataclasses

    import torch

    from dd_bench.data.zca import fit_zca

    keep = torch.ones(len(real.train_labels), dtype=torch.bool)
    keep[torch.as_tensor(validation["indices"], dtype=torch.long)] = False
    zca = fit_zca(real.train_images[keep.to(real.device)].float().div(255.0), eps=real.zca.eps)
    if zca.sha256 != space.get("sha256"):
        raise UserError("the set's ZCA matrix (fitted without its validation split) could not be reproduced from "
                        "this data: evaluate with the dataset the set was distilled from")
    return dataclasses.replace(real, zca=zca)


@contextlib.contextmanager
def _distill_logging(cfg: DictConfig, plan: DistillPlan):
    """logger=wandb: the distillation as a wandb run (curves as they happen, then the set); else nothing."""
    if cfg.logger.name != "wandb":
        yield lambda synset_dir: None
        return
    from dd_bench.results.wandb_logger import distill_config, distill_run

    overrides, sweep = _hydra_context()
    config = distill_config(job_config=job_config(cfg), method=plan.method, method_options=plan.options,
                            set_hash=plan.set_hash, overrides=overrides)
    with distill_run(project=cfg.logger.project, entity=cfg.logger.entity, mode=str(cfg.logger.mode),
                     config=config, set_hash=plan.set_hash,
                     name=f"distill-{plan.method}-{cfg.dataset.name}-ipc{cfg.ipc}-s{cfg.seed}",
                     group=sweep or f"{cfg.dataset.name}-ipc{cfg.ipc}", directory=cfg.results) as attach:
        yield attach


def task_distill(cfg: DictConfig, real=None) -> dict[str, Any]:
    from dd_bench.pipeline.cvdd_priors import measure_sre2l_pp_priors, needs_measuring
    from dd_bench.pipeline.references import distill_to_disk

    check_image_store_of(cfg)
    real = real if real is not None else load_real(cfg)
    plan = plan_distill(cfg, real)
    if needs_measuring(plan.method, plan.options):  # CV-DD's priors=sre2l_pp: the SRe2L++ sets first
        measured = measure_sre2l_pp_priors(
            real=plan.real, options=plan.options, dataset=job_config(cfg)["dataset"], ipc=cfg.ipc, seed=cfg.seed,
            holdout=plan.holdout, protocol=protocol_of(cfg), model=cfg.models[0], seeds=list(range(cfg.seeds)),
            label_source=label_sources_of(cfg)[0], results_dir=Path(cfg.results), cache_dir=_cache_dir(cfg),
            progress=cfg.progress, image_store=plan.image_store, jpeg_quality=plan.jpeg_quality)
        plan = plan_distill(cfg, real, prior_file=(str(measured.path), measured.digest))
    with _distill_logging(cfg, plan) as attach:
        synset, seconds, reused = distill_to_disk(
            method=plan.method, method_kwargs=plan.options, real=plan.real, ipc=cfg.ipc, seed=cfg.seed,
            out=plan.out, preset=cfg.preset or (f"experiment/{cfg.experiment}" if cfg.experiment else None),
            progress=cfg.progress, validation=plan.holdout, set_hash=plan.set_hash, cache_dir=_cache_dir(cfg),
            rerun=cfg.rerun, image_store=plan.image_store, jpeg_quality=plan.jpeg_quality,
            data_fingerprint=real.fingerprint())  # the data as loaded: what an importer of its export checks
        attach(plan.out)
    what = "reused (this config's set exists; rerun=true distils again)" if reused else f"{seconds:.1f} s"
    print(f"{'kept' if reused else 'wrote'} {plan.out} ({len(synset.images)} images, "
          f"{synset.storage()['total_bytes']} bytes, {what}{', preset ' + synset.preset if synset.preset else ''})")
    return {"synset": str(plan.out), "distill_seconds": seconds, "preset": synset.preset, "reused": reused,
            "set_hash": plan.set_hash}


def task_evaluate(cfg: DictConfig, synset_dir: Path | None = None, real=None, show: bool = True,
                  relabel: bool = False) -> dict[str, Any]:
    from dd_bench.labels import same_label_kinds
    from dd_bench.pipeline.references import evaluate_to_records, reference_records
    from dd_bench.results import build_leaderboard
    from dd_bench.synset import read_meta
    from dd_bench.synset.labels_section import LabelsSection

    synset_dir = synset_dir or (Path(cfg.synset) if cfg.synset else None)
    if synset_dir is None:
        raise UserError("evaluate needs synset=DIR (a directory written by `dd-bench distill`)")
    check_models(list(cfg.models))
    sources = label_sources_of(cfg)
    meta = read_meta(synset_dir)
    protocol = protocol_of(cfg)
    real = evaluation_real(real if real is not None else load_real(cfg, dataset_name=meta["dataset"]), meta)
    seeds = list(range(cfg.seeds))
    from dd_bench.pipeline.robust import check_scores, robust_scores

    check_scores(list(cfg.scores))
    new, kept = [], []
    for source in sources:
        done, found = evaluate_to_records(
            synset_dir=synset_dir, real=real, protocol=protocol, models=list(cfg.models), seeds=seeds,
            results_dir=Path(cfg.results), config=job_config(cfg), batched=cfg.eval.batched, progress=cfg.progress,
            rerun=cfg.rerun, label_source=source, cache_dir=_cache_dir(cfg), relabel=relabel)
        if cfg.scores:
            scored = {r.record_hash: r for r in robust_scores(
                kinds=list(cfg.scores), own=done + found, synset_dir=synset_dir, real=real, protocol=protocol,
                seeds=seeds, results_dir=Path(cfg.results), config=job_config(cfg), label_source=source,
                cache_dir=_cache_dir(cfg), progress=cfg.progress, batched=cfg.eval.batched)}
            done = [scored.get(r.record_hash, r) for r in done]
            found = [scored.get(r.record_hash, r) for r in found]
        new, kept = new + done, kept + found
    if kept:
        print(f"kept {len(kept)} existing record(s) of this config ({', '.join(r.model for r in kept)}); "
              "rerun=true evaluates again")
    records = new + kept
    if cfg.references:
        section = LabelsSection.from_meta(meta)
        how = same_label_kinds(section, sources)
        records += reference_records(real=real, protocol=protocol, models=list(cfg.models), seeds=seeds,
                                     ipcs=[int(meta["ipc"])], results_dir=Path(cfg.results),
                                     kinds=tuple(cfg.references), progress=cfg.progress, cache_dir=_cache_dir(cfg),
                                     teachers=section if how else None, teacher_labels=how)
    if show:
        _print_board(build_leaderboard(records, published_csv=_published()))
    return {"records": [r.to_dict() for r in records], "evaluated": len(new), "kept": len(kept)}


def label_sources_of(cfg: DictConfig) -> list[str]:
    """The label sources a task scores with (``label_sources``, else ``label_source``), each checked, in order."""
    from dd_bench.labels import check_label_source

    sources = list(cfg.get("label_sources") or [cfg.label_source])
    for source in sources:
        check_label_source(source)
    if len(set(sources)) != len(sources):
        raise UserError(f"label_sources={sources} names a source twice")
    return sources


def task_run(cfg: DictConfig, real=None, show: bool = True) -> dict[str, Any]:
    from dd_bench.app.input_checks import check_task_inputs

    check_task_inputs(cfg)  # fail on any bad key before distilling (the demo calls this for each of its jobs)
    real = real if real is not None else load_real(cfg)
    distilled = task_distill(cfg, real=real)
    return {**distilled, **task_evaluate(cfg, synset_dir=Path(distilled["synset"]), real=real, show=show,
                                         relabel=True)}


def task_relabel(cfg: DictConfig, real=None) -> dict[str, Any]:
    from dd_bench.labels.relabel import relabel_to_disk
    from dd_bench.synset import read_meta

    if not cfg.synset:
        raise UserError("relabel needs synset=DIR (a set whose labels section names its teachers) and eval=NAME")
    meta = read_meta(cfg.synset)
    protocol = protocol_of(cfg)
    real = real if real is not None else load_real(cfg, dataset_name=meta["dataset"])
    entry = relabel_to_disk(synset_dir=Path(cfg.synset), real=real, protocol=protocol, cache_dir=_cache_dir(cfg),
                            progress=cfg.progress)
    print(f"{cfg.synset}: stored labels for {protocol.name} ({entry['epochs']} epochs, batch {entry['batch_size']}, "
          f"{entry['bytes']} bytes) in {entry['dir']}")
    return {"synset": str(cfg.synset), "labels": entry}


def task_leaderboard(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.results import build_leaderboard, load_records, write_leaderboard

    if cfg.wandb_project:
        from dd_bench.results.wandb_logger import records_from_wandb

        records = records_from_wandb(cfg.wandb_project)
        if not records:
            raise UserError(f"no dd-bench record files in the runs of wandb_project={cfg.wandb_project}")
    else:
        records = load_records(cfg.results)
    if not records:
        raise UserError(f"no run records under '{cfg.results}' (looked for {cfg.results}/**/records/*.json)")
    df = build_leaderboard(records, published_csv=_published())
    csv_path, md_path = write_leaderboard(df, Path(cfg.results))
    _print_board(df)
    print(f"wrote {csv_path} and {md_path}")
    return {"csv": str(csv_path), "markdown": str(md_path), "board": df}


def task_report(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.results import load_records
    from dd_bench.results.report import build_report

    records = load_records(cfg.results)
    if not records:
        raise UserError(f"no run records under '{cfg.results}' (looked for {cfg.results}/**/records/*.json)")
    from dd_bench.resources import LEDGER_DIR

    page = build_report(records, out_dir=Path(cfg.out or Path(cfg.results) / "report"), published_csv=_published(),
                        cache_dir=_cache_dir(cfg), ledger_dir=LEDGER_DIR)
    print(f"wrote {page} (self-contained; the figures also as PNG beside it) from {len(records)} records")
    return {"report": str(page), "records": []}


def task_demo(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.app.demo import run_demo

    started = time.perf_counter()
    check_models(list(cfg.demo.models))
    board = run_demo(cfg, real=load_real(cfg, dataset_name=cfg.demo.dataset), run_job=task_run)
    _print_board(board)
    print(f"records, synsets (with preview.png) and leaderboard.csv/.md written under {cfg.results}/")
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return {"leaderboard": board, "records": board.attrs.get("records", [])}


def _hydra_context() -> tuple[list[str], str | None]:
    """(the command line's overrides, the sweep's name under multirun) when Hydra runs the job, else ([], None)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return [], None
    sweep = Path(hc.sweep.dir).name if hc.mode == RunMode.MULTIRUN else None
    return list(hc.overrides.task), sweep


def _log(cfg: DictConfig, result: dict[str, Any]) -> None:
    """Send the records a task produced to the configured logger (wandb is a view, never the source of truth)."""
    if cfg.logger.name == "none":
        return
    from dd_bench.results import RunRecord
    from dd_bench.results.wandb_logger import log_leaderboard, log_records

    overrides, sweep = _hydra_context()  # a distillation logged itself as it ran (_distill_logging)
    if cfg.task == "leaderboard" and result.get("board") is not None:
        log_leaderboard(result["board"], project=cfg.logger.project, entity=cfg.logger.entity,
                        mode=str(cfg.logger.mode), directory=cfg.results)
        return
    records = [RunRecord.from_dict(r) for r in result.get("records", [])]
    log_records(records, project=cfg.logger.project, entity=cfg.logger.entity, mode=str(cfg.logger.mode),
                job_type=cfg.task, overrides=overrides, sweep=sweep, directory=cfg.results)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Dispatch on ``cfg.task``. Raises :class:`UserError` on bad input; anything else is a bug."""
    from dd_bench.app.exchange_tasks import task_export, task_import

    tasks = {"demo": task_demo, "distill": task_distill, "evaluate": task_evaluate, "run": task_run,
             "relabel": task_relabel, "leaderboard": task_leaderboard, "export": task_export, "import": task_import,
             "report": task_report}
    if cfg.task not in tasks:
        raise UserError(f"Unknown task '{cfg.task}'; available: {', '.join(TASKS)}")
    if cfg.logger.name not in LOGGERS:
        raise UserError(f"Unknown logger '{cfg.logger.name}'; available: {', '.join(LOGGERS)}")
    if cfg.logger.name == "wandb":
        from dd_bench.results.wandb_logger import _import_wandb

        _import_wandb()  # fail before any work when the extra is missing
    if cfg.progress is None:  # bars on a terminal only: SLURM logs and pipes get none (progress=true forces them)
        cfg.progress = sys.stderr.isatty()
    from dd_bench.app.input_checks import check_task_inputs

    check_task_inputs(cfg)  # every key the task reads, before any work: seeds=0 would distil, then fail
    result = tasks[cfg.task](cfg)
    _log(cfg, result)
    return result
