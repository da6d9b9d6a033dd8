"""One model's evaluation under a protocol: per-seed accuracies and what they cost (every protocol returns it)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class EvalResult:
    model: str
    protocol: str
    protocol_version: int
    seeds: list[int]
    accuracies: list[float]  # per seed, percent
    eval_seconds: float
    peak_memory: dict[str, Any]  # {"bytes": int | None, "kind": str}
    lr: float
    batched: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def acc_mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def acc_std(self) -> float:
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acc_mean": self.acc_mean, "acc_std": self.acc_std}
