"""The tasks behind ``dd-bench TASK``: each adapts the composed config to the library's keyword-argument calls.

``run(cfg)`` dispatches on ``cfg.task`` and is importable and testable without a subprocess. A task reads its config
through :mod:`dd_bench.app.job`; only :mod:`dd_bench.app` reads a config object.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from dd_bench.app.config_schema import TASKS
from dd_bench.app.job import (
    cache_dir_of,
    check_image_store_of,
    check_models,
    job_config,
    label_sources_of,
    load_real,
    protocol_of,
)
from dd_bench.errors import UserError

if TYPE_CHECKING:
    from dd_bench.pipeline.plan import DistillPlan

LOGGERS = ("none", "wandb")


def _published() -> Path | None:
    from dd_bench.resources import PUBLISHED_CSV

    return PUBLISHED_CSV if PUBLISHED_CSV.is_file() else None


def _print_board(df) -> None:
    from dd_bench.results import format_leaderboard_text

    print(format_leaderboard_text(df))


def plan_distill(cfg: DictConfig, real, prior_file: tuple[str, str] | None = None) -> DistillPlan:
    """Everything about the set this config makes, before any work: options checked, set hash, directory
    (:func:`dd_bench.pipeline.plan.plan_distill`). ``prior_file``: (path, digest) of CV-DD's measured priors; the set
    hash takes the digest, not the path."""
    from dd_bench.pipeline import plan as pipeline_plan

    config = job_config(cfg)
    return pipeline_plan.plan_distill(method_config=config["method"], dataset=config["dataset"], real=real,
                                      ipc=cfg.ipc, seed=cfg.seed, validation=cfg.validation,
                                      image_store=cfg.image_store, jpeg_quality=cfg.jpeg_quality, out=cfg.out,
                                      results_dir=cfg.results, prior_file=prior_file)


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
    from dd_bench.pipeline.distill import distill_to_disk

    check_image_store_of(cfg)
    real = real if real is not None else load_real(cfg)
    plan = plan_distill(cfg, real)
    if needs_measuring(plan.method, plan.options):  # CV-DD's priors=sre2l_pp: the SRe2L++ sets first
        measured = measure_sre2l_pp_priors(
            real=plan.real, options=plan.options, dataset=job_config(cfg)["dataset"], ipc=cfg.ipc, seed=cfg.seed,
            holdout=plan.holdout, protocol=protocol_of(cfg), model=cfg.models[0], seeds=list(range(cfg.seeds)),
            label_source=label_sources_of(cfg)[0], results_dir=Path(cfg.results), cache_dir=cache_dir_of(cfg),
            progress=cfg.progress, image_store=plan.image_store, jpeg_quality=plan.jpeg_quality)
        plan = plan_distill(cfg, real, prior_file=(str(measured.path), measured.digest))
    with _distill_logging(cfg, plan) as attach:
        synset, seconds, reused = distill_to_disk(
            method=plan.method, method_kwargs=plan.options, real=plan.real, ipc=cfg.ipc, seed=cfg.seed,
            out=plan.out, preset=cfg.preset or (f"experiment/{cfg.experiment}" if cfg.experiment else None),
            progress=cfg.progress, validation=plan.holdout, set_hash=plan.set_hash, cache_dir=cache_dir_of(cfg),
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
    from dd_bench.data.validation import evaluation_real
    from dd_bench.pipeline.score import score_set, set_references
    from dd_bench.results import build_leaderboard
    from dd_bench.synset import read_meta

    synset_dir = synset_dir or (Path(cfg.synset) if cfg.synset else None)
    if synset_dir is None:
        raise UserError("evaluate needs synset=DIR (a directory written by `dd-bench distill`)")
    check_models(list(cfg.models))
    sources = label_sources_of(cfg)
    meta = read_meta(synset_dir)
    protocol = protocol_of(cfg)
    real = evaluation_real(real if real is not None else load_real(cfg, dataset_name=meta["dataset"]), meta)
    seeds = list(range(cfg.seeds))
    new, kept = score_set(synset_dir=synset_dir, real=real, protocol=protocol, models=list(cfg.models), seeds=seeds,
                          results_dir=Path(cfg.results), config=job_config(cfg), label_sources=sources,
                          scores=list(cfg.scores), batched=cfg.eval.batched, progress=cfg.progress, rerun=cfg.rerun,
                          cache_dir=cache_dir_of(cfg), relabel=relabel)
    if kept:
        print(f"kept {len(kept)} existing record(s) of this config ({', '.join(r.model for r in kept)}); "
              "rerun=true evaluates again")
    records = new + kept
    if cfg.references:
        records += set_references(meta=meta, real=real, protocol=protocol, models=list(cfg.models), seeds=seeds,
                                  results_dir=Path(cfg.results), kinds=list(cfg.references), label_sources=sources,
                                  progress=cfg.progress, cache_dir=cache_dir_of(cfg))
    if show:
        _print_board(build_leaderboard(records, published_csv=_published()))
    return {"records": [r.to_dict() for r in records], "evaluated": len(new), "kept": len(kept)}


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
    entry = relabel_to_disk(synset_dir=Path(cfg.synset), real=real, protocol=protocol, cache_dir=cache_dir_of(cfg),
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
                        cache_dir=cache_dir_of(cfg), ledger_dir=LEDGER_DIR)
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
