"""A real single-node SLURM on localhost: a two-job sweep through the submitit launcher ends with both records.

Needs Debian's slurm-wlm and munge and root (``.ci/run`` installs them). Where SLURM cannot start here the test
skips and says why; under ``CI=true`` that skip is a failure, so CI cannot pass without running it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dd_bench.results import load_records

BINARIES = ("slurmctld", "slurmd", "sbatch", "sinfo", "munged")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM integration test cannot run under CI: {reason}")
    pytest.skip(f"SLURM integration test skipped: {reason} (apt-get install slurm-wlm munge, as root)")


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _start_munge(started: list[int]) -> None:
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0:
        return
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(secrets.token_bytes(1024))
    shutil.chown(key, "munge", "munge")
    key.chmod(0o400)
    for d in ("/run/munge", "/var/lib/munge", "/var/log/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", "munged", "--force"], check=True, capture_output=True)
    pid = subprocess.run(["pgrep", "-x", "munged"], capture_output=True, text=True).stdout.split()
    started += [int(p) for p in pid]


def _slurm_conf(state: Path) -> str:
    host = socket.gethostname().split(".")[0]
    return "\n".join([
        "ClusterName=ddbench", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
        f"StateSaveLocation={state}/ctld", f"SlurmdSpoolDir={state}/spool",
        f"SlurmctldPidFile={state}/slurmctld.pid", f"SlurmdPidFile={state}/slurmd.pid",
        f"SlurmctldLogFile={state}/slurmctld.log", f"SlurmdLogFile={state}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "ReturnToService=2", "MpiDefault=none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        f"NodeName={host} CPUs={os.cpu_count()} RealMemory={int(_memory_mb() * 0.8)} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _pids(name: str) -> set[int]:
    found = subprocess.run(["pgrep", "-f", name], capture_output=True, text=True).stdout.split()
    return {int(p) for p in found}


def _stop(state: Path, stepds_before: set[int], munged: list[int]) -> None:
    """Let running jobs end (a step whose slurmd vanished hangs forever), cancel the rest, stop what we started."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()
        if not jobs:
            break
        time.sleep(0.5)
    else:
        subprocess.run(["scancel", *jobs], capture_output=True)
        time.sleep(2)
    for pid_file in ("slurmd.pid", "slurmctld.pid"):
        path = state / pid_file
        if path.is_file():
            try:
                os.kill(int(path.read_text().split()[0]), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
    leftovers = (_pids("slurmstepd") - stepds_before) | _pids(str(state))
    for pid in [*leftovers, *munged]:
        try:
            os.kill(pid, signal.SIGKILL if pid in leftovers else signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.fixture
def local_slurm(tmp_path, monkeypatch):
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        _unavailable(f"{', '.join(missing)} not found")
    if os.geteuid() != 0:
        _unavailable("slurmctld and slurmd are started as root here")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'dd-bench[slurm]'")
    state = tmp_path / "slurm"
    for d in ("ctld", "spool"):
        (state / d).mkdir(parents=True)
    conf = state / "slurm.conf"
    conf.write_text(_slurm_conf(state))
    monkeypatch.setenv("SLURM_CONF", str(conf))
    munged: list[int] = []
    stepds_before = _pids("slurmstepd")
    started = time.monotonic()
    try:
        _start_munge(munged)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(conf)], check=True, capture_output=True, timeout=30)
        while time.monotonic() - started < 60:
            states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()
            if "idle" in states:
                break
            time.sleep(0.5)
        else:
            logs = "\n".join(p.read_text()[-2000:] for p in state.glob("*.log"))
            _unavailable(f"the node never became idle:\n{logs}")
        print(f"local SLURM up in {time.monotonic() - started:.1f} s")
        yield state
    except subprocess.CalledProcessError as err:
        _unavailable(f"{err.cmd[0]} failed: {err.stderr.decode(errors='replace')[-500:]}")
    finally:
        _stop(state, stepds_before, munged)


def test_two_job_sweep_through_submitit_slurm(local_slurm, tmp_path):
    results = tmp_path / "results"
    started = time.monotonic()
    # Resources sized for this machine: one core and 1 GB per job, so both jobs run at once on two cores.
    done = subprocess.run(
        [sys.executable, "-m", "dd_bench.app.cli", "run", "-m", "hydra/launcher=submitit_slurm",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
         "method=random,herding", "eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1", "references=[]",
         "device=cpu", "progress=false", f"results={results}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    print(f"two-job SLURM sweep took {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = load_records(results)
    assert sorted(r.method for r in records) == ["herding", "random"]
    logs = list((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2  # both ran as SLURM jobs, each with its own log
