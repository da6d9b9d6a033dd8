"""Distil, evaluate, record: the library functions the tasks call, with explicit keyword arguments.

``plan.py`` (a set's identity before any work), ``distill.py``, ``evaluate.py`` (records of a saved set),
``references.py`` (the full-data and random-subset rows), ``score.py`` (a set scored as ``dd-bench evaluate`` does:
label sources, robust scores, references; ``dd_bench.score`` too), ``robust.py`` (LRS / ARS), ``cvdd_priors.py``
(CV-DD's measured priors) and ``device.py``. Nothing here reads a config object (:mod:`dd_bench.app` adapts the config
to these calls). Every output is keyed by its config (:mod:`dd_bench.results.keys`): a set whose directory already
holds this set hash, or a record whose file already exists, is reused unless ``rerun`` is set, so a killed sweep
resumes where it stopped.
"""

from dd_bench.pipeline.device import resolve_device
from dd_bench.pipeline.distill import distill_to_disk, existing_set
from dd_bench.pipeline.evaluate import evaluate_to_records, evaluation_hash, records_from_results
from dd_bench.pipeline.plan import DistillPlan, plan_distill
from dd_bench.pipeline.references import reference_records, reference_storage
from dd_bench.pipeline.score import score_set, set_references

__all__ = ["DistillPlan", "distill_to_disk", "evaluate_to_records", "evaluation_hash", "existing_set", "plan_distill",
           "records_from_results", "reference_records", "reference_storage", "resolve_device", "score_set",
           "set_references"]
