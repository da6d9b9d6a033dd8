"""The training layer: one loop (fresh networks per seed, batched over seeds with vmap where possible), optimisers,
lr schedules and losses. Protocols (:mod:`dd_bench.eval`) are recipes over these parts."""

from dd_bench.train.loop import TrainedNetworks, auto_batched, train_networks
from dd_bench.train.losses import LOSS_KINDS, Loss, classification_loss, kd_kl, soft_cross_entropy
from dd_bench.train.optimizers import OPTIMIZER_KINDS, OptimizerSpec
from dd_bench.train.schedules import Cosine, HalfCosine, Schedule, StepDecay, WarmupCosine

__all__ = ["LOSS_KINDS", "OPTIMIZER_KINDS", "Cosine", "HalfCosine", "Loss", "OptimizerSpec", "Schedule", "StepDecay",
           "TrainedNetworks", "WarmupCosine", "auto_batched", "classification_loss", "kd_kl", "soft_cross_entropy",
           "train_networks"]
