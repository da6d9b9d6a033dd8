"""Teachers trained once per key and shared: ``get_teacher(real, recipe)`` loads the cached weights or trains them.

Cache layout under the cache root (:mod:`dd_bench.io`), never pickled::

    <cache>/teachers/<key>/weights.safetensors   the state dict (parameters and BatchNorm buffers)
    <cache>/teachers/<key>/meta.json             recipe, key, model kwargs, validation accuracy, provenance
    <cache>/teachers/<key>/partial/checkpoint/   while training: weights, optimiser state, generators, epochs done

Training resumes from the last finished epoch and draws the same random numbers, so an interrupted teacher ends
with the same weights as an uninterrupted one. Two jobs asking for one teacher train it once (a lock per key).
The accuracy recorded with a teacher is on the **validation split** (``real.val_images``) when the data has one,
else none: anything that weights or picks teachers uses it, never the test set.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from dd_bench.augment.crop_flip import RandomCropFlip
from dd_bench.augment.named import create_augment
from dd_bench.augment.resized_crop import RandomResizedCropFlip
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import (
    KeyedStore,
    atomic_save_safetensors,
    atomic_write_json,
    load_checkpoint,
    load_optimizer,
    optimizer_tensors,
    save_checkpoint,
)
from dd_bench.io.weights_file import read_weights_with_classes
from dd_bench.models import create_model
from dd_bench.seeding import make_generator
from dd_bench.teachers.recipe import TeacherRecipe
from dd_bench.train import Cosine, OptimizerSpec, WarmupCosine
from dd_bench.train.loop import train_epoch
from dd_bench.train.optimizers import set_lr
from dd_bench.train.schedules import StepLR
from dd_bench.train.targets import HardLabels

FORMAT_NAME = "dd-bench-teacher"


@dataclass
class Teacher:
    """A trained teacher in eval mode on ``real``'s device; ``source`` says where its weights came from."""

    module: nn.Module
    model: str
    model_kwargs: dict[str, Any]
    key: str
    source: str  # trained | file
    recipe: TeacherRecipe | None = None
    validation_accuracy: float | None = None  # percent on the validation split; None without one
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def parameter_bytes(self) -> int:
        """Bytes of its state as stored (float32 parameters and buffers): an evaluation asset when it runs online."""
        return sum(t.numel() * t.element_size() for t in self.module.state_dict().values())


def teacher_model_kwargs(real: RealData, recipe: TeacherRecipe) -> dict[str, Any]:
    return {"num_classes": real.num_classes, "in_channels": real.channels, "image_size": real.image_size,
            **dict(recipe.model_kwargs)}


def _augment(real: RealData, recipe: TeacherRecipe) -> RandomCropFlip | RandomResizedCropFlip | None:
    return create_augment(recipe.augment, real=real, pad=recipe.crop_pad)


@torch.no_grad()
def accuracy(module: nn.Module, images: torch.Tensor, labels: torch.Tensor, real: RealData,
             batch_size: int = 512) -> float:
    """Top-1 accuracy in percent of ``module`` (eval mode) on uint8 ``images``."""
    module.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = real.to_model_space(images[start:start + batch_size])
        correct += int((module(x).argmax(-1) == labels[start:start + batch_size]).sum())
    return 100.0 * correct / max(1, len(images))


def get_teacher(real: RealData, recipe: TeacherRecipe, *, cache_dir: str | Path | None = None,
                progress: bool = True) -> Teacher:
    """The teacher of ``recipe`` trained on ``real``'s training tensors: from the cache, else trained now."""
    store = KeyedStore("teachers", cache_dir)
    key = recipe.key(real)
    root = store.path(key)
    if not (root / "weights.safetensors").is_file():
        with store.lock(key):  # a second job asking for the same teacher waits, then loads it
            if not (root / "weights.safetensors").is_file():
                _train(root, real, recipe, key=key, progress=progress)
    return load_cached(root, real, recipe, key)


def _train(root: Path, real: RealData, recipe: TeacherRecipe, *, key: str, progress: bool) -> None:
    from dd_bench.tracking.provenance import collect_provenance

    device = real.device
    kwargs = teacher_model_kwargs(real, recipe)
    module = create_model(recipe.model, generator=make_generator(recipe.seed, "teacher", "init"), **kwargs).to(device)
    spec = OptimizerSpec(recipe.optimizer, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    opt = spec.make(list(module.parameters()), recipe.lr)
    schedule = {"cosine": Cosine(t_max=recipe.epochs), "constant": None,
                "warmup_cosine": WarmupCosine(recipe.epochs, recipe.warmup_epochs, recipe.warmup_start),
                "step": StepLR(recipe.step_size, recipe.gamma)}[recipe.schedule]
    data_gen = make_generator(recipe.seed, "teacher", "data")
    aug_gen = make_generator(recipe.seed, "teacher", "aug", device=device)
    augment, labels = _augment(real, recipe), HardLabels(real.train_labels)
    partial = root / "partial"
    start, seconds = 0, 0.0
    found = load_checkpoint(partial, config_hash=key)
    if found is not None:
        tensors, saved = found
        module.load_state_dict({k[len("model."):]: v.to(device) for k, v in tensors.items() if k.startswith("model.")})
        load_optimizer(opt, tensors, saved, device)
        data_gen.set_state(tensors["data_gen"])
        aug_gen.set_state(tensors["aug_gen"].to(aug_gen.get_state().device))
        start, seconds = int(saved["epochs_done"]), float(saved["seconds"])
    bar = tqdm(range(start, recipe.epochs), desc=f"teacher {recipe.model}", unit="epoch", disable=not progress,
               leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        set_lr(opt, schedule.lr(epoch, recipe.lr) if schedule is not None else recipe.lr)
        loss = train_epoch(module, images=real.train_images, labels=labels, epoch=epoch,
                           batch_size=recipe.batch_size, optimizer=opt, augment=augment, data_gen=data_gen,
                           aug_gen=aug_gen, transform=real.to_model_space)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"teacher {recipe.model} diverged at epoch {epoch} (loss {float(loss)})")
        seconds += time.perf_counter() - t0
        bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        opt_tensors, opt_json = optimizer_tensors(opt)
        save_checkpoint(partial, tensors={**{f"model.{k}": v for k, v in module.state_dict().items()}, **opt_tensors,
                                          "data_gen": data_gen.get_state(), "aug_gen": aug_gen.get_state().cpu()},
                        state={**opt_json, "epochs_done": epoch + 1, "seconds": seconds, "config_hash": key})
    bar.close()
    val = None
    if real.val_images is not None:
        val = accuracy(module, real.val_images, real.val_labels, real)
    atomic_save_safetensors(root / "weights.safetensors", module.state_dict(),
                            metadata={"format": FORMAT_NAME, "key": key})
    atomic_write_json(root / "meta.json", {
        "format": FORMAT_NAME, "key": key, "recipe": recipe.to_dict(), "model": recipe.model,
        "model_kwargs": {**kwargs, "image_size": list(real.image_size)}, "validation_accuracy": val,
        "validation_images": None if real.val_images is None else len(real.val_images),
        "train_images": len(real.train_labels), "train_seconds": seconds,
        "provenance": {k: v for k, v in collect_provenance(device).items()
                       if k in ("package_version", "git_sha", "torch_version", "device", "device_name")}})
    shutil.rmtree(partial, ignore_errors=True)


def load_cached(root: Path, real: RealData, recipe: TeacherRecipe, key: str) -> Teacher:
    import json

    from safetensors.torch import load_file

    meta = json.loads((root / "meta.json").read_text())
    kwargs = teacher_model_kwargs(real, recipe)
    module = create_model(recipe.model, **kwargs)
    module.load_state_dict(load_file(str(root / "weights.safetensors")))
    return Teacher(module=module.to(real.device).eval(), model=recipe.model, model_kwargs=kwargs, key=key,
                   source="trained", recipe=recipe, validation_accuracy=meta.get("validation_accuracy"),
                   extra={"cache_dir": str(root), "train_seconds": meta.get("train_seconds")})


def load_teacher_weights(path: str | Path, *, model: str, real: RealData,
                         model_kwargs: dict[str, Any] | None = None) -> Teacher:
    """A teacher from a local weights file: safetensors, or a torch file read with ``weights_only=True``.

    Fails with one line naming the path and the expected architecture and classes when the file is missing or
    does not fit. Weights trained elsewhere have seen data we cannot check, so combining them with a validation
    split is refused. A file that carries its class map (:mod:`dd_bench.io.weights_file`) is checked against the
    dataset's classes like an imported set's: another order is applied (the classifier's rows reordered, so
    output ``i`` is the dataset's class ``i``), a map of other classes fails in one line naming both orders.
    """
    path = Path(path)
    kwargs = {"num_classes": real.num_classes, "in_channels": real.channels, "image_size": real.image_size,
              **(model_kwargs or {})}
    expected = (f"a {model} state dict for {real.num_classes} classes of "
                f"{real.channels}x{'x'.join(map(str, real.image_size))} images")
    if real.val_images is not None:
        raise UserError(f"teacher.weights={path} with a validation split: imported weights may have seen the "
                        "held-out images; train the teacher here instead (drop teacher.weights) or drop validation")
    state, names = read_weights_with_classes(path, option="teacher.weights", expected=expected)
    module = create_model(model, **kwargs)
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"teacher.weights={path} does not fit: {first}; expected {expected}") from None
    key, extra = f"file:{path.name}", {"path": str(path)}
    if names is not None:
        from dd_bench.data.class_map import is_identity, map_onto
        from dd_bench.io import json_sha256

        perm = map_onto(names, classes=list(real.class_names), dataset=real.name,
                        what=f"the class map of teacher.weights={path}")
        extra["class_names"] = names
        if not is_identity(perm):
            _reorder_outputs(module, perm, input_shape=(real.channels, *real.image_size), path=path)
            # Another teacher than the file read in its own order: its labels are cached and keyed apart. A file
            # in the dataset's order keeps the key it always had.
            key = f"file:{path.name}:classes-{json_sha256(names, 12)}"
    return Teacher(module=module.to(real.device).eval(), model=model, model_kwargs=kwargs,
                   key=key, source="file", extra=extra)


def _reorder_outputs(module: torch.nn.Module, perm: list[int], *, input_shape: tuple[int, ...], path: Path) -> None:
    """Reorder the classifier's rows in place so that output ``i`` is the dataset's class ``i`` (the file's output
    ``j`` is class ``perm[j]``), checked on a random batch: the outputs must be the old ones, reordered."""
    order = torch.argsort(torch.tensor(perm))  # new row i <- the file's row of class i
    num_classes = len(perm)
    tail = []  # the last parameters with one row per class: the classifier's weight and bias
    for _, p in reversed(list(module.named_parameters())):
        if p.dim() == 0 or p.shape[0] != num_classes:
            break
        tail.append(p)
    module.eval()
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = module(x)
        for p in tail:
            p.copy_(p[order])
        after = module(x)
    if not tail or not torch.allclose(after, before[:, order], rtol=1e-4, atol=1e-5):
        raise UserError(f"teacher.weights={path}: its class map is another order than the dataset's, and this "
                        "architecture's outputs cannot be reordered by its last layer; save the weights in the "
                        "dataset's class order")
