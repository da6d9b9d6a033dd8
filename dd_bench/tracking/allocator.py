"""The C heap's settings for a run: keep large freed blocks for reuse instead of handing them back to the kernel.

Why: PyTorch's CPU tensors come straight from ``malloc``, and glibc serves every block above ``M_MMAP_THRESHOLD``
(128 KiB, raised on its own up to 32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` when it is freed. A
training step on a CPU allocates and frees many such blocks (one ConvNet activation for a batch of 256 CIFAR images,
256 x 128 x 32 x 32 float32, is 32 MiB), so every step maps new pages that the kernel must zero on first touch.
Measured on the 2-core dev CPU, ``dd-bench distill method=mtt`` training 2 experts x 4 epochs on 2,000 CIFAR-10
images: 63.0 s wall, 38.8 s of it in the kernel, with glibc's defaults; 41.7 s (1.4 s) with both thresholds at 1 GiB;
peak RSS 1,664 -> 1,975 MiB (medians of 3, docs/performance.md). ``scripts/bench_allocator.py`` measures it
side by side.

How: ``mallopt`` through ctypes at the start of each job (:func:`tune_allocator`, called by the CLI). The same
setting from the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) would have to be in place
before the interpreter starts, which a ``dd-bench`` command cannot arrange for itself; jemalloc or tcmalloc would need
``LD_PRELOAD`` and a system package. Left alone: a libc other than glibc, an allocator in ``LD_PRELOAD``, a user who
tunes malloc through any ``MALLOC_*`` variable or ``GLIBC_TUNABLES``, and ``DD_BENCH_MALLOC=system`` (the opt-out).
What was done is recorded in every run's provenance (:func:`allocator_state`). It changes where memory comes from,
never a computed value.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

from dd_bench.errors import UserError

__all__ = ["OPT_OUT_ENV", "THRESHOLD_BYTES", "allocator_state", "tune_allocator"]

OPT_OUT_ENV = "DD_BENCH_MALLOC"
THRESHOLD_BYTES = 1 << 30  # 1 GiB: above any per-step temporary of the presets on a CPU, far below the machine
# glibc before 2.35 refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit); there the largest it takes.
FALLBACK_MMAP_BYTES = 32 << 20
# glibc's mallopt parameter numbers (malloc.h): stable ABI since glibc 2.0.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_state = "not tuned: tune_allocator() was not called in this process"
_raised: str | None = None  # what mallopt set in this process: it cannot be undone, so it outlives later calls


def allocator_state() -> str:
    """One line saying what :func:`tune_allocator` did in this process (or that it was not called)."""
    return _state


def _reason_to_leave(environ: dict[str, str] | os._Environ[str]) -> str | None:
    if environ.get(OPT_OUT_ENV, "") == "system":
        return f"{OPT_OUT_ENV}=system"
    user = sorted(name for name in environ if name.startswith("MALLOC_"))
    if "glibc.malloc." in environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return f"the user's {', '.join(user)}"
    preloaded = [name for name in _OTHER_ALLOCATORS if name in environ.get("LD_PRELOAD", "")]
    if preloaded:
        return f"{preloaded[0]} preloaded: glibc's heap is not the one in use"
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return f"not glibc ({sys.platform}, {platform.libc_ver()[0] or 'unknown libc'})"
    return None


def tune_allocator(*, environ: dict[str, str] | None = None) -> str:
    """Raise glibc's mmap and trim thresholds to :data:`THRESHOLD_BYTES` unless something says to leave them.

    Returns (and keeps for :func:`allocator_state`) one line saying what was done; once raised in a process the
    thresholds stay raised, and so does the line. Idempotent. Raises :class:`~dd_bench.errors.UserError` for a
    ``DD_BENCH_MALLOC`` other than ``tuned`` (the default) or ``system``.
    """
    global _state, _raised
    env = os.environ if environ is None else environ
    choice = env.get(OPT_OUT_ENV, "")
    if choice not in ("", "tuned", "system"):
        raise UserError(f"Unknown {OPT_OUT_ENV} '{choice}'; use tuned (the default) or system")
    if _raised is not None:
        _state = _raised
        return _state
    reason = _reason_to_leave(env)
    if reason is not None:
        _state = f"left as it is ({reason})"
        return _state
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError) as e:  # a stripped or unusual libc: run with its defaults
        _state = f"left as it is (mallopt unavailable: {e})"
        return _state
    mmap = next((b for b in (THRESHOLD_BYTES, FALLBACK_MMAP_BYTES) if mallopt(_M_MMAP_THRESHOLD, b) == 1), None)
    trim = THRESHOLD_BYTES if mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1 else None
    if mmap is None and trim is None:
        _state = "left as it is (mallopt refused the thresholds)"
        return _state
    said = {"mmap": mmap, "trim": trim}
    _raised = _state = ("glibc " + ", ".join(f"{k} threshold {v >> 20} MiB" if v else f"{k} threshold refused"
                                              for k, v in said.items())
                        + f" (dd-bench default; {OPT_OUT_ENV}=system keeps glibc's)")
    return _state
