"""Distillation methods and baselines, one per file in a folder per family (``tm/``, ``matching/``, ``decoupled/``,
``coreset/``), all in the ``METHODS`` registry; ``base.py`` (the ``Synthesizer`` interface) and ``loop.py`` (the one
distillation loop) serve every family."""

import importlib
import sys

from dd_bench.methods.base import METHODS, Synthesizer
from dd_bench.methods.coreset import herding, kcenter, random_real  # noqa: F401  (registration)
from dd_bench.methods.decoupled import cvdd, hello, infer, nrrdd, rded, sre2l  # noqa: F401  (registration)
from dd_bench.methods.matching import dm, gradient_matching  # noqa: F401  (registration)
from dd_bench.methods.tm import variants  # noqa: F401  (registration)

__all__ = ["METHODS", "Synthesizer", "create_method", "list_methods"]

# The paths from before the split by family keep working (CHANGELOG, "Moved"): ``dd_bench.methods.dm`` IS the module
# ``dd_bench.methods.matching.dm`` (one module object under two names, so patching either patches both).
_MOVED = {"trajectory_matching": "tm.trajectory_matching", "tm_methods": "tm.variants", "tm_gradient": "tm.gradient",
          "tm_grad_mode": "tm.grad_mode", "tm_labels": "tm.labels", "tm_schedule": "tm.schedule",
          "tm_selection": "tm.selection", "dm": "matching.dm", "gradient_matching": "matching.gradient_matching",
          **{name: f"decoupled.{name}" for name in ("sre2l", "rded", "cvdd", "nrrdd", "infer", "hello", "recovery",
                                                    "bn_statistics", "cam", "committee")},
          **{name: f"coreset.{name}" for name in ("random_real", "herding", "kcenter", "feature_space")}}
for _old, _new in _MOVED.items():
    sys.modules[f"{__name__}.{_old}"] = globals()[_old] = importlib.import_module(f"{__name__}.{_new}")


def create_method(name: str, **kwargs: object) -> Synthesizer:
    """The method registered as ``name`` (``conf/method/<name>.yaml``'s stem), configured by ``kwargs``.

    ``kwargs`` are fields of the method's ``Config`` dataclass; unset fields keep the dataclass defaults (not the
    YAML's, which only the command line composes). An unknown option, an enum value outside its choices, or an
    unregistered model name raises :class:`~dd_bench.errors.UserError` naming the valid ones, before any work.

    >>> method = create_method("dm", iterations=100, batch_real=64)                   # doctest: +SKIP
    >>> synset = method.distill(real, ipc=1, seed=0)                                   # doctest: +SKIP
    """
    return METHODS.create(name, **kwargs)


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching the fnmatch ``pattern``, sorted."""
    return METHODS.list(pattern)
