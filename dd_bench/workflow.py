"""Moved to :mod:`dd_bench.pipeline.references`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.pipeline.references import (
    distill_to_disk,
    ensure_stored_labels,
    evaluate_to_records,
    evaluation_hash,
    existing_set,
    records_from_results,
    reference_records,
    reference_storage,
    relabel_to_disk,
    resolve_device,
    same_label_kinds,
)

__all__ = ["distill_to_disk", "ensure_stored_labels", "evaluate_to_records", "evaluation_hash", "existing_set",
           "records_from_results", "reference_records", "reference_storage", "relabel_to_disk", "resolve_device",
           "same_label_kinds"]
