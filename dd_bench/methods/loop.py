"""The one distillation loop every iterative method runs: resume, iterate, stop on divergence, checkpoint.

A method hands :func:`run_iterations` its learnable tensors (``leaves``), one ``step(it) -> loss`` that does an
iteration's forward, backward and update, and how to save and restore the rest of its state (optimiser momenta,
generator states, EMAs, counters). The loop:

* resumes from ``checkpoint_dir`` when a checkpoint of the same config (``config_hash``) exists at or before
  ``iterations`` (a resume never returns another config's result, nor a longer run's state);
* after every step, checks the loss and every leaf: on a non-finite value it puts the leaves back to the last good
  iteration, stops, and says so in the returned status (which goes into the set's provenance);
* checkpoints atomically every ``checkpoint_every`` iterations and at the end (:mod:`dd_bench.io.checkpoint`);
* reports each good iteration's loss and progress-bar numbers to :data:`~dd_bench.tracking.curves.DISTILL_CURVES`
  when the task running the method has set an observer there (a logger's curves, as they happen); methods never set it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dd_bench.io import json_sha256, load_checkpoint, save_checkpoint
from dd_bench.tracking.curves import DISTILL_CURVES

SaveState = Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]]
RestoreState = Callable[[dict[str, torch.Tensor], dict[str, Any]], None]


def run_iterations(
    *,
    iterations: int,
    leaves: dict[str, torch.Tensor],
    step: Callable[[int], float],
    save_state: SaveState,
    restore_state: RestoreState,
    checkpoint_dir: Path | None,
    checkpoint_every: int,
    config_hash: str,
    progress: bool = True,
    desc: str = "",
    after_step: Callable[[int, float], None] | None = None,
    postfix: Callable[[int, float], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run iterations ``start..iterations-1`` (``start`` from a checkpoint, else 0); returns the status dict.

    ``after_step(it, loss)`` runs after each good iteration (EMAs, counters); ``postfix`` feeds the progress bar.
    """
    status: dict[str, Any] = {"stopped_early": False}
    start = 0
    ckpt = load_checkpoint(checkpoint_dir, config_hash=config_hash) if checkpoint_dir is not None else None
    if ckpt is not None and int(ckpt[1]["iteration"]) <= iterations:
        tensors, state = ckpt
        with torch.no_grad():
            for name, leaf in leaves.items():
                leaf.copy_(tensors[f"leaf.{name}"].to(leaf.device))
        restore_state(tensors, state)
        start = int(state["iteration"])
        status["resumed_from"] = start
        print(f"{desc or 'distillation'}: resuming from iteration {start} of {iterations} ({checkpoint_dir})",
              file=sys.stderr)

    def checkpoint(iteration: int) -> None:
        tensors, state = save_state()
        tensors = {**tensors, **{f"leaf.{name}": leaf.detach() for name, leaf in leaves.items()}}
        save_checkpoint(checkpoint_dir, tensors=tensors,
                        state={**state, "iteration": iteration, "config_hash": config_hash})

    sink = DISTILL_CURVES.get()
    last_good = {name: leaf.detach().clone() for name, leaf in leaves.items()}
    bar = tqdm(range(start, iterations), desc=desc, disable=not progress, leave=False)
    for it in bar:
        loss = step(it)
        if not (math.isfinite(loss) and all(torch.isfinite(leaf).all() for leaf in leaves.values())):
            with torch.no_grad():
                for name, leaf in leaves.items():
                    leaf.copy_(last_good[name])
            status.update(stopped_early=True, stopped_at_iteration=it,
                          reason=f"non-finite loss or parameters at iteration {it} (loss={loss}); kept the state "
                                 f"after iteration {it - 1}")
            break
        with torch.no_grad():
            for name, leaf in leaves.items():
                last_good[name].copy_(leaf)
        if after_step is not None:
            after_step(it, loss)
        shown = postfix(it, loss) if postfix is not None and (progress or sink is not None) else {}
        if shown and progress:
            bar.set_postfix(shown, refresh=False)
        if sink is not None:
            sink(desc, {"iteration": it, "loss": loss, **_numbers(shown)})
        if checkpoint_dir is not None and (it + 1) % checkpoint_every == 0:
            checkpoint(it + 1)
    bar.close()
    if checkpoint_dir is not None and not status["stopped_early"]:
        checkpoint(iterations)
    return status


def _numbers(fields: dict[str, Any]) -> dict[str, float]:
    """The numeric ones among a progress bar's fields (they are formatted strings there)."""
    out = {}
    for key, value in fields.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def resume_key(config: dict[str, Any], *, fingerprint: str, ipc: int, seed: int,
               ignore: tuple[str, ...] = ("iterations", "checkpoint_every")) -> str:
    """The ``config_hash`` of a method whose state after k iterations is the same for every run of k or more
    (constant learning rates): everything that changes the trajectory, not the total count, so a longer run may
    resume a shorter one's checkpoint (a checkpoint past a run's iterations is never used)."""
    cfg = {k: v for k, v in config.items() if k not in ignore}
    return json_sha256({"cfg": cfg, "data": fingerprint, "ipc": ipc, "seed": seed}, 16)


def generator_states(generators: dict[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """Checkpoint tensors ``g_<name>`` of named generators (CPU byte tensors on every device)."""
    return {f"g_{name}": g.get_state() for name, g in generators.items()}


def restore_generators(generators: dict[str, torch.Generator], tensors: dict[str, torch.Tensor]) -> None:
    for name, g in generators.items():
        g.set_state(tensors[f"g_{name}"].cpu())


def momentum_state(optimizer: torch.optim.Optimizer, leaf: torch.Tensor) -> dict[str, torch.Tensor]:
    """An SGD optimiser's momentum buffer of ``leaf`` as checkpoint tensors ({} before its first step)."""
    state = optimizer.state.get(leaf, {})
    return {"momentum": state["momentum_buffer"]} if "momentum_buffer" in state else {}


def restore_momentum(optimizer: torch.optim.Optimizer, leaf: torch.Tensor, tensors: dict[str, torch.Tensor]) -> None:
    if "momentum" in tensors:
        optimizer.state[leaf]["momentum_buffer"] = tensors["momentum"].to(leaf.device)
