"""DD-Ranking's robust scores (benchmark-suites.md §3.2-3.3), on accuracies as FRACTIONS in [0, 1].

* **LRS** (label-robust score): ``HLR = Acc(real, hard) - Acc(syn, hard)`` (hard-label recovery, lower is better),
  ``IOR = Acc(syn, own) - Acc(rdm, own)`` (improvement over a class-balanced random real subset of the same IPC
  under the set's own protocol and labels), ``alpha = w * IOR - (1 - w) * HLR`` (``w = 0.5``),
  ``LRS = (e^alpha - e^-1) / (e - e^-1)``.
* **ARS** (augmentation-robust score): ``beta = g * (Acc(syn, aug) - Acc(rdm, aug)) + (1 - g) * (Acc(syn, no aug)
  - Acc(rdm, no aug))`` (``g = 0.5``), ``ARS = (e^beta - e^-1) / (e - e^-1)``.

DD-Ranking v0.2.0 feeds these formulas percentages (its meter multiplies by 100), which pushes them far outside
[0, 1]; here every accuracy is a fraction, so alpha and beta lie in [-1, 1] and both scores in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any


def _normalise(x: float) -> float:
    return (math.exp(x) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def _fraction(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be an accuracy as a fraction in [0, 1]; got {value} (percent?)")
    return float(value)


def label_robust_score(*, real_hard: float, syn_hard: float, syn_own: float, random_own: float,
                       weight: float = 0.5) -> dict[str, Any]:
    """LRS and its parts from four accuracies (fractions)."""
    real_hard, syn_hard = _fraction("real_hard", real_hard), _fraction("syn_hard", syn_hard)
    syn_own, random_own = _fraction("syn_own", syn_own), _fraction("random_own", random_own)
    hlr, ior = real_hard - syn_hard, syn_own - random_own
    alpha = weight * ior - (1.0 - weight) * hlr
    return {"lrs": _normalise(alpha), "alpha": alpha, "hlr": hlr, "ior": ior, "weight": weight,
            "inputs": {"real_hard": real_hard, "syn_hard": syn_hard, "syn_own": syn_own, "random_own": random_own}}


def augmentation_robust_score(*, syn_aug: float, random_aug: float, syn_no_aug: float, random_no_aug: float,
                              weight: float = 0.5) -> dict[str, Any]:
    """ARS and its parts from four accuracies (fractions)."""
    values = {k: _fraction(k, v) for k, v in (("syn_aug", syn_aug), ("random_aug", random_aug),
                                               ("syn_no_aug", syn_no_aug), ("random_no_aug", random_no_aug))}
    beta = weight * (values["syn_aug"] - values["random_aug"]) + (1.0 - weight) * (
        values["syn_no_aug"] - values["random_no_aug"])
    return {"ars": _normalise(beta), "beta": beta, "weight": weight, "inputs": values}
