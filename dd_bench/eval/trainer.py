"""The `mtt` family's training recipe over the shared loop (:mod:`dd_bench.train`): SGD with momentum and weight
decay, the official step decay (x ``decay_factor`` and a fresh SGD after the pass with ``ep == epochs // 2 + 1``),
``epochs + 1`` passes, and hard or stored-probability targets (CE / soft CE)."""

from __future__ import annotations

import torch

from dd_bench.eval.protocol import EvalProtocol
from dd_bench.train import OptimizerSpec, StepDecay, TrainedNetworks, classification_loss
from dd_bench.train import train_networks as train_with_recipe
from dd_bench.train.loop import Transform, auto_batched
from dd_bench.train.targets import label_source_for

__all__ = ["TrainedNetworks", "Transform", "auto_batched", "classification_loss", "protocol_optimizer",
           "protocol_schedule", "train_networks"]


def protocol_optimizer(protocol: EvalProtocol) -> OptimizerSpec:
    return OptimizerSpec("sgd", momentum=protocol.momentum, weight_decay=protocol.weight_decay)


def protocol_schedule(protocol: EvalProtocol) -> StepDecay:
    return StepDecay(decay_epoch=protocol.decay_epoch, factor=protocol.decay_factor)


def train_networks(
    *,
    model: str,
    images: torch.Tensor | list[torch.Tensor],
    targets: torch.Tensor | list[torch.Tensor],
    num_classes: int,
    protocol: EvalProtocol,
    lr: float,
    seeds: list[int],
    augment: object | None,
    transform: Transform | None = None,
    batched: bool | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    desc: str = "",
    model_kwargs: dict | None = None,
    start: TrainedNetworks | None = None,
    stage: int = 0,
) -> TrainedNetworks:
    """Train one fresh ``model`` per seed on ``(images, targets)`` under an `mtt`-family ``protocol``.

    targets: (N,) int64 class indices or (N, K) float probabilities; a list per seed when images is one.
    See :func:`dd_bench.train.train_networks` for the rest.
    """
    labels = ([label_source_for(t) for t in targets] if isinstance(targets, (list, tuple))
              else label_source_for(targets))
    return train_with_recipe(
        model=model, images=images, labels=labels, num_classes=num_classes, passes=protocol.passes,
        batch_size=protocol.batch_size, optimizer=protocol_optimizer(protocol), lr=lr,
        schedule=protocol_schedule(protocol), seeds=seeds, augment=augment, transform=transform, batched=batched,
        max_steps=max_steps, progress=progress, desc=desc, model_kwargs=model_kwargs, start=start, stage=stage)
