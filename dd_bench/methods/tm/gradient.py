"""The matching gradient of trajectory matching: exact (unrolled) or TESLA's constant-memory approximation.

One iteration starts a student at an expert checkpoint ``theta0 = tau[s]`` (P,), takes ``N = len(plan)`` SGD
steps on synthetic mini-batches with the learnable lr ``alpha``,
``theta_{i+1} = theta_i - alpha * grad CE(f(aug_i(X[idx_i]); theta_i), y[idx_i])``, and scores the end point
against the expert's later checkpoint ``theta_target = tau[s + M]``:

    L = ||theta_N - theta_target||^2 / ||theta0 - theta_target||^2

Both modes leave dL/dX, dL/dalpha (and dL/dY for learned soft labels) in the leaves' ``.grad`` and return L.

* ``unrolled`` (MTT, FTD, DATM): the whole N-step graph is kept (``create_graph=True``) and back-propagated:
  the exact gradient; activation memory grows linearly with N.
* ``tesla`` (TESLA, Cui et al. 2023; FYI's MTT; DATM_tesla): pass 1 runs the N steps without an outer graph and
  keeps the N parameter vectors; with ``v = dL/dtheta_N = 2 (theta_N - theta_target) / D`` and
  ``theta_N = theta0 - alpha * sum_i g_i``, pass 2 recomputes each ``g_i`` at the stored ``theta_i`` with a graph
  to X (and Y) and back-propagates ``-alpha * <v, g_i>``; ``dL/dalpha = -<v, sum_i g_i>``. This drops the
  dependence of ``theta_i`` on X through the earlier steps (and of ``g_i`` on alpha): an approximation whose
  agreement with the exact gradient is measured in tests/test_trajectory_matching.py. Memory: one step's
  double-backward graph plus the N stored vectors (N x P floats), flat in N.

* ``recompute``: the exact gradient with ``tesla``'s memory. Pass 1 is ``tesla``'s; then a reverse-mode sweep
  from the last step to the first recomputes each ``g_i`` at the stored ``theta_i`` with a graph and propagates the
  adjoint ``lambda_{i+1} = dL/dtheta_{i+1}`` through one double backward:
  ``dL/dX += -alpha (dg_i/dX)^T lambda_{i+1}``, ``dL/dalpha += -<g_i, lambda_{i+1}>``,
  ``lambda_i = lambda_{i+1} - alpha H_i lambda_{i+1}``. Nothing is dropped, so it equals ``unrolled`` up to rounding
  (tested), at about the cost of ``unrolled`` plus one forward/backward per step.

A ``plan`` holds the pre-sampled batch indices and DSA parameters of every inner step, so both modes (and both
passes of ``tesla``) see exactly the same mini-batches and augmentations.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from dd_bench.augment.fyi import flip_concat
from dd_bench.errors import UserError
from dd_bench.train.losses import classification_loss


class GradMode(enum.StrEnum):
    """How the matching gradient is computed: exact by a reverse sweep (flat memory), exact unrolled, or TESLA;
    ``auto`` picks the faster exact one for the shape within the device's memory (dd_bench/methods/tm/grad_mode.py)
    before the set is hashed, so a set always records the mode that ran."""

    auto = "auto"
    recompute = "recompute"
    unrolled = "unrolled"
    tesla = "tesla"


GRAD_MODES = tuple(m.value for m in GradMode if m is not GradMode.auto)  # the modes that compute
Targets = Callable[[torch.Tensor], torch.Tensor]  # batch indices (b,) -> class indices (b,) or probs (b, K)


@dataclass
class InnerStep:
    indices: torch.Tensor  # (b,) into the synthetic set
    augment_params: dict[str, torch.Tensor] | None  # DSA params for the (possibly flip-concatenated) batch


def _batch(images: torch.Tensor, targets_of: Targets, step: InnerStep, augment: Any, fyi: bool
           ) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = images[step.indices], targets_of(step.indices)
    if fyi:  # FYI: every image trains beside its mirror in the same step (batch 2b)
        x, y = flip_concat(x, y)
    if augment is not None and step.augment_params is not None:
        x = augment.apply(x, step.augment_params)
    return x, y


def matching_loss_value(theta_n: torch.Tensor, theta0: torch.Tensor, theta_target: torch.Tensor) -> torch.Tensor:
    """The normalised parameter distance (sums over all P parameters; MTT divides both by P, which cancels)."""
    return ((theta_n - theta_target) ** 2).sum() / ((theta0 - theta_target) ** 2).sum()


def unrolled_gradient(*, forward: Callable, theta0: torch.Tensor, theta_target: torch.Tensor, images: torch.Tensor,
                      alpha: torch.Tensor, targets_of: Targets, plan: list[InnerStep], augment: Any = None,
                      fyi: bool = False) -> float:
    """Exact gradient through the N unrolled steps; accumulates into the leaves' ``.grad``; returns L."""
    theta = theta0.detach().clone().requires_grad_(True)
    start = theta
    for step in plan:
        x, y = _batch(images, targets_of, step, augment, fyi)
        loss = classification_loss(forward(theta, x), y)
        (g,) = torch.autograd.grad(loss, theta, create_graph=True)
        theta = theta - alpha * g
    loss = matching_loss_value(theta, start.detach(), theta_target)
    loss.backward()
    return float(loss.detach())


def tesla_gradient(*, forward: Callable, theta0: torch.Tensor, theta_target: torch.Tensor, images: torch.Tensor,
                   alpha: torch.Tensor, targets_of: Targets, plan: list[InnerStep], augment: Any = None,
                   fyi: bool = False) -> float:
    """TESLA's two-pass constant-memory gradient; accumulates into the leaves' ``.grad``; returns L."""
    lr = alpha.detach()
    theta = theta0.detach()
    stored: list[torch.Tensor] = []  # theta_0 .. theta_{N-1}: (N, P) in all
    grad_sum = torch.zeros_like(theta)
    for step in plan:  # pass 1: no graph to X, Y or alpha
        th = theta.clone().requires_grad_(True)
        with torch.no_grad():
            x, y = _batch(images.detach(), lambda i: targets_of(i).detach(), step, augment, fyi)
        (g,) = torch.autograd.grad(classification_loss(forward(th, x), y), th)
        stored.append(theta)
        grad_sum += g
        theta = theta - lr * g
    denom = ((theta0 - theta_target) ** 2).sum()
    loss = ((theta - theta_target) ** 2).sum() / denom
    v = 2.0 * (theta - theta_target) / denom  # dL/dtheta_N, (P,)
    for th_i, step in zip(stored, plan, strict=True):  # pass 2: one double-backward graph at a time
        th = th_i.clone().requires_grad_(True)
        x, y = _batch(images, targets_of, step, augment, fyi)
        (g,) = torch.autograd.grad(classification_loss(forward(th, x), y), th, create_graph=True)
        (-(lr * (g * v).sum())).backward(inputs=[t for t in _leaves(images, targets_of) if t.requires_grad])
    alpha_grad = -(v * grad_sum).sum()
    alpha.grad = alpha_grad.reshape(alpha.shape) if alpha.grad is None else alpha.grad + alpha_grad
    return float(loss)


def recompute_gradient(*, forward: Callable, theta0: torch.Tensor, theta_target: torch.Tensor,
                       images: torch.Tensor, alpha: torch.Tensor, targets_of: Targets, plan: list[InnerStep],
                       augment: Any = None, fyi: bool = False) -> float:
    """Exact gradient by a reverse sweep over stored student parameters; accumulates into ``.grad``; returns L."""
    lr = alpha.detach()
    theta = theta0.detach()
    stored: list[torch.Tensor] = []  # theta_0 .. theta_{N-1}: (N, P) in all
    for step in plan:  # pass 1: the student trajectory, no graph
        th = theta.clone().requires_grad_(True)
        with torch.no_grad():
            x, y = _batch(images.detach(), lambda i: targets_of(i).detach(), step, augment, fyi)
        (g,) = torch.autograd.grad(classification_loss(forward(th, x), y), th)
        stored.append(theta)
        theta = theta - lr * g
    denom = ((theta0 - theta_target) ** 2).sum()
    loss = ((theta - theta_target) ** 2).sum() / denom
    adjoint = 2.0 * (theta - theta_target) / denom  # dL/dtheta_N, (P,)
    leaves = [t for t in _leaves(images, targets_of) if t.requires_grad]
    alpha_grad = torch.zeros((), device=theta.device, dtype=theta.dtype)
    # the reverse sweep, one step's graph at a time
    for th_i, step in zip(reversed(stored), reversed(plan), strict=True):
        th = th_i.clone().requires_grad_(True)
        x, y = _batch(images, targets_of, step, augment, fyi)
        (g,) = torch.autograd.grad(classification_loss(forward(th, x), y), th, create_graph=True)
        alpha_grad -= (g.detach() * adjoint).sum()
        grads = torch.autograd.grad((g * adjoint).sum(), [th, *leaves], allow_unused=True)
        for leaf, grad in zip(leaves, grads[1:], strict=True):
            if grad is not None:
                leaf.grad = -lr * grad if leaf.grad is None else leaf.grad - lr * grad
        adjoint = adjoint - lr * grads[0]  # lambda_i = lambda_{i+1} - alpha H_i lambda_{i+1}
    alpha.grad = alpha_grad.reshape(alpha.shape) if alpha.grad is None else alpha.grad + alpha_grad
    return float(loss)


def _leaves(images: torch.Tensor, targets_of: Targets) -> list[torch.Tensor]:
    """The learnable leaves pass 2 may reach: the images, and learned label logits when targets carry them."""
    leaves = [images]
    label_leaf = getattr(targets_of, "leaf", None)
    if label_leaf is not None:
        leaves.append(label_leaf)
    return leaves


def matching_gradient(mode: str, **kwargs: Any) -> float:
    if mode not in GRAD_MODES:  # auto is resolved before a run (TrajectoryMatching.resolve_options)
        raise UserError(f"Unknown grad_mode '{mode}'; available: {', '.join(GRAD_MODES)}")
    return {"unrolled": unrolled_gradient, "tesla": tesla_gradient, "recompute": recompute_gradient}[mode](**kwargs)
