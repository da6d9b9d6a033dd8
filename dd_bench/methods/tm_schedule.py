"""Start-epoch sampling window of trajectory matching (MTT: fixed; DATM: growing with sequential generation)."""

from __future__ import annotations


def start_epoch_upper(it: int, *, max_start: int, current_max: int, expansion_end: int, sequential: bool) -> int:
    """DATM's difficulty window: the exclusive upper bound of the start epoch at iteration ``it``.

    Without sequential generation it is ``max_start``; with it, it grows linearly from ``current_max`` to
    ``max_start`` over ``expansion_end`` iterations (DATM.py L486-487).
    """
    if not sequential or expansion_end <= 0:
        return max_start
    return min(max_start, current_max + int((max_start - current_max) * it / expansion_end))
