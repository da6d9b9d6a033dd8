"""What callers may do with any model, native or timm: batch seeds with vmap, and read penultimate features."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase


def supports_vmap(model: nn.Module) -> bool:
    """True when ``torch.func.vmap`` over stacked parameter sets can train ``model`` (several seeds at once).

    Norm layers that track running statistics (BatchNorm, or InstanceNorm with ``track_running_stats``) update
    their buffers in place during training, which ``functional_call`` under ``vmap`` cannot do per model.
    GroupNorm (our "instance" norm) keeps no buffers, so instance-norm and norm-free models qualify.
    Modules with dropout also need ``vmap(..., randomness="different")``.
    """
    return not any(isinstance(m, _NormBase) and m.track_running_stats for m in model.modules())


def embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate features ``(B, D)``: the input of the classifier head (used by herding / k-center)."""
    if hasattr(model, "embed"):
        return model.embed(x)
    if hasattr(model, "forward_head"):
        # timm: pooled (and pre-logits-projected, where the model has one) features, without the final Linear.
        return model.forward_head(model.forward_features(x), pre_logits=True)
    raise TypeError(f"{type(model).__name__} has neither embed() nor timm's forward_head(); cannot embed")


def feature_dim(model: nn.Module) -> int:
    """``D`` of :func:`embed`: the classifier's input width."""
    if hasattr(model, "embed"):
        return int(model.classifier.in_features)
    if hasattr(model, "forward_head"):
        # timm >= 1.0: head_hidden_size is the pre-logits width when it differs from num_features.
        return int(getattr(model, "head_hidden_size", None) or model.num_features)
    raise TypeError(f"{type(model).__name__} has neither embed() nor timm's forward_head(); no feature_dim")
