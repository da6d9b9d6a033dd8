"""Distilled sets in and out: export to formats other code reads (``dd-bench export``), import sets other repos
published (``dd-bench import``), each a self-describing directory written atomically, and the pixel conversions
both need. Each format is one entry of a registry: :data:`EXPORTERS` (``get_exporter``) and :data:`IMPORTERS`
(``get_importer``); ``EXPORT_FORMATS`` / ``IMPORT_FORMATS`` are their names as tuples."""

from dd_bench.exchange.export import EXPORT_FORMATS, EXPORTERS, export_synset, get_exporter
from dd_bench.exchange.imports import import_set
from dd_bench.exchange.readers import IMPORT_FORMATS, IMPORTERS, get_importer

__all__ = ["EXPORTERS", "EXPORT_FORMATS", "IMPORTERS", "IMPORT_FORMATS", "export_synset", "get_exporter",
           "get_importer", "import_set"]
