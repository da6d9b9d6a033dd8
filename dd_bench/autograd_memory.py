"""Moved to :mod:`dd_bench.tracking.autograd_memory`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.tracking.autograd_memory import SavedTensorMeter

__all__ = ["SavedTensorMeter"]
