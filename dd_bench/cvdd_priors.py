"""Moved to :mod:`dd_bench.pipeline.cvdd_priors`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.pipeline.cvdd_priors import (
    SCORE_VERSION,
    MeasuredPriors,
    TeacherSet,
    measure_sre2l_pp_priors,
    needs_measuring,
    single_teacher_sets,
)

__all__ = ["SCORE_VERSION", "measure_sre2l_pp_priors", "MeasuredPriors", "needs_measuring", "single_teacher_sets",
           "TeacherSet"]
