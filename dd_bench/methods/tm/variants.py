"""The registered trajectory-matching methods: one core (trajectory_matching.py), different defaults.

Defaults are each paper's code defaults (argparse / cfg.py); per-setting values come from presets
(conf/preset/<method>/<dataset>.yaml) and paper experiments (conf/experiment/).
"""

from __future__ import annotations

import dataclasses

from dd_bench.experts.recipe import ExpertOptimizer
from dd_bench.methods.base import METHODS
from dd_bench.methods.tm.gradient import GradMode
from dd_bench.methods.tm.trajectory_matching import Init, Labels, TrajectoryMatching


@METHODS.register("mtt")
class MTT(TrajectoryMatching):
    """Cazenavette et al., CVPR 2022: SGD experts, hard labels, exact unrolled gradient."""

    name = "mtt"


@dataclasses.dataclass
class _GSAMExpertsConfig(TrajectoryMatching.Config):
    """FTD's and DATM's experts: GSAM (rho 0.01 as in both buffer commands; alpha 0.3, DATM's value for all)."""

    expert_optimizer: ExpertOptimizer = ExpertOptimizer.gsam
    expert_rho: float = 0.01
    expert_alpha: float = 0.3


@METHODS.register("ftd")
class FTD(TrajectoryMatching):
    """Du et al., CVPR 2023: MTT + GSAM ("flat") experts + an EMA of the images (what the set stores)."""

    name = "ftd"

    @dataclasses.dataclass
    class Config(_GSAMExpertsConfig):
        ema_decay: float = 0.999


@METHODS.register("datm")
class DATM(TrajectoryMatching):
    """Guo et al., ICLR 2024: GSAM experts, correctly-classified init, learned soft labels, a difficulty window
    growing with sequential generation, and updates skipped when the loss exceeds a threshold."""

    name = "datm"

    @dataclasses.dataclass
    class Config(_GSAMExpertsConfig):
        iterations: int = 10000
        init: Init = Init.correct
        labels: Labels = Labels.learned
        lr_label: float = 10.0
        label_momentum: float = 0.9
        sequential_generation: bool = True
        update_threshold: float | None = 1.0
        expert_train_epochs: int = 100


@METHODS.register("tesla")
class TESLA(TrajectoryMatching):
    """Cui et al., ICML 2023: MTT with the constant-memory (first-order, approximate) matching gradient."""

    name = "tesla"

    @dataclasses.dataclass
    class Config(TrajectoryMatching.Config):
        iterations: int = 10000
        grad_mode: GradMode = GradMode.tesla
