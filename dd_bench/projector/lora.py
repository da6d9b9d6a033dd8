"""Low-rank adapters (LoRA, Hu et al. 2021) on a frozen module's Linear and Conv2d layers, through ``loralib``.

``add_lora(module, rank=, alpha=, generator=)`` swaps every adaptable layer for its loralib counterpart holding
the same frozen weight plus ``A`` (r x in) and ``B`` (out x r) with ``W' = W + (alpha / r) B A``. ``B`` starts at
zero, so the adapted module computes exactly what the frozen one did until it is trained; ``A`` is drawn from the
caller's generator (loralib would draw it, and the swapped layer's throw-away init, from the global RNG, which this
suite never touches: those draws run under a forked RNG).

Why loralib and not peft: both adapt Linear and Conv2d; peft imports transformers (measured 6.5 s per process on
this 2-core machine, a third of the demo's budget for HeLlO) while loralib is one pure-torch file. Layers skipped:
grouped convolutions (loralib's conv factorisation assumes groups = 1), non-square kernels, and Linear layers
owned by ``nn.MultiheadAttention`` (it reads their weight directly, so an adapter there would never run).
"""

from __future__ import annotations

import fnmatch
import math

import torch
from torch import nn


def _lora_layers():
    import loralib

    return loralib


def adaptable_layers(module: nn.Module, targets: list[str] | None = None,
                     exclude: tuple[str, ...] = ()) -> list[str]:
    """Qualified names of the Linear / Conv2d layers ``add_lora`` adapts (``targets``: fnmatch patterns, or all;
    ``exclude``: layers left alone, e.g. a classifier the features never pass through)."""
    owned_by_mha = {f"{name}.{child}" if name else child for name, m in module.named_modules()
                    if isinstance(m, nn.MultiheadAttention) for child, _ in m.named_children()}
    names = []
    for name, m in module.named_modules():
        if name in owned_by_mha or name in exclude or (targets and not any(fnmatch.fnmatch(name, p) for p in targets)):
            continue
        if type(m) is nn.Linear:
            names.append(name)
        elif type(m) is nn.Conv2d and m.groups == 1 and m.kernel_size[0] == m.kernel_size[1]:
            names.append(name)
    return names


def _swap(old: nn.Module, rank: int, alpha: float) -> nn.Module:
    lora = _lora_layers()
    if isinstance(old, nn.Linear):
        new = lora.Linear(old.in_features, old.out_features, r=rank, lora_alpha=alpha, merge_weights=False,
                          bias=old.bias is not None)
        new.weight.data.copy_(old.weight.data)
        if old.bias is not None:
            new.bias.data.copy_(old.bias.data)
        return new
    new = lora.Conv2d(old.in_channels, old.out_channels, old.kernel_size[0], r=rank, lora_alpha=alpha,
                      merge_weights=False, stride=old.stride, padding=old.padding, dilation=old.dilation,
                      bias=old.bias is not None, padding_mode=old.padding_mode)
    new.conv.weight.data.copy_(old.weight.data)
    if old.bias is not None:
        new.conv.bias.data.copy_(old.bias.data)
    return new


def add_lora(module: nn.Module, *, rank: int, alpha: float, generator: torch.Generator,
             targets: list[str] | None = None, exclude: tuple[str, ...] = ()) -> list[str]:
    """Adapt ``module`` in place; returns the adapted layers' names. Every original parameter is frozen."""
    if rank < 1:
        raise ValueError(f"LoRA rank must be >= 1; got {rank}")
    names = adaptable_layers(module, targets, exclude)
    for p in module.parameters():
        p.requires_grad_(False)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        old = getattr(parent, child)
        with torch.random.fork_rng(devices=devices):
            new = _swap(old, rank, alpha)
        new = new.to(device=next(old.parameters()).device, dtype=next(old.parameters()).dtype)
        new.train(old.training)
        a = new.lora_A
        # loralib's init of A: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from our generator.
        bound = 1.0 / math.sqrt(a.shape[1])
        noise = torch.rand(a.shape, generator=generator, device=generator.device, dtype=torch.float32)
        a.data.copy_(((noise * 2 - 1) * bound).to(a.device, a.dtype))
        for pname, p in new.named_parameters():
            p.requires_grad_(pname.endswith(("lora_A", "lora_B")))
        setattr(parent, child, new)
    return names


def adapter_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The adapters' tensors by qualified name (``...lora_A`` / ``...lora_B``): what a set stores."""
    return {n: p for n, p in module.named_parameters() if n.endswith(("lora_A", "lora_B"))}
