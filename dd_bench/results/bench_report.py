"""Benchmark reports: every number a script under scripts/ prints is also written as JSON with its evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], path: Path | None) -> None:
    """Write ``report`` as JSON to ``path`` (when given) and say where."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {path}")
