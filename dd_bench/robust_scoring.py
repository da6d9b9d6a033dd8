"""Moved to :mod:`dd_bench.pipeline.robust`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.pipeline.robust import (
    ROBUST_SCORES,
    SCORE_KINDS,
    ScoreInputs,
    check_scores,
    get_robust_score,
    no_augmentation,
    robust_scores,
)

__all__ = ["ROBUST_SCORES", "SCORE_KINDS", "ScoreInputs", "check_scores", "get_robust_score", "no_augmentation",
           "robust_scores"]
