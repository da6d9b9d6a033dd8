"""FKD-style stored soft labels (decoupled-methods.md §1.3): made once per protocol, replayed exactly by the evaluator.

Relabelling (:func:`relabel_fkd`, ``dd-bench relabel``) walks the protocol's epochs with a fixed FKD seed: per epoch
one order of the images, per batch the protocol's augmentation parameters (crop offsets, flips, MixUp ``lam`` and
permutation), and the teacher's logits on the augmented, mixed batch, stored as float16. One safetensors shard per
epoch, by position in that epoch's order::

    <set>/labels/<key>/epoch-00000.safetensors
        order      (N,) int64    the images of the epoch, in batch order (batch k = positions [k*b, (k+1)*b))
        crop.*     (N,)          per-sample crop parameters (offsets, flips)
        mix.lam    (N,) float    one value per batch, repeated
        mix.perm   (N,) int64    each batch's permutation, local to its batch
        logits     (N, K) fp16   the teacher on the augmented, mixed batch

``<key>`` names the protocol (name, version and a hash of its recipe): labels made for one protocol's epochs,
batch size and augmentation are only replayed under that protocol; any other fails with a clear error naming the
``dd-bench relabel`` call that makes them. Shards are described (file, SHA-256, bytes) in the set's meta.json,
opened lazily (one epoch in memory at a time) and verified when opened; nothing is unpickled.

Replay (:class:`FKDLabels`): the evaluator takes the stored order and parameters instead of drawing its own, so
every student sees exactly the batches the teacher labelled (all seeds the same batches, as the official FKD code:
seeds differ in initialisation only), and the targets are the stored logits, compared by KL at the protocol's T.

The ``fkd`` label source (:class:`FKD`) reads them; its compressed forms (:mod:`dd_bench.labels.quantised`) read the
same shards, and NRR-DD's distances (:mod:`dd_bench.labels.distance`) are stored and replayed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from dd_bench.errors import UserError
from dd_bench.io import atomic_save_safetensors, file_sha256, json_sha256
from dd_bench.labels.base import LabelContext, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.seeding import make_generator
from dd_bench.synset import SynsetError
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.train.losses import Loss
from dd_bench.train.targets import Targets

FKD_DIR = "labels"
FKD_FORMAT = "dd-bench-fkd"
FKD_SEED = 42  # the official relabel scripts' fkd_seed
STORED_TARGETS = ("logits", "distances")  # what a shard stores per position besides the replayed parameters


def fkd_key(protocol: Any) -> str:
    return f"{protocol.name}-v{protocol.version}-{json_sha256(protocol.to_dict(), 8)}"


def relabel_command(synset_dir: str | Path, protocol: Any) -> str:
    return f"dd-bench relabel synset={synset_dir} eval={protocol.name.split('+')[0]}"


@torch.no_grad()
def relabel_fkd(*, synset_dir: str | Path, images: torch.Tensor, teacher: Any, protocol: Any, augment: Any,
                num_classes: int, dataset: str | None = None, transform: Any = None,
                teachers_spec: list[dict[str, Any]] | None = None,
                seed: int = FKD_SEED, progress: bool = True, key: str | None = None,
                record: Callable[[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]], dict[str, torch.Tensor]]
                | None = None) -> dict[str, Any]:
    """Write the FKD shards of ``protocol`` for ``images`` (N, C, H, W) into the set directory; returns the entry
    for meta.json. ``teacher``: a :class:`~dd_bench.labels.TeacherLogits` (its ``logits(x)``). Resumable per
    epoch: a shard already written for this key and epoch is kept.

    ``record(x_aug, idx, params)`` says what is stored per augmented batch (default ``{"logits": fp16 teacher
    logits}``; NRR-DD's distance labels store two distances instead) under ``key`` (default :func:`fkd_key`)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    key = key or fkd_key(protocol)
    record = record or (lambda x_aug, idx, params: {"logits": teacher.logits(x_aug).half()})
    directory = Path(synset_dir) / FKD_DIR / key
    directory.mkdir(parents=True, exist_ok=True)
    n, device = len(images), images.device
    b = protocol.batch_for(n, num_classes, dataset)  # the batch the student will train with
    shards, total = [], 0
    for epoch in tqdm(range(protocol.epochs), desc=f"relabel {key}", unit="epoch", disable=not progress,
                      leave=False):
        path = directory / f"epoch-{epoch:05d}.safetensors"
        done = False
        if path.is_file():
            try:
                with safe_open(str(path), framework="pt") as f:
                    done = (f.metadata() or {}).get("key") == key and (f.metadata() or {}).get("epoch") == str(epoch)
            except Exception:  # noqa: BLE001 - a torn or foreign file is rewritten
                done = False
        if not done:
            order_gen = make_generator(seed, "fkd", "order", epoch)
            aug_gen = make_generator(seed, "fkd", "aug", epoch, device=device)
            order = torch.randperm(n, generator=order_gen).to(device)
            parts: dict[str, list[torch.Tensor]] = {}
            for start in range(0, n, b):
                idx = order[start:start + b]
                x = images[idx]
                x = transform(x) if transform is not None else x
                params = augment.sample_params(len(idx), generator=aug_gen)
                stored = record(augment.apply(x, params), idx, params)
                for k, v in {**params, **stored}.items():
                    parts.setdefault(k, []).append(v.expand(len(idx), *v.shape[1:]) if v.shape[0] == 1 else v)
            tensors = {"order": order, **{k: torch.cat(v) for k, v in parts.items()}}
            atomic_save_safetensors(path, tensors, metadata={"format": FKD_FORMAT, "key": key, "epoch": str(epoch)})
        nbytes = sum(t.numel() * t.element_size() for t in load_file(str(path)).values())
        total += nbytes
        shards.append({"file": path.name, "sha256": file_sha256(path), "bytes": nbytes})
    return {"dir": f"{FKD_DIR}/{key}", "key": key, "protocol": protocol.to_dict(), "epochs": protocol.epochs,
            "batch_size": b, "seed": seed, "num_images": n, "shards": shards, "bytes": total,
            "teachers": teachers_spec or [], "bn_train": bool(getattr(teacher, "bn_train", False)),
            "weights": getattr(teacher, "weights", None), "bn_split": int(getattr(teacher, "bn_split", 1))}


class FKDLabels:
    """Stored FKD labels of one protocol: the label source (stored logits, KL at T) and the replay of the batches."""

    name = "fkd"

    def __init__(self, *, synset_dir: str | Path, entry: dict[str, Any], num_images: int, num_classes: int,
                 temperature: float, device: torch.device | str) -> None:
        self.directory = Path(synset_dir) / entry["dir"]
        self.entry, self.temperature, self.device = entry, float(temperature), torch.device(device)
        if int(entry["num_images"]) != num_images:
            raise SynsetError(f"the stored labels in '{self.directory}' are for {entry['num_images']} images; the "
                              f"set has {num_images}: they do not belong to these images")
        self.num_classes = num_classes
        self._epoch: int | None = None
        self._tensors: dict[str, torch.Tensor] = {}

    def _load(self, epoch: int) -> dict[str, torch.Tensor]:
        if self._epoch == epoch:
            return self._tensors
        from safetensors.torch import load_file

        shards = self.entry["shards"]
        if not 0 <= epoch < len(shards):
            raise SynsetError(f"the stored labels in '{self.directory}' cover {len(shards)} epochs; epoch {epoch} "
                              "was asked for")
        shard = shards[epoch]
        path = self.directory / shard["file"]
        if not path.is_file():
            raise SynsetError(f"'{path}' is missing: the set's stored labels are incomplete")
        if file_sha256(path) != shard["sha256"]:
            raise SynsetError(f"'{path}' is corrupted: its SHA-256 does not match meta.json")
        tensors = {k: v.to(self.device) for k, v in load_file(str(path)).items()}
        self.check_shard(path, tensors)
        self._epoch, self._tensors = epoch, tensors
        return tensors

    def check_shard(self, path: Path, tensors: dict[str, torch.Tensor]) -> None:
        if tensors["logits"].shape[1] != self.num_classes:
            raise SynsetError(f"'{path}' holds {tensors['logits'].shape[1]}-class logits; the set has "
                              f"{self.num_classes} classes")

    # The replay: the evaluator's order and augmentation parameters, in place of its own draws.
    def order(self, epoch: int) -> torch.Tensor:
        return self._load(epoch)["order"]

    def params(self, epoch: int, start: int, stop: int) -> dict[str, torch.Tensor]:
        t = self._load(epoch)
        out = {k: v[start:stop] for k, v in t.items() if k not in ("order", *STORED_TARGETS)}
        out["pos"] = torch.arange(start, stop, device=self.device)
        return out

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int,
                aug_params: dict[str, Any] | None) -> Targets:
        if aug_params is None or "pos" not in aug_params:
            raise RuntimeError("FKD labels are only valid on their replayed batches (train_networks(replay=...))")
        return Targets(self._load(epoch)["logits"][aug_params["pos"]], Loss("kl", temperature=self.temperature))


def check_fkd_protocol(entries: dict[str, dict[str, Any]], protocol: Any, synset_dir: str | Path,
                       key: str | None = None) -> dict[str, Any]:
    """The stored entry made for ``protocol``; a clear error naming what is stored and the relabel call otherwise."""
    key = key or fkd_key(protocol)
    if key in entries:
        return entries[key]
    stored = ", ".join(f"{e['protocol']['name']} ({e['epochs']} epochs, batch {e['batch_size']})"
                       for e in entries.values()) or "none"
    raise UserError(f"the set's stored (fkd) labels were made for: {stored}; protocol '{protocol.name}' "
                    f"({protocol.epochs} epochs, batch {protocol.batch_size}) needs its own: run "
                    f"`{relabel_command(synset_dir, protocol)}` (dd-bench run does it for you)")


def stored_entry(ctx: LabelContext, kind: str, key: str) -> dict[str, Any]:
    """The set's stored-labels entry ``key`` (FKD logits or DBR distances) for this protocol, or a clear error."""
    if ctx.synset.directory is None:
        raise UserError(f"label source '{kind}' reads stored labels from the set's directory; save the set first")
    return check_fkd_protocol(ctx.section.stored, ctx.protocol, ctx.synset.directory, key=key)


@register_label_source
class FKD(LabelSourceKind):
    """The stored FKD logits of the protocol, replayed; a compressed form overrides the three hooks below."""

    name = "fkd"
    reference_kind = "teacher"

    def identity_name(self) -> str:
        return self.name

    def identity(self, section: LabelsSection, *, protocol: Any, label_kind: str | None) -> str:
        return f"{self.identity_name()}:{fkd_key(protocol)}"

    def stored_key(self, protocol: Any) -> str | None:
        return fkd_key(protocol)

    def labels(self, **kwargs: Any) -> FKDLabels:
        return FKDLabels(**kwargs)

    def entry_bytes(self, entry: dict[str, Any], num_classes: int) -> int:
        return int(entry["bytes"])

    def resolve(self, ctx: LabelContext) -> ResolvedLabels:
        s = ctx.synset
        entry = stored_entry(ctx, self.name, self.stored_key(ctx.protocol))
        source = self.labels(synset_dir=s.directory, entry=entry, num_images=len(s.images), num_classes=s.num_classes,
                             temperature=ctx.protocol.temperature, device=s.images.device)
        stored = {**ctx.class_id_bytes(), f"{self.name}:{entry['key']}": self.entry_bytes(entry, s.num_classes)}
        return ResolvedLabels(source, self.name, self.identity(ctx.section, protocol=ctx.protocol,
                                                              label_kind=s.label_kind), stored,
                              replay=source, teachers=list(entry.get("teachers") or []))
