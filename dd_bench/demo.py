"""Moved to :mod:`dd_bench.app.demo`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.demo import recorded_full_data, run_demo

__all__ = ["recorded_full_data", "run_demo"]
