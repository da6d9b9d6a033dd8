"""Every input a task reads, checked before the task does any work (no data read, nothing distilled, no directory
made): each bad value fails in one line naming it and the valid options.

Two stages, because Hydra rejects some values while composing (a config group with no such file) and composition
cannot check the rest (a model name is a plain string to it):

- :func:`group_choice_error` reads the command line before Hydra composes it (``eval=nope``, ``method=dmm``): Hydra's
  own report is a dozen lines ending in a search path. It reads ``conf/`` only, so it imports nothing heavy.
- :func:`check_task_inputs` reads the composed config, task by task: the registries (models, protocols, label
  sources, scores, references, methods, data sets) and the numbers (seeds, ipc, validation, eval fields).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError

# Config groups a user picks on the command line (conf/<group>/<name>.yaml) and what one option of each is called.
# preset is left out: it is chosen by interpolation (${method}/${dataset}) and is optional; hydra/* is Hydra's.
GROUPS = {"eval": "protocol", "method": "method", "dataset": "dataset", "logger": "logger",
          "experiment": "experiment"}
LONG_LIST = 30  # a group with more options than this (the experiments) is named by close matches and a count


def _did_you_mean(value: str, names: list[str]) -> str:
    close = difflib.get_close_matches(value, names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def group_choice_error(overrides: list[str], *, conf_dir: Path) -> str | None:
    """One line for a ``group=name`` override (``eval=``, ``method=``, ``dataset=``, ``logger=``, ``experiment=``)
    naming no file of ``conf/<group>/``, with a did-you-mean and the options; None when every choice exists.

    Sweeps (``method=dm,dc``) are checked value by value; Hydra's sweep functions (``choice(...)``, ``glob(...)``)
    and interpolations are left to Hydra."""
    for override in overrides:
        key, sep, value = override.lstrip("+").partition("=")
        if not sep or key not in GROUPS or value in ("", "null") or any(c in value for c in "()[]{}$'\" "):
            continue
        names = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
        for name in value.split(","):
            if name in names:
                continue
            kind = GROUPS[key]
            if len(names) > LONG_LIST:
                close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
                listed = (f"closest: {', '.join(close)}; " if close else "") + \
                    f"{len(names)} in all (dd-bench --help lists them, conf/{key}/ holds them)"
                return f"{key}={value}: Unknown {kind} '{name}'; {listed}"
            return f"{key}={value}: Unknown {kind} '{name}'{_did_you_mean(name, names)}; available: {', '.join(names)}"
    return None


def check_seeds(key: str, seeds: Any) -> None:
    # bool is an int in Python; seeds=true is not a count.
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise UserError(f"{key}={seeds}: the number of evaluation networks, an integer >= 1 (seeds=5 trains "
                        "networks 0-4)")


def check_model_list(key: str, models: list[str]) -> None:
    """A non-empty list of registered models (or ``timm.<name>``)."""
    from dd_bench.models import MODELS, list_models

    if not models:
        raise UserError(f"{key}=[] names no model; give at least one, e.g. {key}=[convnet]; available: "
                        f"{', '.join(list_models())}")
    for m in models:
        if not m.startswith("timm.") and m not in MODELS:
            raise UserError(f"Unknown model '{m}'; available: {', '.join(list_models())}"
                            f"{_did_you_mean(m, list(MODELS.list()))}")


def check_protocol(key: str, name: str, *, needs_kd: bool = False) -> Any:
    """A registered protocol (one that trains by KD from a label source when ``needs_kd``); returns it."""
    from dd_bench.eval import PROTOCOLS, get_protocol

    if name not in PROTOCOLS:
        raise UserError(f"{key}={name}: Unknown protocol '{name}'{_did_you_mean(name, PROTOCOLS.list())}; available: "
                        f"{', '.join(PROTOCOLS.list())}")
    protocol = get_protocol(name)
    if needs_kd and not protocol.trains_by_kd:
        names = [p for p in PROTOCOLS.list() if get_protocol(p).trains_by_kd]
        raise UserError(f"{key}={name}: a kd protocol is needed here, and '{name}' is of the {protocol.family} "
                        f"family; kd protocols: {', '.join(names)}")
    return protocol


def check_eval(cfg: Any) -> Any:
    """``eval=`` and its field overrides (``eval.epochs`` ...): the protocol they make, or one line."""
    check_protocol("eval", cfg.eval.name)
    if cfg.eval.lr is not None and not cfg.eval.lr > 0:
        raise UserError(f"eval.lr={cfg.eval.lr}: the learning rate must be > 0")
    if cfg.eval.epochs is not None and cfg.eval.epochs < 0:
        raise UserError(f"eval.epochs={cfg.eval.epochs}: the last pass index, an integer >= 0 (epochs + 1 passes)")
    if cfg.eval.batch_size is not None and cfg.eval.batch_size < 1:
        raise UserError(f"eval.batch_size={cfg.eval.batch_size}: an integer >= 1")
    from dd_bench.app.job import protocol_of

    return protocol_of(cfg)  # unknown fields and impossible values of the protocol itself fail here


def check_references(key: str, kinds: list[str]) -> None:
    from dd_bench.eval.reference import REFERENCES

    names = REFERENCES.list()
    unknown = [k for k in kinds if k not in names]
    if unknown:
        raise UserError(f"{key}={list(kinds)}: Unknown reference kind '{unknown[0]}'"
                        f"{_did_you_mean(unknown[0], names)}; available: {', '.join(names)}")


def check_scores(kinds: list[str]) -> None:
    from dd_bench.pipeline.robust import ROBUST_SCORES

    names = ROBUST_SCORES.list()
    unknown = [k for k in kinds if k not in names]
    if unknown:
        raise UserError(f"scores={list(kinds)}: Unknown score '{unknown[0]}'{_did_you_mean(unknown[0], names)}"
                        f"; available: {', '.join(names)}")


def check_ipc(key: str, ipc: Any) -> None:
    if not isinstance(ipc, int) or isinstance(ipc, bool) or ipc < 1:
        raise UserError(f"{key}={ipc}: images per class, an integer >= 1")


def check_validation(fraction: Any) -> None:
    if fraction is not None and not 0 < float(fraction) < 1:
        raise UserError(f"validation={fraction}: the held-out fraction of the training set, in (0, 1) (e.g. 0.1), "
                        "or null for none")


def check_method(cfg: Any) -> None:
    """The method's options as composed (an impossible combination fails in the method's own check)."""
    from dd_bench.app.job import job_config
    from dd_bench.methods import create_method

    options = dict(job_config(cfg)["method"])
    create_method(options.pop("name"), **options)


def _needs_evaluation_keys(cfg: Any) -> bool:
    """distill reads models/seeds/eval/label sources only when CV-DD measures its priors first (it scores sets)."""
    from dd_bench.app.job import job_config
    from dd_bench.pipeline.cvdd_priors import needs_measuring

    options = dict(job_config(cfg)["method"])
    return needs_measuring(options.pop("name"), options)


def check_evaluation_keys(cfg: Any) -> None:
    """What evaluate and run read: seeds, models, eval, label sources, scores, references."""
    from dd_bench.app.job import label_sources_of

    check_seeds("seeds", cfg.seeds)
    check_model_list("models", list(cfg.models))
    check_eval(cfg)
    label_sources_of(cfg)
    check_scores(list(cfg.scores))
    check_references("references", list(cfg.references))


def check_distill_keys(cfg: Any) -> None:
    """What distill (and the first half of run) reads: ipc, validation, the image store, the method's options."""
    from dd_bench.app.job import check_image_store_of

    check_ipc("ipc", cfg.ipc)
    check_validation(cfg.validation)
    check_image_store_of(cfg)
    check_method(cfg)


def check_demo_keys(cfg: Any) -> None:
    from dd_bench.data import DATASETS
    from dd_bench.methods import METHODS

    demo = cfg.demo
    DATASETS.get(demo.dataset)
    if not demo.ipcs:
        raise UserError("demo.ipcs=[] names no IPC; give at least one, e.g. demo.ipcs=[1]")
    for ipc in demo.ipcs:
        check_ipc("demo.ipcs", ipc)
    check_model_list("demo.models", list(demo.models))
    check_model_list("demo.kd_models", list(demo.kd_models))
    check_seeds("demo.seeds", demo.seeds)
    check_protocol("demo.protocol", demo.protocol)
    check_protocol("demo.kd_protocol", demo.kd_protocol, needs_kd=True)
    for name in demo.methods or []:
        METHODS.get(name)
    check_references("demo.references", list(demo.references))
    if str(demo.full_data) == "compute":
        check_seeds("demo.full_data_seeds", demo.full_data_seeds)


def check_task_inputs(cfg: Any) -> None:
    """Check every key ``cfg.task`` reads; raises :class:`UserError` (one line) on the first bad one.

    Called by :func:`dd_bench.app.tasks.run` before dispatching, so a bad value never costs a distillation (``seeds=0``
    used to distil for 36 s, then fail)."""
    task = cfg.task
    if task in ("demo", "distill", "evaluate", "run", "relabel", "import"):
        from dd_bench.pipeline.device import resolve_device

        resolve_device(cfg.device)
    if task == "demo":
        check_demo_keys(cfg)
    if task in ("distill", "run"):
        check_distill_keys(cfg)
    if task in ("evaluate", "run") or (task == "distill" and _needs_evaluation_keys(cfg)):
        check_evaluation_keys(cfg)
    if task == "evaluate":
        _check_synset(cfg, task="evaluate")
    if task == "relabel":
        _check_synset(cfg, task="relabel")
        check_protocol("eval", cfg.eval.name, needs_kd=True)  # relabel makes kd labels
        check_eval(cfg)
    if task == "export" and cfg.materialise:
        check_protocol("materialise", cfg.materialise, needs_kd=True)
    if task == "import":
        _check_import(cfg)


def _check_synset(cfg: Any, *, task: str) -> None:
    from dd_bench.synset import read_meta

    if not cfg.synset:
        raise UserError(f"{task} needs synset=DIR (a directory written by `dd-bench distill`)")
    read_meta(cfg.synset)  # a missing directory or a foreign one fails here, naming it


def _check_import(cfg: Any) -> None:
    from dd_bench.exchange.pixels import SPACES

    if cfg.space is not None and cfg.space not in SPACES:
        raise UserError(f"space={cfg.space}: Unknown image space '{cfg.space}'{_did_you_mean(cfg.space, list(SPACES))}"
                        f"; available: {', '.join(SPACES)}")
    if cfg.get("classes") and not Path(cfg.classes).is_file():
        from dd_bench.errors import UserFileNotFoundError

        raise UserFileNotFoundError(f"classes={cfg.classes} does not exist; expected a names file, one class name "
                                    "per line in the file's label order")
