"""Scoring trained networks: top-1 accuracy on the real test set, once, after training (every family)."""

from __future__ import annotations

from typing import Any

from dd_bench.data import RealData


def score(trained: Any, real: RealData, protocol: Any) -> list[float]:
    """Per-seed accuracy in percent (4 decimals) of :class:`~dd_bench.train.TrainedNetworks` on ``real``'s test set."""
    preds = trained.predict(real.test_images, transform=real.to_model_space, batch_size=protocol.test_batch_size)
    correct = (preds == real.test_labels.unsqueeze(0)).float().mean(dim=1)
    return [round(100.0 * float(c), 4) for c in correct]
