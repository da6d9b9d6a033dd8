"""Moved to :mod:`dd_bench.app.exchange_tasks`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.exchange_tasks import task_export, task_import

__all__ = ["task_export", "task_import"]
