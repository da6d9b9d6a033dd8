"""Moved to :mod:`dd_bench.pipeline.robust`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.pipeline.robust import SCORE_KINDS, check_scores, no_augmentation, robust_scores

__all__ = ["SCORE_KINDS", "check_scores", "no_augmentation", "robust_scores"]
