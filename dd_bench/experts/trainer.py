"""Train expert networks on the real training set and record their trajectories (one snapshot per epoch).

MTT's ``buffer.py`` (trajectory-matching.md §1c): a fresh network, SGD (lr 0.01, momentum 0, wd 0, constant lr),
batches of 256 from a reshuffled training set every epoch (the last batch may be smaller), DSA on every real
batch, parameters recorded at init (epoch 0) and after every epoch. FTD/DATM (§2c, §3c) swap SGD for GSAM
(dd_bench/experts/gsam.py) with SGD as its base optimizer.

Parameters are flat vectors (dd_bench/experts/flat_model.py). Several experts train at once when asked
(``batched``): their vectors are stacked to ``(E, P)``, one ``vmap``-ed forward runs all of them on an
``(E, B, C, H, W)`` batch, the loss is the sum of the per-expert mean losses (so row e of the gradient is
expert e's own gradient), and SGD/GSAM act row-wise with per-row norms. The sequential path trains one expert
after the other with the same functions on ``(P,)`` vectors.

Expert i draws from its own CPU generators ``make_generator(recipe.seed, "expert", i, "init" | "data" | "aug")``:
initialisation, the shuffle of every epoch, and the DSA params of every batch, in the same order on either
path and on any device. So an expert's trajectory does not depend on the path, on which other experts train
beside it, or on the device, up to floating-point reassociation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dd_bench.data import RealData
from dd_bench.experts.flat_model import FlatModel
from dd_bench.experts.gsam import gradient, gsam_direction, sgd_update
from dd_bench.experts.recipe import ExpertRecipe, make_expert_augment, template_kwargs
from dd_bench.models import create_model
from dd_bench.seeding import make_generator

__all__ = ["ExpertState", "auto_batched_experts", "expert_flat_model", "init_expert_state", "train_expert_epochs"]


@dataclass
class ExpertState:
    """One expert in training: where it is, what it has recorded, and every random stream it draws from."""

    index: int
    theta: torch.Tensor  # (P,) float32 on the training device: the current parameters
    snapshots: list[torch.Tensor]  # epochs 0..epochs_done, each (P,) float32 on the CPU
    data_gen: torch.Generator  # CPU: one randperm per epoch
    aug_gen: torch.Generator  # CPU: DSA params of every batch (moved to the device after drawing)
    momentum_buffer: torch.Tensor | None = None  # (P,) SGD momentum; None without momentum or before step 1

    @property
    def epochs_done(self) -> int:
        return len(self.snapshots) - 1


def expert_flat_model(real: RealData, recipe: ExpertRecipe) -> FlatModel:
    """The FlatModel of the recipe's network for ``real`` (ValueError for BatchNorm models)."""
    template = create_model(recipe.model, generator=make_generator(0, "expert", "template"),
                            **template_kwargs(real, recipe))
    return FlatModel(template).to(real.device)


def init_expert_state(real: RealData, recipe: ExpertRecipe, index: int, *, flat: FlatModel) -> ExpertState:
    """Expert ``index`` at epoch 0: a fresh network from its init generator, and its data/aug generators."""
    net = create_model(recipe.model, generator=make_generator(recipe.seed, "expert", index, "init"),
                       **template_kwargs(real, recipe))
    theta = flat.flatten(net)  # (P,) float32, CPU
    return ExpertState(index=index, theta=theta.to(real.device), snapshots=[theta.clone()],
                       data_gen=make_generator(recipe.seed, "expert", index, "data"),
                       aug_gen=make_generator(recipe.seed, "expert", index, "aug"))


def auto_batched_experts(device: torch.device, n_experts: int) -> bool:
    """The evaluator's policy (dd_bench/train/loop.py:auto_batched): vmap on CUDA, one at a time on the CPU,
    where vmap's grouped convolutions are no faster than separate ones (scripts/bench_experts.py measures it)."""
    return device.type == "cuda" and n_experts > 1


def _cross_entropy_per_expert(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (E, B, K), labels (E, B) -> the sum over experts of each expert's mean CE (a scalar)."""
    e, b = labels.shape
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(e, b).mean(1).sum()


def _loss_closure(flat: FlatModel, x: torch.Tensor, y: torch.Tensor, *, stacked: bool) -> Callable:
    """theta -> loss on this batch; GSAM calls it twice (at w and w + e) on the same augmented batch."""
    if stacked:
        return lambda theta: _cross_entropy_per_expert(flat.forward_batched(theta, x), y)
    return lambda theta: F.cross_entropy(flat.forward(theta, x), y)


def _direction(w: torch.Tensor, loss_fn: Callable, recipe: ExpertRecipe) -> tuple[torch.Tensor, torch.Tensor]:
    if recipe.optimizer == "gsam":
        return gsam_direction(w, loss_fn, rho=recipe.rho, alpha=recipe.alpha, adaptive=recipe.adaptive)
    return gradient(w, loss_fn)


def _stack_buffers(states: Sequence[ExpertState]) -> torch.Tensor | None:
    buffers = [s.momentum_buffer for s in states]
    if all(b is None for b in buffers):
        return None
    if any(b is None for b in buffers):
        raise ValueError("experts trained together must all have (or all lack) a momentum buffer")
    return torch.stack(buffers)


def train_expert_epochs(
    states: Sequence[ExpertState],
    *,
    real: RealData,
    recipe: ExpertRecipe,
    flat: FlatModel,
    epochs: int | None = None,
    batched: bool | None = None,
    max_steps: int | None = None,
    on_epoch_end: Callable[[ExpertState], None] | None = None,
) -> list[ExpertState]:
    """Train each expert in ``states`` for ``epochs`` more epochs (default: up to ``recipe.epochs``).

    Every finished epoch appends a CPU snapshot to ``state.snapshots`` and calls ``on_epoch_end(state)``
    (where the caller checkpoints). ``batched``: None picks vmap on CUDA when there are several experts
    (:func:`auto_batched_experts`), True/False force it; batched experts must have done the same number of epochs.
    ``max_steps`` stops every expert after that many optimizer steps, mid-epoch and without a snapshot
    (equivalence tests only: the states are not resumable after it).
    """
    states = list(states)
    if not states:
        return states
    if batched is None:
        batched = auto_batched_experts(real.device, len(states))
    augment = make_expert_augment(real, recipe)
    if batched:
        done = {s.epochs_done for s in states}
        if len(done) != 1:
            raise ValueError(f"experts trained batched must be at the same epoch; got epochs {sorted(done)}")
        groups = [states]
    else:
        groups = [[s] for s in states]
    for group in groups:
        todo = recipe.epochs - group[0].epochs_done if epochs is None else epochs
        _train_group(group, real=real, recipe=recipe, flat=flat, augment=augment, epochs=todo, stacked=batched,
                     max_steps=max_steps, on_epoch_end=on_epoch_end)
    return states


def _train_group(
    group: list[ExpertState],
    *,
    real: RealData,
    recipe: ExpertRecipe,
    flat: FlatModel,
    augment: object,
    epochs: int,
    stacked: bool,
    max_steps: int | None,
    on_epoch_end: Callable[[ExpertState], None] | None,
) -> None:
    """Train ``group`` in lockstep: stacked (E, P) with a vmap forward, or a single expert on (P,)."""
    device = real.device
    n, e = len(real.train_labels), len(group)
    if stacked:
        w = torch.stack([s.theta.to(device) for s in group])  # (E, P)
        buf = _stack_buffers(group)
    else:
        w, buf = group[0].theta.to(device), group[0].momentum_buffer
    steps = 0
    for _ in range(epochs):
        perms = [torch.randperm(n, generator=s.data_gen).to(device) for s in group]  # (N,) each
        loss = torch.zeros(())
        for start in range(0, n, recipe.batch_size):
            if max_steps is not None and steps >= max_steps:
                _write_back(group, w, buf, stacked)
                return
            idx = torch.cat([p[start:start + recipe.batch_size] for p in perms])  # (E*B,), expert-major
            b = len(idx) // e
            x = real.to_model_space(real.train_images[idx])  # (E*B, C, H, W) float32
            params = [augment.sample_params(b, generator=s.aug_gen) for s in group]
            params = {k: v.to(device) for k, v in type(augment).cat_params(params, [b] * e).items()}
            x = augment.apply(x, params)
            y = real.train_labels[idx]  # (E*B,)
            if stacked:
                x, y = x.view(e, b, *x.shape[1:]), y.view(e, b)  # (E, B, C, H, W), (E, B)
            d, loss = _direction(w, _loss_closure(flat, x, y, stacked=stacked), recipe)
            w, buf = sgd_update(w, d, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay,
                                momentum_buffer=buf)
            steps += 1
        if not torch.isfinite(loss):
            raise FloatingPointError(f"expert training diverged (loss {float(loss)}) for expert(s) "
                                     f"{[s.index for s in group]} in epoch {group[0].epochs_done + 1}; lr {recipe.lr}")
        _write_back(group, w, buf, stacked)
        snapshot = w.detach().to("cpu", copy=True)  # (E, P) or (P,)
        for i, s in enumerate(group):
            s.snapshots.append(snapshot[i].clone() if stacked else snapshot)
            if on_epoch_end is not None:
                on_epoch_end(s)


def _write_back(group: list[ExpertState], w: torch.Tensor, buf: torch.Tensor | None, stacked: bool) -> None:
    """Store the current parameters and momentum buffers back into the per-expert states."""
    for i, s in enumerate(group):
        s.theta = w[i] if stacked else w
        s.momentum_buffer = None if buf is None else (buf[i] if stacked else buf)
