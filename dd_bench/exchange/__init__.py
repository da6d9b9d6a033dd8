"""Distilled sets in and out: export to formats other code reads (``dd-bench export``), import sets other repos
published (``dd-bench import``), each a self-describing directory written atomically, and the pixel conversions
both need."""

from dd_bench.exchange.export import EXPORT_FORMATS, export_synset
from dd_bench.exchange.imports import IMPORT_FORMATS, import_set

__all__ = ["EXPORT_FORMATS", "IMPORT_FORMATS", "export_synset", "import_set"]
