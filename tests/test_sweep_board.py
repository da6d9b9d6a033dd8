"""A sweep ends with one board: the records its jobs produced (references included), not everything in results=,
with the basic launcher and with joblib; a single run and a sweep that makes no records print none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_slurm import local_slurm  # noqa: F401 - the fixture: a one-node SLURM cluster on this machine (or a skip)

from dd_bench.app.cli import main
from dd_bench.app.sweep_board import JOB_FILE
from dd_bench.results import RunRecord, write_record

TINY = ["eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1", "progress=false"]
HEADER = "== sweep board:"


def _older_record(results: Path) -> None:
    """A record another command left in the same results folder: the sweep's board must not show it."""
    write_record(RunRecord(kind="evaluation", method="herding", dataset="digits", ipc=1, protocol="quick",
                           protocol_version=1, model="mlp", seeds=[0], accuracies=[50.0], ranked=False,
                           record_hash="b" * 64), results)


def _board(out: str) -> str:
    assert out.count(HEADER) == 1, out[-3000:]
    return out[out.index(HEADER):]


def test_a_multirun_ends_with_one_board_of_its_jobs(tmp_path, capsys):
    _older_record(tmp_path)
    # The default sweep dir (${results}/hydra/multirun-${now:...}): the callback must find the jobs' folders there.
    assert main(["run", "-m", "method=random,kcenter", *TINY, f"results={tmp_path}"]) == 0
    board = _board(capsys.readouterr().out)
    assert "the 3 record(s) of this sweep's 2 job(s)" in board and f"leaderboard results={tmp_path}" in board
    rows = [line.split() for line in board.splitlines() if line.startswith("mlp ")]
    assert {row[1] for row in rows} == {"random", "kcenter"} and any("subset (ref)" in " ".join(r) for r in rows)
    assert not any("herding" in line for line in board.splitlines())  # results= holds it; the sweep did not make it
    (sweep_dir,) = (tmp_path / "hydra").glob("multirun-*")
    summaries = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{JOB_FILE}"))]
    assert len(summaries) == 2 and all(s["results"] == str(tmp_path.resolve()) for s in summaries)


def test_a_rerun_sweep_shows_the_records_it_kept(tmp_path, capsys):
    args = ["run", "-m", "method=random", "seed=0,1", *TINY, "references=[]", f"results={tmp_path}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert main(args) == 0
    first = _board(capsys.readouterr().out)
    assert main(args) == 0  # every job finds its set and record: kept, not evaluated again
    again = _board(capsys.readouterr().out)
    assert "the 2 record(s) of this sweep's 2 job(s)" in first and "the 2 record(s)" in again


def test_joblib_sweep_prints_the_board_in_the_parent(tmp_path, capsys):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    _older_record(tmp_path)
    assert main(["run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "method=random,kcenter", *TINY,
                 "references=[]", f"results={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    board = _board(capsys.readouterr().out)
    assert "the 2 record(s) of this sweep's 2 job(s)" in board
    rows = {line.split()[1] for line in board.splitlines() if line.startswith("mlp ")}
    assert rows == {"random", "kcenter"}


def test_no_board_after_a_single_run_or_a_sweep_without_records(tmp_path, capsys):
    assert main(["run", "method=random", *TINY, "references=[]", f"results={tmp_path}",
                 f"hydra.run.dir={tmp_path / 'run'}"]) == 0
    assert HEADER not in capsys.readouterr().out and not list(tmp_path.rglob(JOB_FILE))
    assert main(["distill", "-m", "method=random", "seed=0,1", f"results={tmp_path}",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"]) == 0
    assert HEADER not in capsys.readouterr().out


def test_slurm_sweep_prints_the_board_in_the_submitting_process(local_slurm, tmp_path):  # noqa: F811 - the fixture
    """Through submitit the jobs run as SLURM jobs (their own processes); the board comes from the process that
    submitted them, once both returned."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "dd_bench.app.cli", "run", "-m", "hydra/launcher=submitit_slurm",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
         "method=random,kcenter", *TINY, "references=[]", "device=cpu", f"results={tmp_path / 'results'}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    board = _board(done.stdout)
    assert "the 2 record(s) of this sweep's 2 job(s)" in board
    assert {line.split()[1] for line in board.splitlines() if line.startswith("mlp ")} == {"random", "kcenter"}
