"""Images-per-class sanity check: a method cannot draw or initialise more images of a class than exist."""

from __future__ import annotations

from dd_bench.data.real_data import RealData
from dd_bench.errors import UserError


def check_ipc(real: RealData, ipc: int) -> None:
    """Raise ValueError when ``ipc`` < 1 or exceeds the smallest class's number of training images."""
    if ipc < 1:
        raise UserError(f"ipc must be >= 1; got {ipc}")
    counts = real.class_counts().tolist()
    smallest = min(range(len(counts)), key=lambda c: counts[c])
    if ipc > counts[smallest]:
        raise UserError(
            f"ipc={ipc} is larger than the smallest class "
            f"(class '{real.class_names[smallest]}' has {counts[smallest]} training images)"
        )
