"""Moved to :mod:`dd_bench.pipeline` (``device``, ``distill``, ``evaluate``, ``references``); this old import path keeps
working (CHANGELOG, "Moved"). ``relabel_to_disk``, ``ensure_stored_labels`` and ``same_label_kinds`` are the label
sources' (:mod:`dd_bench.labels`)."""

from dd_bench.labels import same_label_kinds
from dd_bench.labels.relabel import ensure_stored_labels, relabel_to_disk
from dd_bench.pipeline.device import resolve_device
from dd_bench.pipeline.distill import distill_to_disk, existing_set
from dd_bench.pipeline.evaluate import evaluate_to_records, evaluation_hash, records_from_results
from dd_bench.pipeline.references import reference_records, reference_storage

__all__ = ["distill_to_disk", "ensure_stored_labels", "evaluate_to_records", "evaluation_hash", "existing_set",
           "records_from_results", "reference_records", "reference_storage", "relabel_to_disk", "resolve_device",
           "same_label_kinds"]
