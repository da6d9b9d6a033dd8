"""Distillation methods and baselines, one per file, all in the ``METHODS`` registry."""

from dd_bench.methods import (  # noqa: F401  (registration)
    cvdd, dm, gradient_matching, hello, herding, infer, kcenter, nrrdd, random_real, rded, sre2l, tm_methods)
from dd_bench.methods.base import METHODS, DistillationDiverged, Synthesizer

__all__ = ["METHODS", "Synthesizer", "DistillationDiverged", "create_method", "list_methods"]


def create_method(name: str, **kwargs: object) -> Synthesizer:
    return METHODS.create(name, **kwargs)


def list_methods(pattern: str = "*") -> list[str]:
    return METHODS.list(pattern)
