"""Moved to :mod:`dd_bench.synset.labels_section`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.synset.labels_section import DERIVED_KEYS, SHARED_KEYS, LabelsSection

__all__ = ["DERIVED_KEYS", "SHARED_KEYS", "LabelsSection"]
