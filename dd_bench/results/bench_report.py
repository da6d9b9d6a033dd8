"""Benchmark reports: every number a script under scripts/ prints is also written as JSON with its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dd_bench.io import atomic_write_json


def write_report(report: dict[str, Any], path: Path | None) -> None:
    """Write ``report`` as JSON to ``path`` (when given, atomically) and say where."""
    if path is None:
        return
    atomic_write_json(path, report, indent=2)
    print(f"wrote {path}")
