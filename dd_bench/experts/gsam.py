"""GSAM (Zhuang et al., ICLR 2022) and its base SGD as pure functions of flat parameter vectors.

FTD's "flat" experts (Du et al., CVPR 2023; AngusDujw/FTD-distillation ``buffer/gsam/gsam.py``) replace MTT's
plain SGD step by, for every DSA-augmented real batch::

    g   = grad L(w)
    e   = rho * w**2 * g / (|| |w| * g || + eps)                 (adaptive; non-adaptive: rho * g / (||g|| + eps))
    g'  = grad L(w + e)                                          (the SAME augmented batch: one closure, two calls)
    cos = <g, g'> / (||g'|| * ||g|| + eps)
    g_perp = g - cos * ||g|| * g' / (||g'|| + eps)               (the component of g orthogonal to g')
    d   = g' - alpha * g_perp
    w  <- SGD(w, d; lr, momentum, weight_decay)                  (torch.optim.SGD's rule; wd acts on d, at w)

Details taken from the official file, kept here: ``eps = 1e-12`` is added to the norms exactly where shown
(``perturb_eps``); the adaptive perturbation multiplies by ``w**2`` (not ``|w|``) after scaling by the adaptive
norm ``|| |w| * g ||``; the norms in the projection are plain (non-adaptive) norms; rho is constant (FTD's
``ProportionScheduler`` with ``min == max``). Differences that only change rounding: the official code computes
a norm as the norm of the per-layer norms (we take one norm of the flat vector), and it restores ``w`` as
``(w + e) - e`` (we never modify ``w``, so it is exactly ``w``).

Stacked experts: ``w`` may be ``(E, P)``; every norm and inner product is then per row, so each row takes
exactly its own GSAM step. The closure must return the SUM over experts of each expert's mean loss, so that
row e of the gradient is expert e's own gradient.

>>> target = torch.tensor([1.0, -2.0, 3.0])
>>> loss_fn = lambda w: 0.5 * ((w - target) ** 2).sum()
>>> w = torch.zeros(3)
>>> d, loss = gsam_direction(w, loss_fn, rho=0.05, alpha=0.3, adaptive=False)
>>> w, _ = sgd_update(w, d, lr=0.1)
>>> float(loss), torch.allclose(w, 0.1 * target * (1 + 0.05 / target.norm()))  # g' is parallel to g: g_perp = 0
(7.0, True)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["GSAM", "GSAM_EPS", "LossClosure", "gradient", "gsam_direction", "gsam_step", "sgd_update"]

# FTD's GSAM(perturb_eps=1e-12): keeps the divisions finite when a gradient vanishes.
GSAM_EPS = 1e-12

LossClosure = Callable[[torch.Tensor], torch.Tensor]  # w (P,) or (E, P) -> scalar loss


def _norm(v: torch.Tensor) -> torch.Tensor:
    """L2 norm over the last dim, kept as (..., 1) so it broadcasts against (P,) or (E, P)."""
    return torch.linalg.vector_norm(v, dim=-1, keepdim=True)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=-1, keepdim=True)


def gradient(w: torch.Tensor, loss_fn: LossClosure) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad of ``loss_fn`` at ``w`` with the shape of ``w``, the detached loss). ``w`` itself is not modified."""
    with torch.enable_grad():
        leaf = w.detach().requires_grad_(True)
        loss = loss_fn(leaf)
        (grad,) = torch.autograd.grad(loss, leaf)
    return grad, loss.detach()


def gsam_direction(
    w: torch.Tensor,
    loss_fn: LossClosure,
    *,
    rho: float,
    alpha: float,
    adaptive: bool = True,
    eps: float = GSAM_EPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The GSAM update direction ``d = g' - alpha * g_perp`` at ``w`` (P,) or (E, P), and the loss at ``w``.

    ``loss_fn`` is called twice (at ``w`` and at ``w + e``) and must evaluate the same batch both times.
    The returned loss is the one at ``w`` (what FTD's ``GSAM.step`` reports).
    """
    g, loss = gradient(w, loss_fn)
    w = w.detach()
    g_adv, _ = gradient(w + _perturbation(w, g, rho=rho, adaptive=adaptive, eps=eps), loss_fn)
    return _combine(g, g_adv, alpha=alpha, eps=eps), loss


def _perturbation(w: torch.Tensor, g: torch.Tensor, *, rho: float, adaptive: bool, eps: float) -> torch.Tensor:
    """e: the ascent step from ``w`` along the gradient ``g`` (both (P,) or (E, P))."""
    if adaptive:
        return g * (rho / (_norm(w.abs() * g) + eps)) * w.pow(2)
    return g * (rho / (_norm(g) + eps))


def _combine(g: torch.Tensor, g_adv: torch.Tensor, *, alpha: float, eps: float) -> torch.Tensor:
    """d = g' - alpha * g_perp, from the gradients at w (g) and at w + e (g')."""
    g_norm, g_adv_norm = _norm(g), _norm(g_adv)
    cosine = _dot(g, g_adv) / (g_adv_norm * g_norm + eps)
    g_perp = g - cosine * g_norm * g_adv / (g_adv_norm + eps)
    return g_adv - alpha * g_perp


def sgd_update(
    w: torch.Tensor,
    d: torch.Tensor,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffer: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of ``torch.optim.SGD`` (dampening 0, no Nesterov) on direction ``d``: (new w, new buffer).

    Matches PyTorch's rule element-wise: ``d += wd * w``; with momentum, ``buf = d`` on the first step and
    ``buf = momentum * buf + d`` afterwards, then ``d = buf``; ``w -= lr * d``. The buffer is None without momentum.
    """
    w = w.detach()
    if weight_decay != 0.0:
        d = d.add(w, alpha=weight_decay)
    if momentum != 0.0:
        momentum_buffer = d.clone() if momentum_buffer is None else momentum_buffer.mul(momentum).add_(d)
        d = momentum_buffer
    return w.add(d, alpha=-lr), momentum_buffer


def gsam_step(
    w: torch.Tensor,
    loss_fn: LossClosure,
    *,
    lr: float,
    rho: float,
    alpha: float,
    adaptive: bool = True,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    momentum_buffer: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A full GSAM step with SGD as the base optimizer: (new w, new momentum buffer, loss at the old w)."""
    d, loss = gsam_direction(w, loss_fn, rho=rho, alpha=alpha, adaptive=adaptive)
    w_new, buf = sgd_update(w, d, lr=lr, momentum=momentum, weight_decay=weight_decay,
                            momentum_buffer=momentum_buffer)
    return w_new, buf, loss


class GSAM(torch.optim.Optimizer):
    """GSAM with SGD as its base, as a ``torch.optim.Optimizer`` over ONE flat parameter ``(P,)`` or ``(E, P)``.

    What the shared training loop (dd_bench/train/loop.py) drives: ``step(closure)`` calls the closure (zero the
    gradient, forward, backward, return the loss) at ``w`` and again at ``w + e``, restores ``w`` exactly, and takes
    the SGD step along :func:`gsam_direction`'s ``d``; the same arithmetic as :func:`gsam_step`, so a trajectory
    does not depend on which of the two drove it. Returns the loss at ``w``. The momentum buffer lives in
    ``state[theta]["momentum_buffer"]`` as torch.optim.SGD keeps it.
    """

    def __init__(self, params: list[torch.Tensor], *, lr: float, rho: float, alpha: float, adaptive: bool = True,
                 momentum: float = 0.0, weight_decay: float = 0.0, eps: float = GSAM_EPS) -> None:
        params = list(params)
        if len(params) != 1 or params[0].dim() not in (1, 2):
            raise ValueError(f"GSAM takes one flat parameter (P,) or (E, P); got {[tuple(p.shape) for p in params]}")
        super().__init__(params, dict(lr=lr, rho=rho, alpha=alpha, adaptive=adaptive, momentum=momentum,
                                      weight_decay=weight_decay, eps=eps))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("GSAM needs a closure: it evaluates the same batch at w and at w + e")
        group = self.param_groups[0]
        (theta,) = group["params"]
        with torch.enable_grad():
            loss = closure()
        g = theta.grad.detach().clone()
        w = theta.detach().clone()
        theta.add_(_perturbation(w, g, rho=group["rho"], adaptive=group["adaptive"], eps=group["eps"]))
        with torch.enable_grad():
            closure()
        d = _combine(g, theta.grad.detach(), alpha=group["alpha"], eps=group["eps"])
        state = self.state[theta]
        new_w, buf = sgd_update(w, d, lr=group["lr"], momentum=group["momentum"],
                                weight_decay=group["weight_decay"], momentum_buffer=state.get("momentum_buffer"))
        theta.copy_(new_w)
        if buf is not None:
            state["momentum_buffer"] = buf
        return loss.detach()
