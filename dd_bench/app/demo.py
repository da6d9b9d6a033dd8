"""The main job: a quick, complete benchmark on the embedded digits set.

Every registered method that has a digits preset is distilled at each IPC (``demo.ipcs``, IPC 1 by default), each
set is scored on each model with several seeds under the ``quick`` protocol (``kd-quick`` on ``demo.kd_models``
for the kd family, beside a random subset with hard labels and one with the set's teacher), beside the
random-subset reference row (cached after the first run) and the full-data ceiling row (by default the recorded one
shipped in ``baselines/references/`` with its provenance; ``demo.full_data=compute`` trains it), and the leaderboard
is printed and written. A method that cannot distil at a demo IPC (INFER at IPC 1: no base set fits its budget) is
skipped with a note naming its smallest IPC and the command that scores it. Each (method, ipc) job is the config
``dd-bench run method=... ipc=...`` composes, so its set, records and hashes are exactly what that command would
produce, and a second demo reuses them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig
from tqdm.auto import tqdm

from dd_bench.app.compose import compose_config, quote
from dd_bench.errors import UserError
from dd_bench.results import RunRecord, build_leaderboard, load_records, write_leaderboard, write_record
from dd_bench.results.keys import reference_hash


def _job_overrides(cfg: DictConfig, method: str, ipc: int) -> list[str]:
    from dd_bench.methods import METHODS

    demo = cfg.demo
    kd = METHODS.get(method).scored_by_kd
    # kd jobs score their own references (cached): the random subset with hard labels and with the set's teacher.
    protocol, models, refs = ((demo.kd_protocol, demo.kd_models, "[random_subset]") if kd
                              else (demo.protocol, demo.models, "[]"))
    overrides = [f"method={method}", f"dataset={demo.dataset}", f"ipc={ipc}", f"eval={protocol}",
                 f"models=[{','.join(models)}]", f"seeds={demo.seeds}", f"references={refs}",
                 f"results={quote(cfg.results)}", f"seed={cfg.seed}", f"progress={cfg.progress}",
                 f"device={quote(cfg.device)}", f"rerun={cfg.rerun}"]
    if cfg.dataset.cache_dir:
        overrides.append(f"dataset.cache_dir={quote(cfg.dataset.cache_dir)}")
    return overrides


def _fits_ipc(job: DictConfig, *, num_classes: int) -> bool:
    """Whether the job's method can distil at the job's IPC; if not (INFER at IPC 1: no base set fits), a note
    naming its smallest IPC and the command that runs it, and the demo goes on without that row."""
    from dd_bench.app.job import job_config
    from dd_bench.methods import create_method

    options = dict(job_config(job)["method"])
    name = options.pop("name")
    smallest = create_method(name, **options).smallest_ipc(num_classes)
    if job.ipc >= smallest:
        return True
    print(f"note: {name} skipped at ipc {job.ipc}: its smallest ipc on {job.dataset.name} is {smallest} "
          f"(dd-bench run method={name} ipc={smallest} eval={job.eval.name} models=[{','.join(job.models)}] "
          f"seeds={job.seeds} scores it; demo.ipcs=[{smallest}] adds it to the demo)")
    return False


def recorded_full_data(real, *, protocol, models: list[str], seeds: list[int],
                       directory: Path) -> tuple[list[RunRecord], list[str]]:
    """The shipped full-data reference records that match this data, protocol, model and seeds exactly (by
    reference hash), and the models that have none."""
    wanted = {reference_hash(reference="full_data", data_fingerprint=real.fingerprint(), ipc=None,
                             protocol=protocol.to_dict(), model=m, seeds=seeds): m for m in models}
    found: dict[str, RunRecord] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = RunRecord.from_dict(json.loads(path.read_text()))
        if record.record_hash in wanted:
            found[wanted[record.record_hash]] = record
    return [found[m] for m in models if m in found], [m for m in models if m not in found]


def run_demo(cfg: DictConfig, *, real, run_job: Callable[..., dict[str, Any]]) -> pd.DataFrame:
    """Run the benchmark described by ``cfg.demo`` on ``real`` (the demo's data set); ``run_job(job_cfg, real=,
    show=)`` runs one composed ``run`` job (:func:`dd_bench.app.tasks.task_run`). Returns the leaderboard of this
    run's records (the files written under ``cfg.results`` cover every record there)."""
    from dd_bench.app.presets import methods_with_preset
    from dd_bench.eval import get_protocol
    from dd_bench.methods import METHODS
    from dd_bench.pipeline.references import reference_records
    from dd_bench.resources import PUBLISHED_CSV, RECORDED_REFERENCES_DIR

    demo, results_dir = cfg.demo, Path(cfg.results)
    names = list(demo.methods) if demo.methods is not None else methods_with_preset(demo.dataset, METHODS.list())
    for name in names:
        METHODS.get(name)  # unknown names fail here, listing the options
    jobs = [compose_config("run", _job_overrides(cfg, name, ipc)) for name in names for ipc in demo.ipcs]
    for job in jobs:
        if job.preset is None:
            raise UserError(f"method '{job.method.name}' has no {demo.dataset} preset "
                            f"(conf/preset/{job.method.name}/{demo.dataset}.yaml)")
    jobs = [job for job in jobs if _fits_ipc(job, num_classes=real.num_classes)]
    protocol = get_protocol(demo.protocol)
    seeds = list(range(demo.seeds))
    records: list[RunRecord] = []
    if demo.references:
        records += reference_records(real=real, protocol=protocol, models=list(demo.models), seeds=seeds,
                                     ipcs=list(demo.ipcs), results_dir=results_dir, kinds=tuple(demo.references),
                                     progress=cfg.progress, cache_dir=cfg.dataset.cache_dir)
    full_seeds = list(range(demo.full_data_seeds))
    if demo.full_data == "compute":
        records += reference_records(real=real, protocol=protocol, models=list(demo.models), seeds=full_seeds,
                                     ipcs=[], results_dir=results_dir, kinds=("full_data",),
                                     progress=cfg.progress, cache_dir=cfg.dataset.cache_dir)
    elif demo.full_data == "recorded":
        shipped, missing = recorded_full_data(real, protocol=protocol, models=list(demo.models), seeds=full_seeds,
                                              directory=RECORDED_REFERENCES_DIR)
        for record in shipped:
            write_record(record, results_dir)
        records += shipped
        if missing:
            print(f"note: no recorded full-data row for {', '.join(missing)} under protocol {protocol.name} with "
                  f"{len(full_seeds)} seed(s); demo.full_data=compute trains it")
    bar = tqdm(jobs, desc="benchmark", disable=not cfg.progress, unit="set")
    for job in bar:
        bar.set_postfix_str(f"{job.method.name} ipc{job.ipc}")
        result = run_job(job, real=real, show=False)
        records += [RunRecord.from_dict(r) for r in result["records"]]
    published = PUBLISHED_CSV if PUBLISHED_CSV.is_file() else None
    write_leaderboard(build_leaderboard(load_records(results_dir), published_csv=published), results_dir)
    board = build_leaderboard(records, published_csv=published)
    board.attrs["records"] = [r.to_dict() for r in records]
    return board


