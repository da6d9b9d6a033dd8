"""The recovery loop of the SRe2L family (decoupled-methods.md §1.2): images optimised against frozen teachers by
CE + r_bn * BN-statistics loss, shared by SRe2L, SRe2L++ and CV-DD (a committee per batch), INFER (one feature
compensator per batch) and NRR-DD (an update mask).

A recovery batch is a set of rows of the image tensor and the committee it is recovered against:
``L_batch = sum_i w_i * (CE(T_i(x_aug), y) + r_bn * L_BN^i)`` (SRe2L: one teacher, weight 1; CV-DD: two voters,
weights softmax(prior / 5)). Each iteration draws, per batch and in batch order, the crop (none, one box and flip
for the batch, or one per image) and then the roll offsets in [0, jitter], steps every batch with ONE Adam
(betas 0.5, 0.9, eps 1e-8; Adam is element-wise and a batch's loss only reaches its own rows, so this equals one
Adam per batch as the official scripts run them one after another) under a cosine lr from ``lr`` to 0, and clips
the images to the valid pixel range after the step. ``compose(leaf, batch)`` builds a batch's input from the leaf
being optimised (INFER: base images + its compensator); ``update_mask`` scales each element's step
(NRR-DD's ``x <- x - M * step``: the critical region, M = 0, never moves).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.augment.resized_crop import RandomResizedCropFlip
from dd_bench.methods.decoupled.bn_statistics import BNStatisticsLoss
from dd_bench.methods.loop import run_iterations


class Crop(enum.StrEnum):
    none = "none"  # roll jitter only (the CIFAR recipe)
    shared = "shared"  # RandomResizedCrop + flip, one draw per batch (torchvision transforms on a 4-D batch)
    per_sample = "per_sample"  # one draw per image (kornia's default; a deviation from the official code)


@dataclass
class Voter:
    """One committee member of a recovery batch: a frozen teacher (eval mode), its BN hooks and its weight."""

    net: nn.Module
    bn: BNStatisticsLoss
    weight: float = 1.0


@dataclass
class RecoveryBatch:
    index: torch.Tensor  # (B,) rows of the optimised leaf (or of the composed inputs) this batch holds
    labels: torch.Tensor  # (B,) int64 targets of the CE term
    voters: list[Voter]
    part: Any = None  # what ``compose`` needs besides the rows (INFER: the compensator's row and the base set)


def frozen_voters(nets: list[nn.Module], weights: list[float], *, first_bn_multiplier: float) -> list[Voter]:
    voters = []
    for net, w in zip(nets, weights, strict=True):
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        voters.append(Voter(net, BNStatisticsLoss(net, first_multiplier=first_bn_multiplier), float(w)))
    return voters


def architecture(net: nn.Module) -> tuple:
    """What must agree for networks to run stacked: the class and every parameter's and buffer's name and shape."""
    return (type(net).__qualname__, tuple((n, tuple(t.shape)) for n, t in net.named_parameters()),
            tuple((n, tuple(t.shape)) for n, t in net.named_buffers()))


class StackedVoters:
    """Frozen voters of one architecture, their parameters and buffers stacked (torch.func.stack_module_state):
    one vmapped forward gives every voter's CE + r_bn * BN loss, (G,), on the same input. The first voter's module
    (and BN hooks) is the template; each voter's own running statistics are the BN targets (functional buffers)."""

    def __init__(self, voters: list[Voter]) -> None:
        from torch.func import stack_module_state

        self.template, self.bn = voters[0].net, voters[0].bn
        self.params, self.buffers = stack_module_state([v.net for v in voters])

    def losses(self, x: torch.Tensor, labels: torch.Tensor, r_bn: float) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(params: dict, buffers: dict) -> torch.Tensor:
            with self.bn:
                out = functional_call(self.template, (params, buffers), (x,))
                return F.cross_entropy(out, labels) + r_bn * self.bn.loss()

        return vmap(one)(self.params, self.buffers)


def committee_loss(voters: list[Voter], x: torch.Tensor, labels: torch.Tensor, *, r_bn: float,
                   stacks: dict[tuple[int, ...], StackedVoters] | None = None) -> torch.Tensor:
    """``sum_i w_i * (CE(T_i(x), y) + r_bn * L_BN^i)``. With ``stacks`` (a cache), voters sharing an architecture
    run as one vmapped forward; otherwise one forward per voter, in order."""
    groups: dict[tuple, list[Voter]] = {}
    for voter in voters:
        groups.setdefault(architecture(voter.net) if stacks is not None else (id(voter),), []).append(voter)
    loss = None
    for group in groups.values():
        if len(group) > 1:
            key = tuple(id(v.net) for v in group)
            stack = stacks.setdefault(key, StackedVoters(group))
            weights = torch.tensor([v.weight for v in group], device=x.device)
            term = (weights * stack.losses(x, labels, r_bn)).sum()
        else:
            voter = group[0]
            with voter.bn:
                out = voter.net(x)
                term = F.cross_entropy(out, labels) + r_bn * voter.bn.loss()
            term = voter.weight * term
        loss = term if loss is None else loss + term
    return loss


def recover(*, leaf: torch.Tensor, batches: list[RecoveryBatch], iterations: int, lr: float, r_bn: float,
            jitter: int, crop: Crop, crop_scale_min: float, image_size: tuple[int, int], flip: bool,
            bounds: tuple[torch.Tensor, torch.Tensor] | None, generator: torch.Generator,
            checkpoint_dir: Path | None, checkpoint_every: int, config_hash: str, progress: bool, desc: str,
            compose: Callable[[torch.Tensor, RecoveryBatch], torch.Tensor] | None = None,
            update_mask: torch.Tensor | None = None, stack_voters: bool = False) -> dict[str, Any]:
    """Optimise ``leaf`` (requires_grad) in place over ``iterations``; returns the loop's status dict.

    ``bounds``: (lo, hi) model-space pixel range, (1, C, 1, 1) each, clipped after every step (None: no clip,
    INFER's clip acts on a rebuilt tensor and so never constrains the compensators). Resumable through
    ``checkpoint_dir`` (the leaf, Adam's moments and the augmentation generator). ``stack_voters``: voters of one
    architecture run as one vmapped forward (:func:`committee_loss`).
    """
    stacks: dict[tuple[int, ...], StackedVoters] = {}
    opt = torch.optim.Adam([leaf], lr=lr, betas=(0.5, 0.9), eps=1e-8)
    resized = None if crop == Crop.none else RandomResizedCropFlip(image_size=image_size, scale=(crop_scale_min, 1.0),
                                                                    flip=flip)
    device = leaf.device

    def step(it: int) -> float:
        for group in opt.param_groups:  # lr_cosine_policy, no warm-up
            group["lr"] = 0.5 * (1 + math.cos(math.pi * it / max(1, iterations))) * lr
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for batch in batches:
            x = compose(leaf, batch) if compose is not None else leaf[batch.index]
            if resized is not None:
                x = resized.apply(x, resized.sample_params(len(batch.index), generator=generator,
                                                           same_on_batch=crop == Crop.shared))
            offsets = torch.randint(0, jitter + 1, (2,), generator=generator, device=device).tolist()
            x = torch.roll(x, shifts=(offsets[0], offsets[1]), dims=(2, 3))
            loss = committee_loss(batch.voters, x, batch.labels, r_bn=r_bn,
                                  stacks=stacks if stack_voters else None)
            loss.backward()
            total += float(loss.detach())
        before = leaf.detach().clone() if update_mask is not None else None
        opt.step()
        if update_mask is not None:
            with torch.no_grad():  # (N or 1, C or 1, H, W), broadcast over the leaf
                leaf.copy_(before + update_mask * (leaf - before))
        if bounds is not None:
            with torch.no_grad():
                leaf.copy_(torch.maximum(torch.minimum(leaf, bounds[1]), bounds[0]))
        return total / max(1, len(batches))

    def save_state() -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {"g_aug": generator.get_state()}
        state = opt.state.get(leaf, {})
        for name in ("exp_avg", "exp_avg_sq"):
            if name in state:
                tensors[f"adam.{name}"] = state[name]
        return tensors, {"adam_step": float(state["step"]) if "step" in state else None}

    def restore_state(tensors: dict[str, torch.Tensor], state: dict) -> None:
        generator.set_state(tensors["g_aug"].cpu())
        if state.get("adam_step") is not None:
            opt.state[leaf] = {"step": torch.tensor(state["adam_step"]),
                               "exp_avg": tensors["adam.exp_avg"].to(device),
                               "exp_avg_sq": tensors["adam.exp_avg_sq"].to(device)}

    return run_iterations(
        iterations=iterations, leaves={"images": leaf}, step=step, save_state=save_state,
        restore_state=restore_state, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        config_hash=config_hash, progress=progress, desc=desc, postfix=lambda it, loss: {"loss": f"{loss:.4g}"})
