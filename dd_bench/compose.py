"""Moved to :mod:`dd_bench.app.compose`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.compose import compose_config, quote

__all__ = ["compose_config", "quote"]
