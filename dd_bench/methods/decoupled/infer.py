"""INFER: inter-class feature compensators (Zhang et al., ICLR 2025; zhangxin-xd/UFC), decoupled-methods.md §3.

* **Budget**: ``K = floor(ipc / (1 + M / C))`` base sets per IPC (M teachers, C classes), so the K*C base images
  and the M*K compensators (each the size of one image) fit ``ipc * C`` images. IPC values with K = 0 fail,
  naming the smallest valid IPC.
* **Base sets** B_k: one random real training image per class (seeded), stored unchanged as uint8 pixels.
* **Universal feature compensators** u_{k,m} (1, C, H, W), one per (base set k, teacher m) and chunk of
  ``batch_size`` classes (CIFAR: all classes in one chunk), zero-initialised, optimised by the shared recovery loop
  (:mod:`dd_bench.methods.decoupled.recovery`) on ``B_k[chunk] + u`` against teacher m alone: CE + r_bn * BN loss (first
  layer x10), roll jitter only on 32x32, 1000 Adam iterations, lr 0.25 cosine. The official per-step clip acts on
  the rebuilt sum and never constrains u; only the saved composite is clamped to the pixel range: the same here.
* **Instances**: per class, the K base images, then for m = 0..M-1 the K composites clamp(B_k + u_{k,m}), as the
  official ipc_id order (``m = ipc_id // K - 1``, ``k = ipc_id mod K``): (M + 1) K instances per class.
* **Labels**: ``infer`` (static): the mean of the M teachers' logits (eval mode) on each clean instance, stored
  once and interpolated as logits under MixUp (``label_source=static``, ``kd-infer``); ``infer_dyn``
  (INFER+Dyn): the ensemble online on every augmented batch (``label_source=teacher``, ``kd-infer-dyn``).
* **Storage**: the base images, the compensators and the logits, never the composites, which are rebuilt at load
  (``composition`` ``infer_ufc``); the records count them so. ``image_store=jpeg`` (the paper presets) stores the
  composites as JPEG files instead, as ``ufc_cifar.py`` saves them, and the static logits are taken on those.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import json_sha256
from dd_bench.methods.base import METHODS, Synthesizer, image_space_of
from dd_bench.methods.decoupled.common import bounds_and_pool
from dd_bench.methods.decoupled.recovery import Crop, RecoveryBatch, frozen_voters, recover
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.synset.compose import compose_infer, instance_plan, ufc_row  # noqa: F401  (importable from here)
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.teachers.spec import check_teacher_pool, resolve_teachers, teacher_spec

INFER_TEACHERS = ("infer_cifar_resnet18", "infer_cifar_mobilenetv2", "infer_cifar_efficientnet_b0",
                  "infer_cifar_shufflenetg2")  # ufc_cifar.py's M = 4, in its order


def base_sets_per_ipc(ipc: int, num_teachers: int, num_classes: int) -> int:
    """K = floor(ipc / (1 + M / C)), in exact integer arithmetic: floor(ipc * C / (C + M))."""
    return (ipc * num_classes) // (num_classes + num_teachers)


def smallest_ipc(num_teachers: int, num_classes: int) -> int:
    ipc = 1
    while base_sets_per_ipc(ipc, num_teachers, num_classes) == 0:
        ipc += 1
    return ipc


@METHODS.register("infer")
class INFER(Synthesizer):
    name = "infer"
    scored_by_kd = True
    dynamic = False  # infer_dyn: the ensemble online instead of stored static logits
    TEST_OPTIONS = {"iterations": 3, "teachers": ["digits_convnet_bn_w32_d2", "digits_convnet_bn_w64_d2"],
                    "jitter": 1}

    @dataclasses.dataclass
    class Config:
        teachers: list[str] = dataclasses.field(default_factory=lambda: list(INFER_TEACHERS))  # M recipes
        teacher_weights: list[str] | None = None
        iterations: int = 1000
        lr: float = 0.25
        r_bn: float = 1.0  # sh/ufc_cifar.sh (argparse default 0.05)
        first_bn_multiplier: float = 10.0
        jitter: int = 4
        batch_size: int = 100  # classes per compensator (CIFAR: all classes share one u)
        crop: Crop = Crop.none  # roll only on 32x32; shared RandomResizedCrop + flip on ImageNet
        crop_scale_min: float = 0.08
        checkpoint_every: int = 100

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        check_teacher_pool(self.name, c.teachers, c.teacher_weights)
        if c.iterations < 0 or c.batch_size < 1 or c.jitter < 0 or not c.lr > 0:
            raise UserError(f"{self.name}: iterations >= 0, batch_size >= 1, jitter >= 0 and lr > 0 are required; "
                            f"got {c.iterations}, {c.batch_size}, {c.jitter}, {c.lr}")

    def smallest_ipc(self, num_classes: int) -> int:
        return smallest_ipc(len(self.cfg.teachers), num_classes)

    def instances_per_class(self, ipc: int, num_classes: int) -> int:
        return (len(self.cfg.teachers) + 1) * base_sets_per_ipc(ipc, len(self.cfg.teachers), num_classes)

    def check_ipc(self, ipc: int, num_classes: int) -> int:
        """K for this IPC; a clear error when K = 0."""
        m = len(self.cfg.teachers)
        k = base_sets_per_ipc(ipc, m, num_classes)
        if k == 0:
            raise UserError(f"{self.name}: ipc {ipc} leaves K = floor(ipc / (1 + M/C)) = 0 base sets with M = {m} "
                            f"teachers and C = {num_classes} classes (images + compensators must fit the budget); "
                            f"the smallest valid ipc is {smallest_ipc(m, num_classes)}")
        return k

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        c, device, classes = self.cfg, real.device, real.num_classes
        k = self.check_ipc(ipc, classes)
        m = len(c.teachers)
        # mean/std model space only (no ZCA), as every recovery method; the composites are clamped at load instead
        teachers, _ = bounds_and_pool(real, recipes=c.teachers, weights=c.teacher_weights, cache_dir=cache_dir,
                                      progress=progress)
        g_pick = make_generator(seed, "method", "infer", "base")
        picks = []
        for cls in range(classes):
            pool = real.indices_of_class(cls).cpu()
            picks.append(pool[torch.randperm(len(pool), generator=g_pick)[:k]])
        base_idx = torch.stack(picks, dim=1)  # (K, C): base set k, class c
        base = real.train_images[base_idx.flatten().to(device)]  # (K*C, ch, H, W) uint8, row k*C + c
        base_model = real.to_model_space(base)
        chunks = -(-classes // c.batch_size)
        ufc = torch.zeros((m * k * chunks, real.channels, *real.image_size), device=device, requires_grad=True)
        voters = frozen_voters([t.module for t in teachers], [1.0] * m, first_bn_multiplier=c.first_bn_multiplier)
        batches = []
        for mm in range(m):
            for kk in range(k):
                for ch in range(chunks):
                    cls = torch.arange(ch * c.batch_size, min((ch + 1) * c.batch_size, classes), device=device)
                    batches.append(RecoveryBatch(kk * classes + cls, cls, [voters[mm]],
                                                 part=ufc_row(kk, mm, ch, k=k, chunks=chunks)))

        def compose(leaf: torch.Tensor, batch: RecoveryBatch) -> torch.Tensor:
            return base_model[batch.index] + leaf[batch.part]  # (B, ch, H, W) + (ch, H, W) broadcast

        config_hash = json_sha256({"cfg": {k_: v for k_, v in self.config_dict().items() if k_ != "checkpoint_every"},
                                   "data": real.fingerprint(), "ipc": ipc, "seed": seed,
                                   "teachers": [t.key for t in teachers]}, 16)
        status = recover(
            leaf=ufc, batches=batches, iterations=c.iterations, lr=c.lr, r_bn=c.r_bn, jitter=c.jitter, crop=c.crop,
            crop_scale_min=c.crop_scale_min, image_size=real.image_size, flip="flip" in real.dsa_strategy,
            bounds=None, generator=make_generator(seed, "method", "infer", "aug", device=device),
            checkpoint_dir=checkpoint_dir, checkpoint_every=c.checkpoint_every, config_hash=config_hash,
            progress=progress, desc=f"{self.name} compensators ipc{ipc}", compose=compose)
        extras = {"infer.base": base, "infer.ufc": ufc.detach()}
        composition = {"kind": "infer_ufc", "parts": ["infer.base", "infer.ufc"], "k": k, "m": m,
                       "classes": classes, "batch_size": c.batch_size}
        images = compose_infer(composition, extras, image_space_of(real))
        labels = torch.arange(classes, device=device).repeat_interleave((m + 1) * k)
        specs = [teacher_spec(t) for t in teachers]
        provenance = {"distill_status": status, "k": k, "instances_per_class": (m + 1) * k,
                      "base_indices": base_idx.tolist(), "teachers": specs,
                      "image_budget": {"images_equivalent": k * classes + m * k * chunks, "limit": ipc * classes},
                      "deviations": ["EfficientNet's 2nd BN hook is kept in the sum (the official CIFAR script "
                                     "drops it for the third teacher)"]}
        if self.dynamic:
            return self.new_synset(real, ipc=ipc, images=images, labels=labels, recommended_protocol="kd",
                                   extras=extras, composition=composition,
                                   label_section=LabelsSection(source="teacher", teachers=specs, weights=None,
                                                               bn_train=False),
                                   provenance=provenance)
        logits = static_logits([t.module for t in teachers], images)
        return self.new_synset(real, ipc=ipc, images=images, labels=labels, recommended_protocol="kd",
                               soft_labels=logits, label_kind="soft_logits", extras=extras, composition=composition,
                               label_section=LabelsSection(source="static", teachers=specs, own={
                                   "static": "mean logits of the teachers on each clean instance"}),
                               provenance=provenance)


    def labels_for_stored_images(self, synset: SyntheticSet, *, real: RealData, cache_dir: Path | None = None,
                                 progress: bool = True) -> SyntheticSet:
        """Static logits from the stored (uint8 / decoded JPEG) composites: val_static.py computes them on the
        JPEG files it reads back (UFC ``ufc_validation/val_static.py:123``); infer_dyn's teachers run online."""
        if self.dynamic or synset.label_source != "static":
            return synset
        c = self.cfg
        teachers = resolve_teachers(real, recipes=c.teachers, weights=c.teacher_weights, cache_dir=cache_dir,
                                    progress=progress)
        images = real.to_model_space(synset.images.to(real.device))
        synset.soft_labels = static_logits([t.module for t in teachers], images).to(synset.labels.device)
        synset.label_section.own["static"] = "mean logits of the teachers on each stored instance"
        return synset


def static_logits(modules: list[torch.nn.Module], images: torch.Tensor) -> torch.Tensor:
    """The mean of the teachers' logits (eval mode) on model-space images (N, C, H, W) -> (N, classes) float32."""
    with torch.no_grad():
        return torch.stack([torch.cat([m.eval()(images[i:i + 512]).float() for i in range(0, len(images), 512)])
                            for m in modules]).mean(0)


@METHODS.register("infer_dyn")
class INFERDyn(INFER):
    """INFER+Dyn: the same images, labelled by the teachers' ensemble online (``val_dyn.py``)."""

    name = "infer_dyn"
    dynamic = True
