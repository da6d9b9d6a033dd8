"""Moved to :mod:`dd_bench.app.presets`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.presets import methods_with_preset, preset_file

__all__ = ["methods_with_preset", "preset_file"]
