"""Expert trajectories in memory (:class:`ExpertTrajectories`) and on disk (:func:`get_experts`'s cache).

Experts are trained once per key (:meth:`ExpertRecipe.key`: recipe + data + model size + code version) and
reused by every later run. Cache layout, never pickled::

    <cache_dir>/experts/<key>/
        meta.json                       recipe, key, model kwargs, parameter shapes, dataset, per-expert provenance
        expert_0000.safetensors         "params": (T+1, P) float32, snapshot t = parameters after t epochs
        expert_0001.safetensors         (metadata: format, key, index, epochs)
        partial/expert_0002/            an expert being trained, checkpointed after every epoch:
            epoch_0000.safetensors ...  "theta": (P,) float32, one file per finished epoch (append-only)
            checkpoint/                 momentum buffer + generator states + epochs_done (methods/checkpoint.py)

Every file is written to a temporary name and renamed, so an interrupted run never leaves a truncated file;
rerunning resumes each partial expert from its last finished epoch, drawing the same random numbers, and ends
with the same trajectories as an uninterrupted run: bitwise on the sequential path; on the batched path up to
vmap's rounding when the interruption left the experts of one group at different epochs (they then resume in
separate groups). A later call with more experts trains only the missing ones.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.experts.flat_model import FlatModel
from dd_bench.experts.recipe import EXPERTS_CODE_VERSION, ExpertRecipe, template_kwargs
from dd_bench.experts.trainer import (
    ExpertState,
    auto_batched_experts,
    expert_flat_model,
    init_expert_state,
    train_expert_epochs,
)
from dd_bench.io import KeyedStore, atomic_save_safetensors, atomic_write_json, load_checkpoint, save_checkpoint
from dd_bench.models import create_model
from dd_bench.seeding import make_generator

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ExpertCacheError", "ExpertTrajectories", "expert_cache_dir",
           "get_experts"]

FORMAT_NAME = "dd-bench-experts"
FORMAT_VERSION = 1
SOURCES = ("trained", "imported")


class ExpertCacheError(UserError):
    """A cached expert file is foreign, of another key or shape, or unreadable."""


@dataclass
class ExpertTrajectories:
    """E expert trajectories of T epochs as one tensor, plus what is needed to rebuild the network."""

    params: torch.Tensor  # (E, T+1, P) float32, CPU; params[e, t] = expert e after t epochs (t = 0: init)
    model: str  # create_model name
    model_kwargs: dict[str, Any]  # create_model kwargs: num_classes, in_channels, image_size (+ e.g. width)
    key: str  # the cache key (trained) or a hash of the imported files
    source: str = "trained"  # trained | imported
    recipe: ExpertRecipe | None = None  # None for imported buffers (their recipe is not recorded)
    extra: dict[str, Any] = field(default_factory=dict)  # provenance: cache dir, imported file names, ...

    def __post_init__(self) -> None:
        if self.params.dim() != 3 or self.params.dtype != torch.float32:
            raise ValueError(f"params must be float32 (E, T+1, P); got {self.params.dtype} "
                             f"{tuple(self.params.shape)}")
        if self.source not in SOURCES:
            raise ValueError(f"Unknown expert source '{self.source}'; available: {', '.join(SOURCES)}")
        self.model_kwargs = {**self.model_kwargs, "image_size": tuple(self.model_kwargs["image_size"])}

    @property
    def num_experts(self) -> int:
        return int(self.params.shape[0])

    @property
    def num_epochs(self) -> int:
        """T: epochs per trajectory (snapshots are epochs 0..T)."""
        return int(self.params.shape[1]) - 1

    @property
    def num_params(self) -> int:
        return int(self.params.shape[2])

    def template(self) -> nn.Module:
        """A CPU instance of the experts' network (fixed-seed values; load a snapshot with FlatModel.load_into)."""
        return create_model(self.model, generator=make_generator(0, "expert", "template"), **self.model_kwargs)

    def flat_model(self) -> FlatModel:
        """The FlatModel that ``params[e, t]`` parameterise (checked against P)."""
        flat = FlatModel(self.template())
        if flat.num_params != self.num_params:
            raise ValueError(f"{self.model} with {self.model_kwargs} has {flat.num_params} parameters; the "
                             f"trajectories have {self.num_params}")
        return flat


def expert_cache_dir(real: RealData, recipe: ExpertRecipe, *, cache_dir: str | Path | None = None) -> Path:
    """Where :func:`get_experts` keeps the experts of ``recipe`` trained on ``real`` (under the cache root)."""
    return KeyedStore("experts", cache_dir).path(recipe.key(real))


def get_experts(
    real: RealData,
    recipe: ExpertRecipe,
    *,
    num_experts: int,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    batched: bool | None = None,
    experts_at_once: int = 10,
) -> ExpertTrajectories:
    """Experts ``0..num_experts-1`` of ``recipe`` on ``real``: loaded from the cache, training the missing ones.

    batched: None trains several experts at once (vmap) on CUDA and one at a time on the CPU; True/False force.
    experts_at_once: how many experts share one batched forward (bounds activation memory: about 2.2 MiB per
    32x32 image for the default ConvNet, times 256 images, per expert).
    """
    if num_experts < 1 or experts_at_once < 1:
        raise UserError(f"num_experts and experts_at_once must be >= 1; got {num_experts}, {experts_at_once}")
    flat = expert_flat_model(real, recipe)  # fails early for BatchNorm models
    store = KeyedStore("experts", cache_dir)
    key = recipe.key(real)
    root = store.path(key)
    missing = [i for i in range(num_experts) if not _expert_path(root, i).is_file()]
    if missing:
        # Two jobs asking for the same experts: the second waits, then trains only what is still missing.
        with store.lock(key):
            missing = [i for i in range(num_experts) if not _expert_path(root, i).is_file()]
            if missing:
                _write_meta(root, real, recipe, flat, key)
                _train_missing(root, missing, real=real, recipe=recipe, flat=flat, key=key, progress=progress,
                               batched=batched, experts_at_once=experts_at_once)
    params = _load_trajectories(root, num_experts, key=key, shape=(recipe.epochs + 1, flat.num_params))
    return ExpertTrajectories(params=params, model=recipe.model, model_kwargs=template_kwargs(real, recipe), key=key,
                              source="trained", recipe=recipe, extra={"cache_dir": str(root)})


def _expert_path(root: Path, index: int) -> Path:
    return root / f"expert_{index:04d}.safetensors"


def _partial_dir(root: Path, index: int) -> Path:
    return root / "partial" / f"expert_{index:04d}"


def _write_meta(root: Path, real: RealData, recipe: ExpertRecipe, flat: FlatModel, key: str) -> None:
    """meta.json describing the cache entry; per-expert provenance is merged in as experts finish."""
    path = root / "meta.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    kwargs = template_kwargs(real, recipe)
    meta = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "code_version": EXPERTS_CODE_VERSION, "key": key,
        "recipe": recipe.to_dict(), "model": recipe.model,
        "model_kwargs": {**kwargs, "image_size": list(real.image_size)},
        "num_params": flat.num_params, "param_shapes": {n: list(s) for n, s in flat.param_shapes.items()},
        "trajectory_shape": [recipe.epochs + 1, flat.num_params], "dtype": "float32",
        "dataset": {"name": real.name, "fingerprint": real.fingerprint(), "num_train": len(real.train_labels),
                    "image_space": real.image_space, "dsa_strategy": real.dsa_strategy},
        "experts": previous.get("experts", {}),
    }
    atomic_write_json(path, meta)


def _record_expert(root: Path, index: int, entry: dict[str, Any]) -> None:
    path = root / "meta.json"
    meta = json.loads(path.read_text())
    meta["experts"][str(index)] = entry
    atomic_write_json(path, meta)


def _save_epoch(root: Path, state: ExpertState, key: str) -> None:
    """Checkpoint a partial expert: its newest snapshot (plus any missing earlier one), then its state."""
    pdir = _partial_dir(root, state.index)
    for t, snap in enumerate(state.snapshots):
        path = pdir / f"epoch_{t:04d}.safetensors"
        # Always (re)write the newest: a stale file from an interrupted attempt may differ on a GPU.
        if t == state.epochs_done or not path.is_file():
            atomic_save_safetensors(path, {"theta": snap}, {"key": key, "epoch": str(t)})
    tensors = {"data_gen": state.data_gen.get_state(), "aug_gen": state.aug_gen.get_state()}
    if state.momentum_buffer is not None:
        tensors["momentum_buffer"] = state.momentum_buffer
    save_checkpoint(pdir, tensors=tensors, state={"key": key, "index": state.index, "epochs_done": state.epochs_done})


def _resume_or_init(root: Path, real: RealData, recipe: ExpertRecipe, index: int, *, flat: FlatModel,
                    key: str) -> ExpertState:
    """The expert's last checkpointed state, or a fresh one when there is none (or it is incomplete)."""
    from safetensors.torch import load_file

    pdir = _partial_dir(root, index)
    found = load_checkpoint(pdir) if pdir.is_dir() else None
    if found is not None:
        tensors, state = found
        paths = [pdir / f"epoch_{t:04d}.safetensors" for t in range(state.get("epochs_done", -1) + 1)]
        if state.get("key") == key and state.get("index") == index and paths and all(p.is_file() for p in paths):
            snapshots = [load_file(str(p))["theta"] for p in paths]  # each (P,) float32
            data_gen, aug_gen = torch.Generator(), torch.Generator()
            data_gen.set_state(tensors["data_gen"])
            aug_gen.set_state(tensors["aug_gen"])
            buf = tensors.get("momentum_buffer")
            return ExpertState(index=index, theta=snapshots[-1].to(real.device), snapshots=snapshots,
                               data_gen=data_gen, aug_gen=aug_gen,
                               momentum_buffer=None if buf is None else buf.to(real.device))
    shutil.rmtree(pdir, ignore_errors=True)
    return init_expert_state(real, recipe, index, flat=flat)


def _train_missing(
    root: Path,
    missing: list[int],
    *,
    real: RealData,
    recipe: ExpertRecipe,
    flat: FlatModel,
    key: str,
    progress: bool,
    batched: bool | None,
    experts_at_once: int,
) -> None:
    from dd_bench.tracking.provenance import collect_provenance

    use_batched = auto_batched_experts(real.device, len(missing)) if batched is None else batched
    per_chunk = experts_at_once if use_batched else 1
    provenance = {k: v for k, v in collect_provenance(real.device).items()
                  if k in ("package_version", "git_sha", "git_dirty", "torch_version", "device", "device_name")}
    bar = tqdm(total=len(missing) * recipe.epochs, desc=f"experts {recipe.model} x{len(missing)}",
               unit="expert-epoch", disable=not progress, leave=False)
    try:
        for c in range(0, len(missing), per_chunk):
            # Experts are created chunk by chunk so finished trajectories do not pile up in memory.
            states = [_resume_or_init(root, real, recipe, i, flat=flat, key=key) for i in missing[c:c + per_chunk]]
            bar.update(sum(s.epochs_done for s in states))
            started = time.perf_counter()
            on_epoch_end = _epoch_callback(root, recipe, key, bar, started,
                                           {**provenance, "batched": use_batched, "trained_with": len(states)})
            by_epoch: dict[int, list[ExpertState]] = {}
            for s in states:
                by_epoch.setdefault(s.epochs_done, []).append(s)
            # A checkpoint is never at the last epoch (that one is written as the final file), so every
            # state here has epochs left; experts resumed at different epochs train in separate groups.
            for group in by_epoch.values():
                train_expert_epochs(group, real=real, recipe=recipe, flat=flat, batched=use_batched,
                                    on_epoch_end=on_epoch_end)
    finally:
        bar.close()


def _epoch_callback(root: Path, recipe: ExpertRecipe, key: str, bar: tqdm, started: float,
                    provenance: dict[str, Any]) -> Callable[[ExpertState], None]:
    def on_epoch_end(state: ExpertState) -> None:
        if state.epochs_done < recipe.epochs:
            _save_epoch(root, state, key)
            bar.update(1)
            return
        trajectory = torch.stack(state.snapshots)  # (T+1, P)
        meta = {"format": FORMAT_NAME, "key": key, "index": str(state.index), "epochs": str(recipe.epochs)}
        atomic_save_safetensors(_expert_path(root, state.index), {"params": trajectory}, meta)
        shutil.rmtree(_partial_dir(root, state.index), ignore_errors=True)
        _record_expert(root, state.index, {**provenance, "wall_seconds": time.perf_counter() - started,
                                           "finished_at": datetime.now(UTC).isoformat(timespec="seconds")})
        bar.update(1)

    return on_epoch_end


def _load_trajectories(root: Path, n: int, *, key: str, shape: tuple[int, int]) -> torch.Tensor:
    """Experts 0..n-1 of the cache entry, stacked into one preallocated (n, T+1, P) float32 tensor."""
    from safetensors import SafetensorError, safe_open

    out = torch.empty((n, *shape), dtype=torch.float32)
    for i in range(n):
        path = _expert_path(root, i)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                traj = f.get_tensor("params")
        except (SafetensorError, OSError, KeyError) as err:
            raise ExpertCacheError(
                f"{path}: unreadable expert file ({err}); delete it to retrain that expert") from None
        if meta.get("format") != FORMAT_NAME or meta.get("key") != key or meta.get("index") != str(i):
            raise ExpertCacheError(f"{path}: written for key {meta.get('key')!r} expert {meta.get('index')!r}, not "
                                   f"key {key!r} expert {i}; delete it to retrain that expert")
        if tuple(traj.shape) != shape or traj.dtype != torch.float32:
            raise ExpertCacheError(f"{path}: expected float32 {shape}, got {traj.dtype} {tuple(traj.shape)}")
        out[i] = traj
    return out
