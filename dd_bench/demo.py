"""The main job: a quick, complete benchmark on the embedded digits set.

Every registered method that has a digits preset is distilled at each IPC, each set is scored on each model
with several seeds under the ``quick`` protocol, beside full-data and random-subset reference rows (cached
after the first run), and the leaderboard is printed and written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from dd_bench.data import RealData
from dd_bench.eval import EvalProtocol
from dd_bench.results import build_leaderboard, load_records, write_leaderboard
from dd_bench.workflow import distill_to_disk, evaluate_to_records, reference_records

PUBLISHED_CSV = Path(__file__).resolve().parent.parent / "baselines" / "published.csv"


def run_demo(
    *,
    real: RealData,
    jobs: list[tuple[str, int, dict[str, Any], str | None]],
    ipcs: list[int],
    models: list[str],
    seeds: list[int],
    protocol: EvalProtocol,
    results_dir: Path,
    seed: int = 0,
    references: tuple[str, ...] = ("full_data", "random_subset"),
    full_data_seeds: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the benchmark; ``jobs`` holds (method, ipc, resolved options, preset name). Returns the leaderboard
    of this run's records (the files written under ``results_dir`` cover every record there)."""
    results_dir = Path(results_dir)
    records = []
    if references:
        records += reference_records(real=real, protocol=protocol, models=models, seeds=seeds, ipcs=ipcs,
                                     results_dir=results_dir, kinds=tuple(references),
                                     full_data_seeds=list(range(full_data_seeds)),
                                     progress=progress)
    bar = tqdm(jobs, desc="benchmark", disable=not progress, unit="set")
    for name, ipc, kwargs, preset in bar:
        bar.set_postfix_str(f"{name} ipc{ipc}")
        out = results_dir / "synsets" / f"{name}-{real.name}-ipc{ipc}-s{seed}"
        _, seconds = distill_to_disk(method=name, method_kwargs=kwargs, real=real, ipc=ipc, seed=seed, out=out,
                                     preset=preset, progress=progress)
        config = {"task": "demo", "method": {"name": name, **kwargs}, "dataset": real.name, "ipc": ipc,
                  "seed": seed, "models": models, "seeds": seeds, "protocol": protocol.name}
        records += evaluate_to_records(synset_dir=out, real=real, protocol=protocol, models=models, seeds=seeds,
                                       results_dir=results_dir, config=config, progress=progress)
    published = PUBLISHED_CSV if PUBLISHED_CSV.is_file() else None
    write_leaderboard(build_leaderboard(load_records(results_dir), published_csv=published), results_dir)
    board = build_leaderboard(records, published_csv=published)
    board.attrs["records"] = [r.to_dict() for r in records]
    return board
