"""The wheel works outside the checkout: it carries conf/ and the published table, and a tiny run succeeds.

Built with the installed setuptools (no build isolation: no network needed), installed without dependencies into
a fresh venv that sees the system site-packages (so torch is not installed twice), and run from a folder outside
the checkout, where neither conf/ nor baselines/ can be found by accident.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    # Build from a copy: an in-tree build/ would outlive deleted modules and leak them into later wheels.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", "runs", "outputs", "multirun",
                                                                "*.egg-info", "__pycache__", ".pytest_cache"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("dd_bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("dd_bench/conf/config.yaml", "dd_bench/conf/run.yaml", "dd_bench/conf/hydra/help/dd_bench.yaml",
                    "dd_bench/conf/preset/dm/digits.yaml", "dd_bench/conf/experiment/mtt_cifar10_ipc10.yaml",
                    "dd_bench/conf/hydra/launcher/submitit_slurm.yaml", "dd_bench/baselines/published.csv",
                    "dd_bench/data/digits_split.json"):
        assert shipped in names, shipped
    assert any(n.startswith("dd_bench/baselines/references/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python, cli = venv / "bin" / "python", venv / "bin" / "dd-bench"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(python), "-c", "import dd_bench.resources as r; print(r.CONF_DIR)"], cwd=elsewhere,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout

    shown = subprocess.run([str(cli), "--help"], cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "methods:" in shown.stdout, shown.stderr
    ran = subprocess.run([str(cli), "run", "method=random", "eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1",
                          f"results={tmp_path / 'runs'}", "progress=false"], cwd=elsewhere, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert list((tmp_path / "runs" / "records").glob("*.json"))
