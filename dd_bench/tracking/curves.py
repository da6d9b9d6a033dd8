"""The observer of distillation curves, a hook between the loop that makes them and the logger that shows them.

:func:`dd_bench.methods.loop.run_iterations` reports each good iteration's loss and progress-bar numbers here; a
logger sets the observer around a distillation (:func:`dd_bench.results.wandb_logger.distill_run`). Both import this
module downward, so the logger never reaches into a method module.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

# The observer of distillation curves: (the loop's desc, {"iteration", "loss", the bar's numeric fields}) per good
# iteration. Set only by the task that runs a method (dd_bench.results.wandb_logger.distill_run).
DISTILL_CURVES: contextvars.ContextVar[Callable[[str, dict[str, float]], None] | None] = contextvars.ContextVar(
    "dd_bench_distill_curves", default=None)
