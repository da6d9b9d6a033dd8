"""What the recovery methods (SRe2L, CV-DD, INFER, NRR-DD; HeLlO's refinement) share around their loop: the pixel range
recovered images are clipped to, the recovery batches, and the prologue that checks that range before any teacher is
trained, then resolves the teacher (or the pool).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.teachers.spec import resolve_teacher, resolve_teachers
from dd_bench.teachers.store import Teacher


def pixel_bounds(real: RealData) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-space values of pixel 0 and 255 per channel, (1, C, 1, 1) each: the clip range of recovered images."""
    if real.zca is not None:
        raise UserError("sre2l recovers images in mean/std model space; dataset.zca=true has no per-pixel valid "
                        "range to clip to: use dataset.zca=false")
    lo = real.to_model_space(torch.zeros(1, real.channels, 1, 1, dtype=torch.uint8, device=real.device))
    hi = real.to_model_space(torch.full((1, real.channels, 1, 1), 255, dtype=torch.uint8, device=real.device))
    return lo, hi


def recovery_batches(num_classes: int, ipc: int, batch_size: int) -> list[torch.Tensor]:
    """Indices into the class-major set: for each ipc id, chunks of ``batch_size`` consecutive classes."""
    out = []
    for i in range(ipc):
        for first in range(0, num_classes, batch_size):
            classes = torch.arange(first, min(first + batch_size, num_classes))
            out.append(classes * ipc + i)
    return out


def bounds_and_teacher(real: RealData, *, recipe: str, weights: str | Path | None, cache_dir: Path | None,
                       progress: bool) -> tuple[Teacher, tuple[torch.Tensor, torch.Tensor]]:
    """(the teacher, its clip range): the range first, so ZCA data fails before a teacher is trained."""
    bounds = pixel_bounds(real)
    return resolve_teacher(real, recipe=recipe, weights=weights, cache_dir=cache_dir, progress=progress), bounds


def bounds_and_pool(real: RealData, *, recipes: list[str], weights: list[str | None] | None, cache_dir: Path | None,
                    progress: bool) -> tuple[list[Teacher], tuple[torch.Tensor, torch.Tensor]]:
    """:func:`bounds_and_teacher` for a pool of teachers (CV-DD's committees, INFER's compensators)."""
    bounds = pixel_bounds(real)
    return resolve_teachers(real, recipes=recipes, weights=weights, cache_dir=cache_dir, progress=progress), bounds
