"""Benchmark reports: every number a script under scripts/ prints is also written as JSON with its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dd_bench.io import atomic_write_json


def log_stage(out: Path, stage: str, **fields: Any) -> None:
    """Print and append one JSON line per finished stage of a GPU check (``out/stages.jsonl``), so a killed run
    still reports what it finished."""
    import json
    import time

    line = json.dumps({"stage": stage, "time": time.strftime("%H:%M:%S"), **fields}, default=str)
    print(line, flush=True)
    with open(Path(out) / "stages.jsonl", "a") as f:
        f.write(line + "\n")


def write_report(report: dict[str, Any], path: Path | None) -> None:
    """Write ``report`` as JSON to ``path`` (when given, atomically) and say where."""
    if path is None:
        return
    atomic_write_json(path, report, indent=2)
    print(f"wrote {path}")
