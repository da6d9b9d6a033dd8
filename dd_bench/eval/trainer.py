"""Moved: the `mtt` recipe's training function is :func:`dd_bench.eval.mtt.train_networks`. This module keeps the old
import path working (``from dd_bench.eval.trainer import train_networks``)."""

from dd_bench.eval.mtt import protocol_optimizer, protocol_schedule, train_networks
from dd_bench.train import TrainedNetworks, classification_loss
from dd_bench.train.loop import Transform, auto_batched

__all__ = ["TrainedNetworks", "Transform", "auto_batched", "classification_loss", "protocol_optimizer",
           "protocol_schedule", "train_networks"]
