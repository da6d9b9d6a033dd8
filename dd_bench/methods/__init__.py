"""Distillation methods and baselines, one per file in a folder per family (``tm/``, ``matching/``, ``decoupled/``,
``coreset/``), all in the ``METHODS`` registry; ``base.py`` (the ``Synthesizer`` interface) and ``loop.py`` (the one
distillation loop) serve every family."""

from dd_bench.methods.base import METHODS, Synthesizer
from dd_bench.methods.coreset import herding, kcenter, random_real  # noqa: F401  (registration)
from dd_bench.methods.decoupled import cvdd, hello, infer, nrrdd, rded, sre2l  # noqa: F401  (registration)
from dd_bench.methods.matching import dm, gradient_matching  # noqa: F401  (registration)
from dd_bench.methods.tm import variants  # noqa: F401  (registration)

__all__ = ["METHODS", "Synthesizer", "create_method", "list_methods"]


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
