"""The one training loop: fresh networks per seed on a set of images, a function of (images, labels).

``train_networks`` takes the recipe as parts: passes and batch size, an optimiser (:mod:`.optimizers`), an lr
schedule (:mod:`.schedules`), an augmentation (``sample_params`` / ``apply``) and a label source
(:mod:`dd_bench.labels`) that gives the targets *of the augmented batch* and the loss they go with. The `mtt`
protocol is SGD + :class:`~dd_bench.train.schedules.StepDecay` + DSA + hard/stored labels
(:func:`dd_bench.eval.mtt.train_networks` builds it).

Several seeds are trained at once when the architecture allows it (no BatchNorm): the S networks' parameters are
stacked to ``(S, ...)`` tensors and one ``torch.func.vmap``-ed ``functional_call`` runs all of them on an
``(S, B, C, H, W)`` batch. SGD and AdamW are element-wise, so one optimiser over the stacked tensors performs S
independent runs; the loss is the sum of the per-seed mean losses, so each seed's gradient is exactly its own.
Models with BatchNorm (running statistics updated in place) take the sequential path.

Both paths draw the same random numbers in the same order from per-seed generators
(``make_generator(seed, "eval", ...)``): initialisation, the shuffle of every pass, and the augmentation
parameters of every batch. So a seed trains the same network on either path up to floating-point reassociation.
Every seed's loss is checked after every pass: a diverged seed stops training with an error naming it.

``accumulation_steps`` > 1 (CV-DD's student, ``train_fkd.py:363-394``): each batch is augmented and labelled whole
(stored FKD batches replay as they were made), then the network runs on its micro-batches (:func:`micro_slices`),
one backward each of the micro-batch's mean loss divided by the steps, and the optimiser steps once. Without BN the
update of a full batch equals one batch's; with BN the train-mode statistics are the micro-batch's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from dd_bench.errors import UserError
from dd_bench.models import create_model, supports_vmap
from dd_bench.seeding import make_generator
from dd_bench.train.optimizers import OptimizerSpec, set_lr
from dd_bench.train.schedules import Schedule

if TYPE_CHECKING:
    from dd_bench.train.targets import LabelSource, Targets

Transform = Callable[[torch.Tensor], torch.Tensor]


class Replay(Protocol):
    """Stored batches: the order of pass ``epoch`` (N,) and the augmentation parameters of positions [start, stop)."""

    def order(self, epoch: int) -> torch.Tensor: ...

    def params(self, epoch: int, start: int, stop: int) -> dict[str, torch.Tensor]: ...


@dataclass
class TrainedNetworks:
    """S trained networks of one architecture: stacked parameters (batched) or a list of modules."""

    seeds: list[int]
    template: nn.Module  # for the batched path: a module on the meta device, the structure for functional_call
    params: dict[str, torch.Tensor] | None = None  # name -> (S, ...) when batched
    buffers: dict[str, torch.Tensor] | None = None
    modules: list[nn.Module] | None = None  # when sequential

    @property
    def batched(self) -> bool:
        return self.params is not None

    def seed_state(self, i: int) -> dict[str, torch.Tensor]:
        """The i-th seed's network as a state dict (parameters and buffers), to continue training it."""
        if self.params is not None:
            assert self.buffers is not None
            return {**{k: v[i].detach() for k, v in self.params.items()},
                    **{k: v[i].detach() for k, v in self.buffers.items()}}
        assert self.modules is not None
        return {k: v.detach() for k, v in self.modules[i].state_dict().items()}

    def seed_parameters(self, i: int) -> dict[str, torch.Tensor]:
        """Parameters of the i-th seed's network as a name -> tensor dict (for equivalence checks)."""
        if self.params is not None:
            return {k: v[i].detach() for k, v in self.params.items()}
        assert self.modules is not None
        return {k: v.detach() for k, v in self.modules[i].named_parameters()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, transform: Transform | None, batch_size: int) -> torch.Tensor:
        """Arg-max class of every image for every seed: (S, M) int64. Networks in eval mode, no augmentation."""
        outs = []
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            x = transform(x) if transform is not None else x
            if self.params is not None:
                self.template.eval()
                call = vmapped_forward(self.template)
                logits = call(self.params, self.buffers, x.unsqueeze(0).expand(len(self.seeds), *x.shape))
            else:
                assert self.modules is not None
                logits = torch.stack([_eval_forward(m, x) for m in self.modules])
            outs.append(logits.argmax(-1))
        return torch.cat(outs, dim=1)


def _eval_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    module.eval()
    return module(x)


def vmapped_forward(template: nn.Module) -> Callable:
    def forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(template, (params, buffers), (x,))

    # randomness="different": no op in our models draws randomness, but dropout in timm models would.
    return torch.func.vmap(forward, in_dims=(0, 0, 0), randomness="different")


def auto_batched(device: torch.device, n_seeds: int, module: nn.Module, *, pass_pixels: int | None = None,
                 cpu_batched_up_to: int = 0) -> bool:
    """Batch seeds with vmap on CUDA, where small sets leave the GPU idle; train them one by one on the CPU.

    On the CPU training is compute-bound: scripts/bench_evaluator.py measured the vmap path 1.3-2x slower than
    the sequential one on 2 cores (vmap's grouped convolutions are no faster than S separate ones there). A caller
    whose steps are overhead-bound on tiny sets names ``cpu_batched_up_to``: the CPU batches seeds too when a
    pass holds at most that many pixels (``pass_pixels`` = images x H x W).
    """
    if n_seeds < 2 or not supports_vmap(module):
        return False
    tiny = pass_pixels is not None and pass_pixels <= cpu_batched_up_to
    return device.type == "cuda" or tiny


def train_networks(
    *,
    model: str,
    images: torch.Tensor | list[torch.Tensor],
    labels: LabelSource | list[LabelSource],
    num_classes: int,
    passes: int,
    batch_size: int,
    optimizer: OptimizerSpec,
    lr: float,
    schedule: Schedule,
    seeds: list[int],
    augment: object | None,
    transform: Transform | None = None,
    batched: bool | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    desc: str = "",
    model_kwargs: dict | None = None,
    replay: Replay | None = None,
    after_pass: Callable[[int, TrainedNetworks], None] | None = None,
    cpu_batched_up_to: int = 0,
    start: TrainedNetworks | None = None,
    stage: int = 0,
    accumulation_steps: int = 1,
) -> TrainedNetworks:
    """Train one fresh ``model`` per seed for ``passes`` passes over ``images``.

    images: (N, C, H, W), float in model space, or uint8 with ``transform`` mapping a batch into model space;
        or a list of one such tensor per seed, all of the same N (random-subset references: subset i for seed i).
    labels: a label source, or one per seed when images is a list.
    augment: an object with ``sample_params(n, *, generator)`` / ``apply(x, params)`` / ``cat_params`` (DSA)
        or None. batched: None picks the vmap path on CUDA whenever the architecture allows it (:func:`auto_batched`).
    max_steps: stop after this many optimiser steps (for equivalence tests); None trains every pass.
    replay: stored batches (FKD labels, :mod:`dd_bench.labels.fkd`): every seed takes the replay's order and
        augmentation parameters instead of drawing its own; ``augment`` still applies them.
    after_pass: called as ``after_pass(pass_index, networks)`` after every pass with the networks of the group just
        trained (all seeds when batched, one when sequential); it must not draw random numbers or train.
    cpu_batched_up_to: with ``batched=None``, batch on the CPU too when a pass holds at most this many pixels
        (:func:`auto_batched`).
    start: networks of the same seeds to continue training instead of fresh ones (FTD's warm evaluation,
        ``mtt-ftd-warm``). stage: > 0 gives each seed fresh data and augmentation streams for a later stage of
        training, so it does not replay the batches of the stage before.
    accumulation_steps: micro-batches per batch, one optimiser step per batch (module docstring).
    """
    if not seeds:
        raise ValueError("seeds must not be empty")
    if accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be >= 1; got {accumulation_steps}")
    per_seed = isinstance(images, (list, tuple))
    images_of = list(images) if per_seed else [images] * len(seeds)
    labels_of = list(labels) if isinstance(labels, (list, tuple)) else [labels] * len(seeds)
    if len(images_of) != len(seeds) or len(labels_of) != len(seeds) or len({len(t) for t in images_of}) != 1:
        raise ValueError("per-seed images and labels need one entry per seed, all images of the same length")
    device = images_of[0].device
    n, c, h, w = images_of[0].shape
    kwargs = dict(num_classes=num_classes, in_channels=c, image_size=(h, w), **(model_kwargs or {}))
    modules = [create_model(model, generator=make_generator(s, "eval", "init", model), **kwargs).to(device)
               for s in seeds]
    if start is not None:
        if list(start.seeds) != list(seeds):
            raise ValueError(f"start networks are seeds {start.seeds}, not {list(seeds)}")
        for i, m in enumerate(modules):
            m.load_state_dict(start.seed_state(i))
    if batched is None:
        batched = auto_batched(device, len(seeds), modules[0], pass_pixels=n * h * w,
                               cpu_batched_up_to=cpu_batched_up_to)
    if batched and not supports_vmap(modules[0]):
        raise UserError(f"model '{model}' cannot be trained batched (it has BatchNorm); use batched=False")
    streams = ("eval",) if stage == 0 else ("eval", "stage", stage)
    data_gens = [make_generator(s, *streams, "data") for s in seeds]  # CPU: randperm of every pass
    aug_gens = [make_generator(s, *streams, "aug", device=device) for s in seeds]

    if batched:
        params, buffers = torch.func.stack_module_state(modules)
        template = copy.deepcopy(modules[0]).to("meta")
        template.train()
        call = vmapped_forward(template)
        del modules
        state = TrainedNetworks(seeds=list(seeds), template=template, params=params, buffers=buffers)
        trainable = list(params.values())
    else:
        for m in modules:
            m.train()
        state = TrainedNetworks(seeds=list(seeds), template=modules[0], modules=modules)

    # The batched path trains every seed in one group; the sequential path trains one network through all its
    # passes, then the next (the official loop's order: measured faster on the CPU than interleaving networks,
    # whose weights then keep leaving the cache). Per-seed generators make the order irrelevant to the numbers.
    groups = [list(range(len(seeds)))] if batched else [[s] for s in range(len(seeds))]
    steps_per_pass = -(-n // batch_size)
    bar = tqdm(total=passes * len(groups), desc=desc or f"train {model} x{len(seeds)}", disable=not progress,
               leave=False, unit="pass")
    try:
        for group in groups:
            def fresh(current_lr: float, group: list[int] = group) -> torch.optim.Optimizer:
                return optimizer.make(trainable if batched else list(state.modules[group[0]].parameters()),
                                      current_lr, stacked=batched)

            opt = fresh(schedule.lr(0, lr))
            for ep in range(passes):
                current_lr = schedule.lr(ep, lr)
                if ep > 0 and schedule.fresh_optimizer(ep):
                    opt = fresh(current_lr)
                else:
                    set_lr(opt, current_lr)
                budget = None if max_steps is None else max_steps - ep * steps_per_pass
                if budget is not None and budget <= 0:
                    break
                if batched:
                    last_loss = train_epoch_batched(call, params, buffers, opt, images_of=images_of, per_seed=per_seed,
                                               labels_of=labels_of, epoch=ep, batch_size=batch_size,
                                               augment=augment, data_gens=data_gens, aug_gens=aug_gens,
                                               transform=transform, max_steps=budget, replay=replay,
                                               accumulation_steps=accumulation_steps)
                else:
                    s = group[0]
                    last_loss = [train_epoch(state.modules[s], images=images_of[s], labels=labels_of[s], epoch=ep,
                                             batch_size=batch_size, optimizer=opt, augment=augment,
                                             data_gen=data_gens[s], aug_gen=aug_gens[s], transform=transform,
                                             max_steps=budget, replay=replay,
                                             accumulation_steps=accumulation_steps)]
                bad = [seeds[s] for s, loss in zip(group, last_loss, strict=True) if not torch.isfinite(loss)]
                if bad:
                    raise FloatingPointError(f"training '{model}' diverged for seed(s) {bad} (losses "
                                             f"{[float(v) for v in last_loss]}) at pass {ep}, lr {current_lr}")
                if after_pass is not None:
                    view = state if batched else TrainedNetworks(seeds=[seeds[group[0]]], template=modules[group[0]],
                                                                 modules=[state.modules[group[0]]])
                    after_pass(ep, view)
                    if batched:
                        template.train()  # predict() put the shared template in eval mode
                bar.update(1)
                if budget is not None and budget < steps_per_pass:
                    break
    finally:
        bar.close()
    return state


def micro_slices(b: int, *, batch_size: int, n: int, steps: int) -> list[tuple[int, int]]:
    """The [lo, hi) micro-batches of a batch of ``b`` (of ``n`` images in batches of ``batch_size``) under ``steps``
    accumulation steps: ceil(min(batch_size, n) / steps) images each (train_fkd.py:365 takes batch_size // steps;
    its CIFAR-10 IPC 1 scripts pass the whole set of 10 as the batch, hence min(batch_size, n)); a short last batch
    has as many as it fills (L368-371), each still divided by ``steps`` (L385)."""
    if steps == 1:
        return [(0, b)]
    m = -(-min(batch_size, n) // steps)
    return [(lo, min(lo + m, b)) for lo in range(0, b, m)]


def train_epoch(module: nn.Module, *, images: torch.Tensor, labels: LabelSource, epoch: int, batch_size: int,
                optimizer: torch.optim.Optimizer, augment: object | None, data_gen: torch.Generator,
                aug_gen: torch.Generator, transform: Transform | None = None,
                max_steps: int | None = None, replay: Replay | None = None,
                accumulation_steps: int = 1) -> torch.Tensor:
    """One pass of ``module`` (in train mode) over ``images`` in a fresh order from ``data_gen``: batches of
    ``batch_size``, augmented with params from ``aug_gen``, targets from ``labels``. Returns the last batch's loss.
    The sequential path of :func:`train_networks` and the teachers' training both run this."""
    module.train()
    n = len(images)
    perm = replay.order(epoch) if replay is not None else torch.randperm(n, generator=data_gen).to(images.device)
    loss = torch.zeros(())
    for k, start in enumerate(range(0, n, batch_size)):
        if max_steps is not None and k >= max_steps:
            break
        idx = perm[start:start + batch_size]
        x = images[idx]
        x = transform(x) if transform is not None else x
        aug = None
        if replay is not None:
            aug = replay.params(epoch, start, start + len(idx))
        elif augment is not None:
            aug = _on_device(augment.sample_params(len(idx), generator=aug_gen), x.device)
        if augment is not None:
            x = augment.apply(x, aug)
        t = labels.targets(x, idx, epoch, aug)
        slices = micro_slices(len(idx), batch_size=batch_size, n=n, steps=accumulation_steps)

        def closure(x: torch.Tensor = x, t: Targets = t, slices: list = slices) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            if len(slices) == 1 and accumulation_steps == 1:
                step_loss = t.loss(module(x), t.values)
                step_loss.backward()
                return step_loss
            total = torch.zeros((), device=x.device)
            for lo, hi in slices:
                part = t.loss(module(x[lo:hi]), t.values[lo:hi]) / accumulation_steps
                part.backward()
                total = total + part.detach()
            return total

        loss = optimizer.step(closure).detach()
    return loss


def _on_device(params: object, device: torch.device) -> object:
    """Augmentation params drawn from a generator on another device (the experts' CPU streams), moved to ``device``."""
    if isinstance(params, dict):
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    return params


def train_epoch_batched(call: Callable, params: dict, buffers: dict, optimizer: torch.optim.Optimizer, *,
                   images_of: list[torch.Tensor], per_seed: bool, labels_of: list, epoch: int, batch_size: int,
                   augment: object | None, data_gens: list[torch.Generator], aug_gens: list[torch.Generator],
                   transform: Transform | None, max_steps: int | None,
                   replay: Replay | None = None, accumulation_steps: int = 1) -> list[torch.Tensor]:
    """One pass of S stacked networks: the same draws per seed as :func:`train_epoch`, one vmapped forward."""
    n, seeds = len(images_of[0]), len(images_of)
    device = images_of[0].device
    perms = ([replay.order(epoch)] * seeds if replay is not None
             else [torch.randperm(n, generator=g).to(device) for g in data_gens])
    losses = [torch.zeros(())] * seeds
    for k, start in enumerate(range(0, n, batch_size)):
        if max_steps is not None and k >= max_steps:
            break
        idx = [p[start:start + batch_size] for p in perms]
        b = len(idx[0])
        x = (images_of[0][torch.cat(idx)] if not per_seed  # (S*B, C, H, W), seed-major
             else torch.cat([im[i] for im, i in zip(images_of, idx, strict=True)]))
        x = transform(x) if transform is not None else x
        aug_params = [None] * seeds
        if replay is not None:
            aug_params = [replay.params(epoch, start, start + b)] * seeds
        elif augment is not None:
            aug_params = [augment.sample_params(b, generator=g) for g in aug_gens]
        if augment is not None:
            x = augment.apply(x, _on_device(type(augment).cat_params(aug_params, [b] * seeds), x.device))
        x = x.view(seeds, b, *x.shape[1:])
        targets = [labels_of[s].targets(x[s], idx[s], epoch, aug_params[s]) for s in range(seeds)]
        first: list[torch.Tensor] = []  # per-seed losses at the weights before the step (GSAM calls twice)
        slices = micro_slices(b, batch_size=batch_size, n=n, steps=accumulation_steps)

        def closure(x: torch.Tensor = x, targets: list[Targets] = targets, slices: list = slices,
                    first: list[torch.Tensor] = first) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            if len(slices) == 1 and accumulation_steps == 1:
                logits = call(params, buffers, x)
                per_seed = [t.loss(logits[s], t.values) for s, t in enumerate(targets)]
                total = sum(per_seed)
                total.backward()
            else:  # the same micro-batches as train_epoch, every seed at once
                per_seed = [torch.zeros((), device=x.device)] * seeds
                for lo, hi in slices:
                    logits = call(params, buffers, x[:, lo:hi])
                    parts = [t.loss(logits[s], t.values[lo:hi]) / accumulation_steps for s, t in enumerate(targets)]
                    sum(parts).backward()
                    per_seed = [a + p.detach() for a, p in zip(per_seed, parts, strict=True)]
                total = sum(per_seed)
            if not first:
                first.extend(v.detach() for v in per_seed)
            return total

        optimizer.step(closure)
        losses = first
    return losses
