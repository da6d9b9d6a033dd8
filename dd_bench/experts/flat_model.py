"""FlatModel: a network as a pure function of one flat parameter vector, ``logits = f(theta, x)``.

Experts are stored, and students are unrolled, as flat float32 vectors ``theta`` of length P: the
concatenation of ``module.parameters()`` in ``named_parameters()`` order, each tensor flattened row-major. This
is the layout of the official replay buffers once MTT's ``distill.py`` concatenates a snapshot's per-layer
tensors, and of MTT's ``ReparamModule.flat_param``, so imported buffers and our experts index the same way.

``forward`` runs ``torch.func.functional_call`` on a structure-only copy of the template (meta device), with the
parameters replaced by views into ``theta``. It is differentiable w.r.t. ``theta`` and ``x`` and supports double
backward (``create_graph=True``), which unrolled trajectory matching needs: the student's SGD steps are part of
the graph from the synthetic images to the matching loss. ``forward_batched`` is the same under ``vmap``.

>>> from dd_bench.models import create_model
>>> net = create_model("convnet", num_classes=10, in_channels=1, image_size=(8, 8), width=4, depth=2)
>>> flat = FlatModel(net)
>>> theta = flat.flatten(net)                      # (P,) float32
>>> theta.shape, flat.num_params
(torch.Size([374]), 374)
>>> x = torch.randn(5, 1, 8, 8)
>>> torch.allclose(flat.forward(theta, x), net(x), atol=1e-6)
True
>>> flat.forward_batched(torch.stack([theta, theta]), torch.stack([x, x])).shape   # (E, B, K)
torch.Size([2, 5, 10])
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

__all__ = ["FlatModel"]


class FlatModel:
    """The functional flat-parameter view of ``template`` (its values are not used, only its structure).

    Raises ValueError for models whose norm layers track running statistics (BatchNorm): those update buffers
    in place on every training forward, which a pure function of ``theta`` cannot express.
    """

    def __init__(self, template: nn.Module) -> None:
        stats = [name for name, m in template.named_modules() if isinstance(m, _NormBase) and m.track_running_stats]
        if stats:
            raise ValueError(
                f"trajectory matching needs a model without BatchNorm running statistics; use convnet (instance "
                f"norm). {type(template).__name__} tracks running stats in: {', '.join(stats[:5])}"
            )
        named = list(template.named_parameters())  # de-duplicates tied parameters, as parameters() does
        if not named:
            raise ValueError(f"{type(template).__name__} has no parameters")
        self.names: tuple[str, ...] = tuple(n for n, _ in named)
        self.shapes: tuple[torch.Size, ...] = tuple(p.shape for _, p in named)
        self.numels: tuple[int, ...] = tuple(math.prod(s) for s in self.shapes)
        self.num_params = sum(self.numels)
        # Non-statistics buffers (rare: constant masks, position tables) are inputs too; keep real copies.
        self.buffers: dict[str, torch.Tensor] = {n: b.detach().clone() for n, b in template.named_buffers()}
        self._meta = copy.deepcopy(template).to("meta")
        # Train mode: experts and students train. Our models behave the same in eval mode (no BatchNorm, no
        # dropout); a timm model with dropout would draw its masks from the global RNG here.
        self._meta.train()
        self._batched = torch.func.vmap(self.forward, in_dims=(0, 0), randomness="different")

    def __repr__(self) -> str:
        return f"FlatModel({type(self._meta).__name__}, num_params={self.num_params})"

    @property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name -> shape, in flat order (what replay-buffer import/export validates against)."""
        return {n: tuple(s) for n, s in zip(self.names, self.shapes, strict=True)}

    def to(self, device: torch.device | str) -> FlatModel:
        """Move the (non-parameter) buffers to ``device``; returns self. Parameters live in ``theta``."""
        self.buffers = {n: b.to(device) for n, b in self.buffers.items()}
        return self

    def flatten(self, module: nn.Module) -> torch.Tensor:
        """``module``'s parameters as one detached ``(P,)`` float32 vector, in ``named_parameters()`` order."""
        named = list(module.named_parameters())
        if tuple(n for n, _ in named) != self.names or tuple(p.shape for _, p in named) != self.shapes:
            raise ValueError(f"{type(module).__name__}'s parameters do not match this FlatModel's "
                             f"({len(named)} tensors vs {len(self.names)})")
        return torch.cat([p.detach().reshape(-1).float() for _, p in named])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(P,)`` -> name -> view of ``theta`` with the parameter's shape (no copy; gradients flow)."""
        if theta.shape[-1] != self.num_params:
            raise ValueError(f"theta has {theta.shape[-1]} entries; this model has {self.num_params} parameters")
        views = torch.split(theta, self.numels, dim=-1)
        return {n: v.view(*theta.shape[:-1], *s) for n, v, s in zip(self.names, views, self.shapes, strict=True)}

    def load_into(self, module: nn.Module, theta: torch.Tensor) -> nn.Module:
        """Copy ``theta`` into ``module``'s parameters in place (e.g. to evaluate an expert as a plain module)."""
        with torch.no_grad():
            views = self.unflatten(theta.detach()).values()
            for p, v in zip(module.parameters(), views, strict=True):
                p.copy_(v)
        return module

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``theta`` (P,), ``x`` (B, C, H, W) -> logits (B, K). Differentiable w.r.t. both, twice."""
        return torch.func.functional_call(self._meta, (self.unflatten(theta), self.buffers), (x,))

    def forward_batched(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """E networks at once: ``thetas`` (E, P), ``x`` (E, B, C, H, W) -> logits (E, B, K), via ``vmap``."""
        if thetas.dim() != 2 or x.dim() < 2 or x.shape[0] != thetas.shape[0]:
            raise ValueError(f"forward_batched needs thetas (E, P) and x (E, B, ...); got {tuple(thetas.shape)} "
                             f"and {tuple(x.shape)}")
        return self._batched(thetas, x)

    __call__ = forward
