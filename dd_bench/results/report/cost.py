"""A row's one-time cost: the training seconds of the cached teachers and experts it used, shared with other rows
(so never added to its own distillation seconds), read from their cache entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def one_time_seconds(record: Any, cache_dir: Path | None) -> float | None:
    """The one-time training seconds of what a record's row used and shares with others, from the cache entries:
    the teachers its labels (or its method) used, and the expert trajectories a trajectory-matching set used."""
    from dd_bench.io import KeyedStore

    total, found = 0.0, False
    for spec in record.extra.get("teachers") or []:
        key = spec.get("key") if isinstance(spec, dict) else None
        meta = KeyedStore("teachers", cache_dir).path(key) / "meta.json" if key else None
        if meta is not None and meta.is_file():
            seconds = json.loads(meta.read_text()).get("train_seconds")
            if seconds is not None:
                total, found = total + float(seconds), True
    experts = (record.extra.get("distill_status") or {}).get("experts") or {}
    meta = KeyedStore("experts", cache_dir).path(experts["key"]) / "meta.json" if experts.get("key") else None
    if meta is not None and meta.is_file():
        entries = json.loads(meta.read_text()).get("experts") or {}
        seconds = [float(e["wall_seconds"]) for i, e in entries.items()
                   if int(i) < int(experts.get("count", 0)) and e.get("wall_seconds") is not None]
        if seconds:
            total, found = total + sum(seconds), True
    return total if found else None
