"""Train expert networks on the real training set and record their trajectories (one snapshot per epoch).

MTT's ``buffer.py`` (trajectory-matching.md §1c): a fresh network, SGD (lr 0.01, momentum 0, wd 0, constant lr),
batches of 256 from a reshuffled training set every epoch (the last batch may be smaller), DSA on every real
batch, parameters recorded at init (epoch 0) and after every epoch. FTD/DATM (§2c, §3c) swap SGD for GSAM
(dd_bench/experts/gsam.py) with SGD as its base optimizer.

The steps are the shared training layer's (dd_bench/train/loop.py: ``train_epoch`` for one expert,
``train_epoch_batched`` for several), the loop every evaluation protocol and teacher runs; what is the experts'
own is the parameterisation and the optimiser. Parameters are one flat vector (dd_bench/experts/flat_model.py),
wrapped as a module's single parameter (sequential) or stacked to ``(E, P)`` for one ``vmap``-ed forward on an
``(E, B, C, H, W)`` batch (``batched``): the loss is then the sum of the per-expert mean losses, so row e of the
gradient is expert e's own gradient, and SGD (``torch.optim.SGD``) and GSAM (dd_bench/experts/gsam.py:GSAM) act
row-wise with per-row norms.

Expert i draws from its own CPU generators ``make_generator(recipe.seed, "expert", i, "init" | "data" | "aug")``:
initialisation, the shuffle of every epoch, and the DSA params of every batch, in the same order on either
path and on any device. So an expert's trajectory does not depend on the path, on which other experts train
beside it, or on the device, up to floating-point reassociation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dd_bench.data import RealData
from dd_bench.experts.flat_model import FlatModel
from dd_bench.experts.gsam import GSAM
from dd_bench.experts.recipe import ExpertRecipe, make_expert_augment, template_kwargs
from dd_bench.models import create_model
from dd_bench.seeding import make_generator
from dd_bench.train.loop import train_epoch, train_epoch_batched
from dd_bench.train.targets import HardLabels

__all__ = ["ExpertState", "FlatNetwork", "auto_batched_experts", "expert_flat_model", "init_expert_state",
           "make_expert_optimizer", "train_expert_epochs"]


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


class FlatNetwork(nn.Module):
    """One expert as a module whose only parameter is its flat vector ``theta`` (P,), for the sequential step."""

    def __init__(self, flat: FlatModel, theta: torch.Tensor) -> None:
        super().__init__()
        self.flat = flat
        self.theta = nn.Parameter(theta.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flat.forward(self.theta, x)


def make_expert_optimizer(theta: torch.Tensor, recipe: ExpertRecipe,
                          momentum_buffer: torch.Tensor | None) -> torch.optim.Optimizer:
    """The recipe's optimiser over the flat parameter ``theta`` (P,) or (E, P), resuming its momentum buffer."""
    if recipe.optimizer == "gsam":
        opt: torch.optim.Optimizer = GSAM([theta], lr=recipe.lr, rho=recipe.rho, alpha=recipe.alpha,
                                          adaptive=recipe.adaptive, momentum=recipe.momentum,
                                          weight_decay=recipe.weight_decay)
    else:
        opt = torch.optim.SGD([theta], lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if momentum_buffer is not None:
        opt.state[theta]["momentum_buffer"] = momentum_buffer.to(theta.device, copy=True)
    return opt


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
    """Train ``group`` in lockstep through the shared loop: stacked (E, P) with a vmap forward, or one expert."""
    device = real.device
    n, e = len(real.train_labels), len(group)
    labels = [HardLabels(real.train_labels)] * e
    data_gens, aug_gens = [s.data_gen for s in group], [s.aug_gen for s in group]
    if stacked:
        theta = nn.Parameter(torch.stack([s.theta.to(device) for s in group]))  # (E, P)
        net = None
        call = lambda params, buffers, x: flat.forward_batched(params["theta"], x)  # noqa: E731
    else:
        net = FlatNetwork(flat, group[0].theta.to(device))
        theta = net.theta
    opt = make_expert_optimizer(theta, recipe, _stack_buffers(group) if stacked else group[0].momentum_buffer)
    steps_per_epoch = -(-n // recipe.batch_size)
    steps = 0
    for _ in range(epochs):
        budget = None if max_steps is None else max_steps - steps
        epoch = group[0].epochs_done
        if net is None:
            losses = train_epoch_batched(call, {"theta": theta}, {}, opt, images_of=[real.train_images] * e,
                                         per_seed=False, labels_of=labels, epoch=epoch, batch_size=recipe.batch_size,
                                         augment=augment, data_gens=data_gens, aug_gens=aug_gens,
                                         transform=real.to_model_space, max_steps=budget)
        else:
            losses = [train_epoch(net, images=real.train_images, labels=labels[0], epoch=epoch,
                                  batch_size=recipe.batch_size, optimizer=opt, augment=augment,
                                  data_gen=data_gens[0], aug_gen=aug_gens[0], transform=real.to_model_space,
                                  max_steps=budget)]
        steps += steps_per_epoch
        if budget is not None and budget < steps_per_epoch:
            _write_back(group, theta, opt, stacked)  # stopped mid-epoch: no snapshot (equivalence tests only)
            return
        if not all(torch.isfinite(v) for v in losses):
            raise FloatingPointError(f"expert training diverged (losses {[float(v) for v in losses]}) for expert(s) "
                                     f"{[s.index for s in group]} in epoch {epoch + 1}; lr {recipe.lr}")
        _write_back(group, theta, opt, stacked)
        snapshot = theta.detach().to("cpu", copy=True)  # (E, P) or (P,)
        for i, s in enumerate(group):
            s.snapshots.append(snapshot[i].clone() if stacked else snapshot)
            if on_epoch_end is not None:
                on_epoch_end(s)


def _write_back(group: list[ExpertState], theta: torch.Tensor, opt: torch.optim.Optimizer, stacked: bool) -> None:
    """Store the current parameters and momentum buffers back into the per-expert states."""
    w = theta.detach().clone()
    buf = opt.state[theta].get("momentum_buffer")
    buf = None if buf is None else buf.detach().clone()
    for i, s in enumerate(group):
        s.theta = w[i] if stacked else w
        s.momentum_buffer = None if buf is None else (buf[i] if stacked else buf)
