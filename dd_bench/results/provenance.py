"""Moved to :mod:`dd_bench.tracking.provenance`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.tracking.provenance import (
    CPU_PROCESS_PEAK_RSS,
    CUDA_ALLOCATOR_PEAK,
    PEAK_MEMORY_KINDS,
    UNAVAILABLE,
    PeakMemory,
    collect_provenance,
    cpu_model,
    git_state,
    package_version,
    peak_memory_tracker,
)

__all__ = ["CPU_PROCESS_PEAK_RSS", "CUDA_ALLOCATOR_PEAK", "PEAK_MEMORY_KINDS", "UNAVAILABLE", "collect_provenance",
           "cpu_model", "git_state", "package_version", "peak_memory_tracker", "PeakMemory"]
