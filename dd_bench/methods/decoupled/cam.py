"""Class-activation maps of a teacher for NRR-DD (decoupled-methods.md §4): which pixels carry the class.

NRR-DD names CAM (Zhou et al. 2016: last-conv features weighted by the classifier row of the class). That form
needs global average pooling before a linear head; the suite's teachers include the ConvNet, whose head reads the
flattened map. Grad-CAM weights each channel by the mean gradient of the class logit over the map, which equals CAM
on GAP + linear networks and is defined on every network, so it is used here: ``relu(sum_c alpha_c A_c)`` at the
chosen layer, bilinearly resized to the input and divided by each map's maximum (values in [0, 1]).

The layer is the LAST module (in forward order) whose output is a 4-D map of at least ``min_size`` x ``min_size``
(on 8x8 digits the ConvNet's last block is 1x1 or 2x2: a map that coarse says nothing about where the digit is), or
one named by ``layer`` (a ``named_modules`` name).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.errors import UserError


def cam_layer(net: nn.Module, example: torch.Tensor, *, min_size: int = 4, layer: str | None = None) -> str:
    """The name of the layer the maps are taken from (``example``: one input batch, (B, C, H, W))."""
    names = dict(net.named_modules())
    if layer is not None:
        if layer not in names:
            raise UserError(f"cam layer '{layer}' is not a module of {type(net).__name__}; available: "
                            f"{', '.join(n for n in names if n)}")
        return layer
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = [m.register_forward_hook(lambda m, i, o, n=n: seen.append((n, tuple(o.shape))) if
                                       isinstance(o, torch.Tensor) else None)
               for n, m in names.items() if n and not list(m.children())]
    try:
        with torch.no_grad():
            net(example[:1])
    finally:
        for h in handles:
            h.remove()
    fits = [n for n, shape in seen if len(shape) == 4 and min(shape[2:]) >= min_size]
    if not fits:
        raise UserError(f"{type(net).__name__} has no layer with a map of at least {min_size}x{min_size} on "
                        f"{tuple(example.shape[2:])} inputs; lower cam_min_size or name cam_layer")
    return fits[-1]


def class_activation_maps(net: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, layer: str) -> torch.Tensor:
    """Grad-CAM of ``labels`` at ``layer``: (B, H, W) in [0, 1] (eval mode; parameters untouched)."""
    module = dict(net.named_modules())[layer]
    captured: dict[str, torch.Tensor] = {}

    def keep(m: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        # The next layer gets a copy: an in-place op after ``layer`` (ConvNet's ReLU follows its norm layer) would
        # otherwise overwrite the kept map and move its grad_fn past itself.
        captured["a"] = output
        return output.clone()

    handle = module.register_forward_hook(keep)
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            inp = x.detach().requires_grad_(True)  # a graph must reach the hooked map
            logits = net(inp)
            a = captured["a"]
            grad, = torch.autograd.grad(logits.gather(1, labels.view(-1, 1)).sum(), a)
    finally:
        handle.remove()
        net.train(was_training)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = torch.relu((weights * a.detach()).sum(1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False).squeeze(1)
    return cam / cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
