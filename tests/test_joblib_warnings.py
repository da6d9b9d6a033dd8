"""A joblib sweep prints no Hydra schema-matching deprecation warning, from its workers either (they are fresh
processes that compose each job's config again; the filter in the parent process does not reach them)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dd_bench.results import load_records


def test_joblib_workers_print_no_schema_warning(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    # As the dd-bench console script runs it, in a process of its own so its stderr is all this sweep's.
    entry = "import sys; from dd_bench.app.cli import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run(
        [sys.executable, "-c", entry, "run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         "method=random", "seed=0,1", "eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1", "references=[]",
         f"results={tmp_path}", "progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    assert len({r.set_hash for r in load_records(tmp_path)}) == 2  # both jobs ran: seeds 0 and 1
    assert "ConfigStore schema" not in done.stderr and "deprecated" not in done.stderr, done.stderr
