"""One leaderboard at the end of a sweep: the board of the records its jobs produced.

A Hydra callback (registered in ``conf/config.yaml`` under ``hydra.callbacks``) with two halves, because a
launcher may run the jobs in other processes (joblib) or on other machines (SLURM through submitit):

- ``on_job_end`` runs where the job ran. It writes the ids of the records the job produced or kept, and the results
  folder they are in, to ``sweep_records.json`` in the job's output folder (``<sweep dir>/<job number>/``).
- ``on_multirun_end`` runs in the process that started the sweep, after every job returned. It reads those files,
  loads the records from the results folders and prints their board: what ``dd-bench leaderboard results=DIR``
  prints, restricted to this sweep's jobs (their reference rows included).

A single run (no ``-m``) and a sweep of tasks that make no records (``distill``, ``leaderboard``) print nothing more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

JOB_FILE = "sweep_records.json"


def job_summary(*, result: Any, results: str) -> dict[str, Any]:
    """What a job returns to Hydra: the ids of its records and where they are (small: a launcher pickles it)."""
    records = result.get("records", []) if isinstance(result, dict) else []
    # Tasks return records as RunRecord.to_dict() (which carries record_id); the demo's board keeps the objects.
    ids = [r["record_id"] if isinstance(r, dict) else r.record_id for r in records]
    return {"results": str(Path(results).resolve()), "record_ids": list(dict.fromkeys(ids))}


def _is_multirun(config: Any) -> bool:
    from hydra.types import RunMode

    return config.hydra.mode == RunMode.MULTIRUN


def _job_summaries(sweep_dir: Path) -> list[dict[str, Any]]:
    """The summaries the sweep's jobs wrote, in job order (subdirs 0, 1, ..., 10)."""
    paths = sorted(sweep_dir.glob(f"*/{JOB_FILE}"), key=lambda p: (len(p.parent.name), p.parent.name))
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def sweep_records(*, summaries: list[dict[str, Any]]) -> list[Any]:
    """The records the jobs wrote down, each once, in job order, loaded from their results folders."""
    from dd_bench.results import load_records

    wanted: dict[str, list[str]] = {}
    for summary in summaries:
        ids = wanted.setdefault(summary["results"], [])
        ids += [i for i in summary["record_ids"] if i not in ids]
    found = []
    for results, ids in wanted.items():
        by_id = {r.record_id: r for r in load_records(results)}
        found += [by_id[i] for i in ids if i in by_id]
    return found


def board_text(*, sweep_dir: Path, published_csv: Path | None) -> str | None:
    """The sweep's board under a header line saying what it holds; None when its jobs made no records."""
    from dd_bench.results import build_leaderboard, format_leaderboard_text

    summaries = _job_summaries(sweep_dir)
    records = sweep_records(summaries=summaries)
    if not records:
        return None
    folders = sorted({s["results"] for s in summaries})
    everything = f"results={folders[0]}" if len(folders) == 1 else "results=DIR"
    header = (f"== sweep board: the {len(records)} record(s) of this sweep's {len(summaries)} job(s); every record "
              f"there: dd-bench leaderboard {everything} ==")
    return header + "\n" + format_leaderboard_text(build_leaderboard(records, published_csv=published_csv))


class SweepBoard(Callback):
    """Hydra callback: each job notes its records; the sweep prints their board at its end (see the module doc)."""

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus

        if not _is_multirun(config) or job_return.status != JobStatus.COMPLETED:
            return
        summary = job_return.return_value
        if not isinstance(summary, dict) or "record_ids" not in summary:
            return
        out = Path(config.hydra.runtime.output_dir) / JOB_FILE
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from dd_bench.resources import PUBLISHED_CSV

        text = board_text(sweep_dir=Path(str(config.hydra.sweep.dir)),
                          published_csv=PUBLISHED_CSV if PUBLISHED_CSV.is_file() else None)
        if text is not None:
            print("\n" + text, flush=True)
