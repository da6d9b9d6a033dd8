"""The projector P(x) = head(normalise(backbone_{W + BA}(x))): what HeLlO stores instead of soft labels.

The backbone is frozen and shared (an evaluation asset, counted apart); the set stores the low-rank adapters
(``A``, ``B`` per adapted layer) and the linear head (``weight`` (K, D), ``bias`` (K,)), in ``storage_dtype``.
Before any fitting the adapters are the identity (``B = 0``), so P is the frozen backbone plus the head.

The head starts from class prototypes (zero stored bytes for the start: the consumer can recompute it) scaled by
``scale``: ``W[c] = scale * normalise(mean_i normalise(f(x_i)))`` over the set's images of class c, or from the
normalised class-text embeddings of an open_clip model's text tower (the paper's initialisation). The fitted head
is stored: it is part of the label bytes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.projector.backbone import Backbone
from dd_bench.projector.lora import adapter_parameters, add_lora

PREFIX = "projector."  # extras under this prefix are the projector's tensors: label bytes of label_source=projector


class Projector(nn.Module):
    def __init__(self, backbone: Backbone, *, num_classes: int, rank: int, alpha: float, generator: torch.Generator,
                 targets: list[str] | None = None) -> None:
        super().__init__()
        self.backbone = backbone.module
        self.layers = add_lora(self.backbone.net, rank=rank, alpha=alpha, generator=generator, targets=targets,
                               exclude=backbone.exclude)
        device = next(self.backbone.parameters()).device
        self.head = nn.Linear(backbone.feature_dim, num_classes).to(device)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D) unit-norm features."""
        return F.normalize(self.backbone(x), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, K) logits

    def train(self, mode: bool = True) -> Projector:
        # The frozen backbone stays in eval mode (its BN statistics are the backbone's, not the batch's).
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable(self) -> dict[str, nn.Parameter]:
        """What is fitted and stored: the adapters and the head, by name."""
        return {**{f"adapters.{n}": p for n, p in adapter_parameters(self.backbone.net).items()},
                "head.weight": self.head.weight, "head.bias": self.head.bias}

    @torch.no_grad()
    def init_head(self, *, images: torch.Tensor, labels: torch.Tensor, scale: float,
                  text: torch.Tensor | None = None, batch_size: int = 256) -> None:
        """Prototype (or text) initialisation of the head; ``images`` (N, C, H, W) model space, ``labels`` (N,)."""
        k = self.head.out_features
        if text is not None:
            protos = text.to(self.head.weight.device)
        else:
            feats = torch.cat([self.features(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
            protos = torch.zeros(k, feats.shape[1], device=feats.device).index_add_(0, labels, feats)
        self.head.weight.copy_(scale * F.normalize(protos, dim=-1))
        self.head.bias.zero_()

    def stored_tensors(self, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """The set's extras for this projector: ``projector.<name>`` -> detached tensors in ``dtype``."""
        return {PREFIX + n: p.detach().to(dtype).cpu() for n, p in self.trainable().items()}

    @torch.no_grad()
    def load_stored(self, extras: dict[str, torch.Tensor]) -> None:
        """Set the adapters and head from a set's extras (cast to float32); every tensor must be there."""
        from dd_bench.synset import SynsetError

        for name, p in self.trainable().items():
            t = extras.get(PREFIX + name)
            if t is None or tuple(t.shape) != tuple(p.shape):
                raise SynsetError(f"the set's projector tensor '{PREFIX + name}' is "
                                  f"{'missing' if t is None else tuple(t.shape)}; {tuple(p.shape)} was expected "
                                  "(another backbone, rank or adapted layers)")
            p.copy_(t.to(p.device, p.dtype))


def projector_bytes(extras: dict[str, torch.Tensor]) -> dict[str, int]:
    """Label bytes of a set's projector by part: ``projector.adapters`` and ``projector.head``."""
    out = {"projector.adapters": 0, "projector.head": 0}
    for name, t in extras.items():
        if name.startswith(PREFIX):
            part = "projector.head" if name.startswith(PREFIX + "head.") else "projector.adapters"
            out[part] += t.numel() * t.element_size()
    return out


def lora_parameter_count(shapes: list[tuple[str, tuple[int, ...]]], rank: int) -> int:
    """Adapter parameters for layers given as ("linear", (out, in)) or ("conv", (out, in, k, k)): r*(in+out) for a
    Linear, r*k*(in*k + out*k) = r*k^2*(in+out) for a k x k Conv2d (loralib's factorisation)."""
    total = 0
    for kind, shape in shapes:
        if kind == "linear":
            total += rank * (shape[0] + shape[1])
        else:
            out_c, in_c, k = shape[0], shape[1], shape[2]
            total += rank * k * k * (in_c + out_c)
    return total


def build_projector(section: dict[str, Any], *, real: Any, extras: dict[str, torch.Tensor],
                    cache_dir: Any = None, progress: bool = True) -> tuple[Projector, Backbone]:
    """The projector a set's ``labels.projector`` section describes, with its stored tensors, frozen, in eval."""
    from dd_bench.projector.backbone import load_backbone
    from dd_bench.seeding import make_generator

    backbone = load_backbone(real, section["backbone"], cache_dir=cache_dir, progress=progress,
                             expect=section["backbone_identity"])
    projector = Projector(backbone, num_classes=real.num_classes, rank=int(section["rank"]),
                          alpha=float(section["alpha"]), targets=section.get("targets"),
                          generator=make_generator(0, "projector", "rebuild"))
    if projector.layers != list(section["layers"]):
        from dd_bench.synset import SynsetError

        raise SynsetError(f"the set's projector adapts {len(section['layers'])} layers; this backbone offers "
                          f"{len(projector.layers)}: another architecture")
    projector.load_stored(extras)
    projector.eval()
    for p in projector.parameters():
        p.requires_grad_(False)
    return projector, backbone
