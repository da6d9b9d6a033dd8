"""Command line: ``dd-bench [TASK] [overrides...]``; the only module that reads the Hydra config.

Tasks: ``demo`` (default: the quick digits benchmark), ``distill``, ``evaluate``, ``run`` (distill then
evaluate), ``leaderboard``. ``run(cfg)`` is importable and testable without a subprocess.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dd_bench.config_schema import TASKS, register_schemas

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, KeyError)


class UserError(Exception):
    """A mistake in the command line or inputs: reported in one line, without a traceback."""


def _user_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ValueError, ImportError):
        return []


def _method_options(cfg: DictConfig) -> tuple[dict[str, Any], str | None]:
    """The method's options after its preset, and the preset's name for the record."""
    from dd_bench.presets import apply_preset, find_preset

    values = OmegaConf.to_container(cfg.method, resolve=True)
    name = values.pop("name")
    if cfg.experiment:
        return values, f"experiment/{cfg.experiment}"
    if not cfg.preset:
        return values, None
    found = find_preset(name, cfg.dataset.name, cfg.ipc)
    if found is None:
        return values, None
    preset, preset_name = found
    user_keys = {o.split("=", 1)[0].lstrip("+~").removeprefix("method.") for o in _user_overrides()
                 if o.lstrip("+~").startswith("method.")}
    return apply_preset(values, preset, user_keys), preset_name


def _load_real(cfg: DictConfig, dataset_name: str | None = None):
    from dd_bench.data import load_dataset
    from dd_bench.workflow import resolve_device

    d = cfg.dataset
    real = load_dataset(dataset_name or d.name, root=d.root, download=d.download, zca=d.zca, cache_dir=d.cache_dir,
                        image_size=d.image_size, progress=cfg.progress)
    return real.to(resolve_device(cfg.device))


def _protocol(cfg: DictConfig, name: str | None = None):
    from dd_bench.eval import custom_protocol, get_protocol

    name = name or cfg.eval.name
    fields = ("epochs", "batch_size", "lr", "use_learned_lr", "augment")
    overrides = {f: cfg.eval[f] for f in fields if cfg.eval[f] is not None}
    return custom_protocol(name, **overrides) if overrides else get_protocol(name)


def _check_models(models: list[str]) -> None:
    from dd_bench.models import MODELS

    for m in models:
        if not m.startswith("timm.") and m not in MODELS:
            raise ValueError(f"Unknown model '{m}'; available: {', '.join(MODELS.list())}, timm.<any timm model>")


def _print_board(df) -> None:
    from dd_bench.results import format_leaderboard_text

    print(format_leaderboard_text(df))


def _default_out(cfg: DictConfig) -> Path:
    return Path(cfg.results) / "synsets" / f"{cfg.method.name}-{cfg.dataset.name}-ipc{cfg.ipc}-s{cfg.seed}"


def task_distill(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.workflow import distill_to_disk

    options, preset = _method_options(cfg)
    real = _load_real(cfg)
    holdout = None
    if cfg.validation is not None:
        from dd_bench.data import split_validation

        # ZCA stays the full-training-set fit the evaluator uses (label-free preprocessing, as in the papers).
        real, val = split_validation(real, fraction=cfg.validation, seed=cfg.seed, refit_zca=False)
        holdout = {"fraction": cfg.validation, "seed": cfg.seed, "num_images": len(val["indices"]),
                   "indices": [int(i) for i in val["indices"]]}
    out = Path(cfg.out) if cfg.out else _default_out(cfg)
    synset, seconds = distill_to_disk(method=cfg.method.name, method_kwargs=options, real=real, ipc=cfg.ipc,
                                      seed=cfg.seed, out=out, preset=preset, progress=cfg.progress,
                                      validation=holdout)
    print(f"wrote {out} ({len(synset.images)} images, {synset.storage()['total_bytes']} bytes, {seconds:.1f} s"
          f"{', preset ' + preset if preset else ''})")
    return {"synset": str(out), "distill_seconds": seconds, "preset": preset}


def task_evaluate(cfg: DictConfig, synset_dir: Path | None = None) -> dict[str, Any]:
    from dd_bench.results import build_leaderboard
    from dd_bench.synset import read_meta
    from dd_bench.workflow import evaluate_to_records, reference_records

    synset_dir = synset_dir or (Path(cfg.synset) if cfg.synset else None)
    if synset_dir is None:
        raise UserError("evaluate needs synset=DIR (a directory written by `dd-bench distill`)")
    _check_models(list(cfg.models))
    meta = read_meta(synset_dir)
    protocol = _protocol(cfg)
    real = _load_real(cfg, dataset_name=meta["dataset"])
    seeds = list(range(cfg.seeds))
    config = OmegaConf.to_container(cfg, resolve=True)
    records = evaluate_to_records(synset_dir=synset_dir, real=real, protocol=protocol, models=list(cfg.models),
                                  seeds=seeds, results_dir=Path(cfg.results), config=config,
                                  batched=cfg.eval.batched, progress=cfg.progress)
    if cfg.references:
        records += reference_records(real=real, protocol=protocol, models=list(cfg.models), seeds=seeds,
                                     ipcs=[int(meta["ipc"])], results_dir=Path(cfg.results),
                                     kinds=tuple(cfg.references), progress=cfg.progress)
    _print_board(build_leaderboard(records, published_csv=_published()))
    return {"records": [r.to_dict() for r in records]}


def task_run(cfg: DictConfig) -> dict[str, Any]:
    _check_models(list(cfg.models))
    _protocol(cfg)  # fail on a bad protocol before distilling
    distilled = task_distill(cfg)
    return {**distilled, **task_evaluate(cfg, synset_dir=Path(distilled["synset"]))}


def task_leaderboard(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.results import build_leaderboard, load_records, write_leaderboard

    records = load_records(cfg.results)
    if not records:
        raise UserError(f"no run records under '{cfg.results}' (looked for {cfg.results}/**/records/*.json)")
    df = build_leaderboard(records, published_csv=_published())
    csv_path, md_path = write_leaderboard(df, Path(cfg.results))
    _print_board(df)
    print(f"wrote {csv_path} and {md_path}")
    return {"csv": str(csv_path), "markdown": str(md_path)}


def task_demo(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.demo import run_demo
    from dd_bench.eval import get_protocol
    from dd_bench.methods import METHODS
    from dd_bench.presets import apply_preset, find_preset, method_file_values, methods_with_preset

    demo = cfg.demo
    _check_models(list(demo.models))
    names = list(demo.methods) if demo.methods is not None else methods_with_preset(demo.dataset, METHODS.list())
    jobs = []
    for name in names:
        METHODS.get(name)  # unknown names fail here, listing the options
        for ipc in demo.ipcs:
            found = find_preset(name, demo.dataset, ipc)
            if found is None:
                raise UserError(f"method '{name}' has no {demo.dataset} preset for ipc {ipc} "
                                f"(conf/preset/{name}/{demo.dataset}.yaml)")
            jobs.append((name, ipc, apply_preset(method_file_values(name), found[0], set()), found[1]))
    real = _load_real(cfg, dataset_name=demo.dataset)
    board = run_demo(real=real, jobs=jobs, ipcs=list(demo.ipcs), models=list(demo.models),
                     seeds=list(range(demo.seeds)), protocol=get_protocol(demo.protocol), results_dir=Path(cfg.results),
                     seed=cfg.seed, references=tuple(demo.references), full_data_seeds=demo.full_data_seeds,
                     progress=cfg.progress)
    _print_board(board)
    print(f"records, synsets (with preview.png) and leaderboard.csv/.md written under {cfg.results}/")
    return {"leaderboard": board, "records": board.attrs.get("records", [])}


def _published() -> Path | None:
    path = Path(__file__).resolve().parent.parent / "baselines" / "published.csv"
    return path if path.is_file() else None


LOGGERS = ("none", "wandb")


def _log(cfg: DictConfig, result: dict[str, Any]) -> None:
    """Send the records a task produced to the configured logger (wandb is a view, never the source of truth)."""
    if cfg.logger.name == "none":
        return
    from dd_bench.results import RunRecord
    from dd_bench.results.wandb_logger import log_records

    records = [RunRecord.from_dict(r) for r in result.get("records", [])]
    log_records(records, project=cfg.logger.project, entity=cfg.logger.entity, mode=cfg.logger.mode,
                config=OmegaConf.to_container(cfg, resolve=True), job_type=cfg.task)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Dispatch on ``cfg.task``. Raises UserError (or ValueError & co.) on bad input."""
    tasks = {"demo": task_demo, "distill": task_distill, "evaluate": task_evaluate, "run": task_run,
             "leaderboard": task_leaderboard}
    if cfg.task not in tasks:
        raise UserError(f"Unknown task '{cfg.task}'; available: {', '.join(TASKS)}")
    if cfg.logger.name not in LOGGERS:
        raise UserError(f"Unknown logger '{cfg.logger.name}'; available: {', '.join(LOGGERS)}")
    if cfg.logger.name == "wandb":
        from dd_bench.results.wandb_logger import _import_wandb

        _import_wandb()  # fail before any work when the extra is missing
    result = tasks[cfg.task](cfg)
    _log(cfg, result)
    return result


def help_text() -> str:
    from dd_bench.data import DATASETS
    from dd_bench.eval import PROTOCOLS
    from dd_bench.methods import list_methods
    from dd_bench.models import MODELS

    return "\n".join([
        "usage: dd-bench [TASK] [key=value ...] [-m]",
        "",
        "tasks:",
        "  (none)       the quick benchmark on the embedded digits set (demo.* keys)",
        "  distill      method= dataset= ipc= out= seed=0",
        "  evaluate     synset=DIR eval=mtt models=[convnet] seeds=5 results=runs",
        "  run          distill then evaluate (the union of both)",
        "  leaderboard  results=runs; writes leaderboard.csv and leaderboard.md",
        "",
        f"methods:   {', '.join(list_methods())}",
        f"datasets:  {', '.join(DATASETS.list())}",
        f"models:    {', '.join(MODELS.list())}, timm.<any timm model>",
        f"protocols: {', '.join(PROTOCOLS.list())}",
        "",
        "examples:",
        "  dd-bench run method=dm dataset=cifar10 dataset.root=/data/cifar10 ipc=10 models=[convnet,resnet18]",
        "  dd-bench run -m method=dm,random,herding,kcenter ipc=1,10   # Hydra multirun sweep",
        "  dd-bench run experiment=dm_cifar10_ipc10 dataset.root=/data/cifar10",
        "Hydra's own options: dd-bench --hydra-help",
    ])


def _hydra_entry() -> None:
    import hydra

    from dd_bench.presets import CONF_DIR

    register_schemas()

    # An absolute path: Hydra would resolve a relative one as a Python package when run as an installed script.
    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def entry(cfg: DictConfig) -> None:
        try:
            run(cfg)
        except (UserError, *USER_ERRORS) as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    entry()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help", "help"):
        print(help_text())
        return 0
    task = "demo"
    if argv and not argv[0].startswith("-") and "=" not in argv[0]:
        task = argv.pop(0)
        if task not in TASKS:
            print(f"error: Unknown task '{task}'; available: {', '.join(TASKS)}", file=sys.stderr)
            return 2
    if "-h" in argv or "--help" in argv:
        print(help_text())
        return 0
    # Hydra's argparse takes the overrides as one contiguous run of positionals: put task= next to them,
    # after any flags (-m, --cfg job, ...) that come first.
    first_override = next((i for i, a in enumerate(argv) if not a.startswith("-") and "=" in a), len(argv))
    argv.insert(first_override, f"task={task}")
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else "dd-bench", *argv]
    try:
        _hydra_entry()
    except SystemExit as e:  # Hydra exits 1 on a config error; our handler exits 2 on bad input
        return e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        print("interrupted: finished sets, records and the last checkpoint are kept on disk", file=sys.stderr)
        return 130
    finally:
        sys.argv = saved_argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
