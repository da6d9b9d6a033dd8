"""Where a number came from: software versions, code revision and hardware, plus a peak-memory probe.

Every run record embeds :func:`collect_provenance` so a result can be traced to the exact code and machine that
produced it. The hostname is deliberately not recorded: records are committed to a public repository.

>>> prov = collect_provenance("cpu")
>>> sorted(k for k in ("package_version", "git_sha", "torch_version", "device_name") if k in prov)
['device_name', 'git_sha', 'package_version', 'torch_version']
>>> with PeakMemory("cpu") as peak:
...     _ = sum(range(1000))
>>> peak.kind, peak.bytes > 0
('cpu_process_peak_rss', True)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from dd_bench.tracking.allocator import allocator_state

# Only two kinds are ever compared with each other's kind; the names say what was measured, so a CPU RSS figure can
# never be mistaken for a GPU allocator peak in a table.
CUDA_ALLOCATOR_PEAK = "cuda_allocator_peak"
CPU_PROCESS_PEAK_RSS = "cpu_process_peak_rss"
UNAVAILABLE = "unavailable"

PEAK_MEMORY_KINDS: dict[str, str] = {
    CUDA_ALLOCATOR_PEAK: "peak bytes held by the PyTorch CUDA caching allocator (torch.cuda.max_memory_allocated)",
    CPU_PROCESS_PEAK_RSS: (
        "process peak RSS (includes the Python interpreter and data; not comparable to GPU numbers); "
        "it is the peak over the whole process lifetime, not only the measured block"
    ),
    UNAVAILABLE: "no peak-memory measure for this device",
}

_GIT_TIMEOUT_S = 5.0


def package_version() -> str:
    """``dd_bench.__version__``, else the installed distribution's version, else ``"0+unknown"``."""
    try:
        version = getattr(importlib.import_module("dd_bench"), "__version__", None)
    except ImportError:
        version = None
    if isinstance(version, str) and version:
        return version
    for dist in ("dd-bench", "dd_bench"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "0+unknown"


def _run_git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(path: Path | str | None = None) -> dict[str, Any]:
    """``{"git_sha": str | None, "git_dirty": bool | None}`` for the checkout holding ``path``; never raises.

    ``path`` defaults to the dd_bench package directory. A package installed into an ignored folder of some other
    repository (a ``.venv`` inside a project, say) is not that repository's code, so an ignored path counts as
    "not a git checkout". Dirty means tracked files differ from HEAD; untracked files do not count.
    """
    unknown: dict[str, Any] = {"git_sha": None, "git_dirty": None}
    where = Path(path) if path is not None else Path(__file__).resolve().parents[1]
    if not where.exists():
        return unknown
    cwd = where if where.is_dir() else where.parent
    head = _run_git(["rev-parse", "--verify", "HEAD"], cwd)
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return unknown
    ignored = _run_git(["check-ignore", "-q", str(where)], cwd)
    if ignored is not None and ignored.returncode == 0:
        return unknown
    status = _run_git(["status", "--porcelain", "--untracked-files=no"], cwd)
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return {"git_sha": head.stdout.strip(), "git_dirty": dirty}


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``, else ``"unknown"``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _usable_cpus() -> int | None:
    # Containers and job schedulers often pin a process to fewer cores than the machine has.
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def collect_provenance(device: torch.device | str) -> dict[str, Any]:
    """Software, revision and hardware facts for a run on ``device``; JSON-serialisable, never raises on git.

    Keys: package_version, git_sha, git_dirty, torch_version, cuda_version, python_version, platform, device,
    device_name (GPU name on CUDA, else the CPU model), cpu_model, cpu_count, cpus_usable, allocator (what
    :func:`~dd_bench.tracking.allocator.tune_allocator` did to the C heap: it moves CPU timings, never a value).
    """
    dev = torch.device(device)
    cpu = cpu_model()
    device_name = cpu
    if dev.type == "cuda" and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(dev)
    return {
        "package_version": package_version(),
        **git_state(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(dev),
        "device_name": device_name,
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": _usable_cpus(),
        "allocator": allocator_state(),
    }


def _process_peak_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows has no ``resource`` module.
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS reports bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class PeakMemory:
    """Peak memory of a block of work on ``device``, as ``.bytes`` and a ``.kind`` naming what was measured.

    CUDA: ``start`` resets the allocator's peak statistics and ``stop`` reads ``max_memory_allocated``, so the value
    covers only the block (nested trackers on the same device share, and reset, the same counter). CPU: the process
    peak RSS (includes the Python interpreter and data; not comparable to GPU numbers); Linux cannot reset it, so it
    is the peak since the process started. Other devices: ``bytes`` is None and ``kind`` is ``"unavailable"``.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.bytes: int | None = None
        if self.device.type == "cuda":
            self.kind = CUDA_ALLOCATOR_PEAK
        elif self.device.type == "cpu":
            self.kind = CPU_PROCESS_PEAK_RSS
        else:
            self.kind = UNAVAILABLE

    def start(self) -> PeakMemory:
        self.bytes = None
        if self.kind == CUDA_ALLOCATOR_PEAK:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def stop(self) -> int | None:
        if self.kind == CUDA_ALLOCATOR_PEAK:
            torch.cuda.synchronize(self.device)
            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
        elif self.kind == CPU_PROCESS_PEAK_RSS:
            self.bytes = _process_peak_rss_bytes()
            if self.bytes is None:
                self.kind = UNAVAILABLE
        return self.bytes

    def as_dict(self) -> dict[str, Any]:
        """The ``peak_memory`` field of a run record: ``{"bytes": int | None, "kind": str}``."""
        return {"bytes": self.bytes, "kind": self.kind}

    def __enter__(self) -> PeakMemory:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def peak_memory_tracker(device: torch.device | str) -> PeakMemory:
    """A :class:`PeakMemory` for ``device``, for ``with peak_memory_tracker(dev) as peak: ...; peak.bytes``."""
    return PeakMemory(device)
