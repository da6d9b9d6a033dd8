"""Moved to :mod:`dd_bench.app.help_text`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.help_text import (
    DOCS,
    GROUPS,
    KEY_COLUMN,
    RECORDED_ONLY,
    TASK_KEYS,
    TASK_TRY,
    WIDTH,
    experiments_by_method,
    global_help,
    help_text,
    load_manifest,
    task_help,
)

__all__ = ["DOCS", "GROUPS", "KEY_COLUMN", "RECORDED_ONLY", "TASK_KEYS", "TASK_TRY", "WIDTH", "experiments_by_method",
           "global_help", "help_text", "load_manifest", "task_help"]
