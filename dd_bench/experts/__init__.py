"""Expert trajectories for trajectory matching: flat-parameter networks, SGD/GSAM expert training, a cache
keyed by recipe and data, and import/export of the official ``replay_buffer_{n}.pt`` files.

>>> from dd_bench.data import load_dataset
>>> real = load_dataset("digits", progress=False)
>>> recipe = ExpertRecipe(model_kwargs={"width": 8}, epochs=1, optimizer="gsam")
>>> import tempfile
>>> experts = get_experts(real, recipe, num_experts=2, cache_dir=tempfile.mkdtemp(), progress=False)
>>> experts.params.shape   # (experts, epochs + 1, parameters)
torch.Size([2, 2, 1386])
"""

from dd_bench.experts.flat_model import FlatModel
from dd_bench.experts.gsam import GSAM_EPS, gradient, gsam_direction, gsam_step, sgd_update
from dd_bench.experts.recipe import (
    AUGMENTS,
    EXPERTS_CODE_VERSION,
    OPTIMIZERS,
    ExpertRecipe,
    make_expert_augment,
    template_kwargs,
)
from dd_bench.experts.replay_buffer import ReplayBufferError, export_replay_buffers, import_replay_buffers
from dd_bench.experts.store import ExpertCacheError, ExpertTrajectories, expert_cache_dir, get_experts
from dd_bench.experts.trainer import (
    ExpertState,
    auto_batched_experts,
    expert_flat_model,
    init_expert_state,
    train_expert_epochs,
)

__all__ = [
    "AUGMENTS",
    "EXPERTS_CODE_VERSION",
    "GSAM_EPS",
    "OPTIMIZERS",
    "ExpertCacheError",
    "ExpertRecipe",
    "ExpertState",
    "ExpertTrajectories",
    "FlatModel",
    "ReplayBufferError",
    "auto_batched_experts",
    "expert_cache_dir",
    "expert_flat_model",
    "export_replay_buffers",
    "get_experts",
    "gradient",
    "gsam_direction",
    "gsam_step",
    "import_replay_buffers",
    "init_expert_state",
    "make_expert_augment",
    "sgd_update",
    "template_kwargs",
    "train_expert_epochs",
]
