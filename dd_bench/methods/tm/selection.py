"""Checkpoint selection for trajectory matching, on the validation split only.

Every official repo (MTT ``distill.py`` L191-221; FTD, DATM, FYI alike) scores the set every ``eval_it`` iterations
with 5 fresh networks **on the test set** and reports the best checkpoint. dd-bench does the same selection on the
**validation split** (``validation=`` must hold one out of the training set): every ``every`` iterations from
``start`` on, and after the last, the current set is trained under ``protocol`` on ``networks`` fresh networks and
scored on the validation images; the best-scoring state (ties: the earlier one) becomes the set, and the curve
``[[iteration, validation accuracy %], ...]`` goes into its provenance (None where a candidate could not be
trained: a non-positive learned lr or a diverged network). The method never holds the test split
(``RealData.without_test``), so nothing here can look at it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.synset import SyntheticSet


class CheckpointSelector:
    """Scores candidate sets on the validation split and keeps the best state's tensors (CPU copies)."""

    def __init__(self, real: RealData, *, every: int, start: int, iterations: int, networks: int, model: str,
                 protocol: str, epochs: int | None,
                 paper_test: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        from dd_bench.eval.protocol import custom_protocol, get_protocol

        if real.val_images is None:
            raise UserError("eval_every selects the checkpoint on the validation split, and this run has none: set "
                            "validation=0.1 (a held-out fraction of the training set), or eval_every=0 for the last "
                            "iterate")
        if every < 1 or networks < 1 or start < 0 or (epochs is not None and epochs < 0):
            raise UserError(f"eval_every >= 1, eval_networks >= 1, eval_from >= 0 and eval_epochs >= 0 are required; "
                            f"got {every}, {networks}, {start}, {epochs}")
        self.view = real.validation_view()
        self.protocol = get_protocol(protocol) if epochs is None else custom_protocol(protocol, epochs=epochs)
        self.every, self.start, self.iterations = every, start, iterations
        self.networks, self.model = networks, model
        self.curve: list[list[float]] = []
        self.best_iteration: int | None = None
        self.best_accuracy = -1.0
        self.best: dict[str, torch.Tensor] = {}
        self.seconds = 0.0
        # paper_selection: the papers' test-set selection tracked beside the honest one, for its labelled,
        # never-ranked column. The test split reaches this object alone (the method never holds it).
        self.test_view = (None if paper_test is None else
                          replace(real, test_images=paper_test[0], test_labels=paper_test[1]))
        self.test_curve: list[list[float]] = []
        self.test_best_iteration: int | None = None
        self.test_best_accuracy = -1.0
        self.test_best: dict[str, torch.Tensor] = {}

    def due(self, done: int) -> bool:
        """Is the state after ``done`` iterations a candidate?"""
        return done >= self.start and (done % self.every == 0 or done == self.iterations)

    def check(self, done: int, make_set: Callable[[], SyntheticSet], state: dict[str, torch.Tensor]) -> float:
        """Score the set of this state on the validation split; keep ``state`` (copied) when it is the best."""
        began = time.perf_counter()
        accuracy = self._score(make_set, self.view)
        self.curve.append([done, accuracy])
        if accuracy is not None and accuracy > self.best_accuracy:
            self.best_iteration, self.best_accuracy = done, accuracy
            self.best = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        if self.test_view is not None:  # the papers' way: fresh networks scored on the test split
            test_accuracy = self._score(make_set, self.test_view)
            self.test_curve.append([done, test_accuracy])
            if test_accuracy is not None and test_accuracy > self.test_best_accuracy:
                self.test_best_iteration, self.test_best_accuracy = done, test_accuracy
                self.test_best = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        self.seconds += time.perf_counter() - began
        return accuracy

    def _score(self, make_set: Callable[[], SyntheticSet], view: RealData) -> float | None:
        """Mean accuracy of fresh networks trained on the candidate and scored on ``view``'s test slot; None when
        the candidate cannot be trained (its learned lr went non-positive, or training diverged): it is then no
        candidate, and the curve shows None there instead of the run dying at a check."""
        from dd_bench.eval import evaluate
        from dd_bench.synset import SynsetError

        try:
            (result,) = evaluate(make_set(), real=view, protocol=self.protocol, models=[self.model],
                                 seeds=list(range(self.networks)), progress=False)
        except (FloatingPointError, SynsetError):
            return None
        return statistics.fmean(result.accuracies)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """What a checkpoint keeps: the best state's tensors and the curve."""
        return ({**{f"best.{k}": v for k, v in self.best.items()},
                 **{f"test_best.{k}": v for k, v in self.test_best.items()}},
                {"curve": self.curve, "best_iteration": self.best_iteration, "best_accuracy": self.best_accuracy,
                 "seconds": self.seconds, "test_curve": self.test_curve,
                 "test_best_iteration": self.test_best_iteration, "test_best_accuracy": self.test_best_accuracy})

    def load_state(self, tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
        self.best = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}
        self.test_best = {k[len("test_best."):]: v for k, v in tensors.items() if k.startswith("test_best.")}
        self.curve = [list(p) for p in saved["curve"]]
        self.best_iteration, self.best_accuracy = saved["best_iteration"], float(saved["best_accuracy"])
        self.seconds = float(saved["seconds"])
        self.test_curve = [list(p) for p in saved.get("test_curve", [])]
        self.test_best_iteration = saved.get("test_best_iteration")
        self.test_best_accuracy = float(saved.get("test_best_accuracy", -1.0))

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        return {"split": "validation", "protocol": self.protocol.name, "model": self.model,
                "networks": self.networks, "every": self.every, "from": self.start, "curve": self.curve,
                "best_iteration": self.best_iteration, "best_val_accuracy": self.best_accuracy,
                "seconds": self.seconds, "share_of_wall_time": self.seconds / wall_seconds if wall_seconds else None,
                **({"paper_selection": {"split": "test", "curve": self.test_curve,
                                        "best_iteration": self.test_best_iteration,
                                        "note": "the papers' test-set selection; labelled, never ranked"}}
                   if self.test_view is not None else {})}
