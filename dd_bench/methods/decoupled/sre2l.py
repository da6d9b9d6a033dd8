"""SRe2L: Squeeze, Recover and Relabel (Yin, Xing, Shen, NeurIPS 2023; VILA-Lab/SRe2L), decoupled-methods.md §2.1.

* **Squeeze**: a teacher trained on the real training set with the card's recipe (``teacher=sre2l_cifar``: the
  CIFAR ResNet-18, SGD 0.1, cosine, 200 epochs), shared through the teacher cache (:mod:`dd_bench.teachers`).
* **Recover**: images start as standard normal noise in model space and are optimised against the frozen teacher
  (eval mode): ``L = CE(teacher(x_aug), y) + r_bn * L_BN`` with the BN-statistics loss of §1.2
  (:mod:`dd_bench.methods.decoupled.bn_statistics`, first layer x10), Adam(betas 0.5, 0.9, eps 1e-8) with a cosine
  lr from ``lr`` to 0 over the iterations, and the images clipped to the valid pixel range after every step. Batches
  are per (class range, ipc id) as in ``recover_cifar.py``: batch j of ipc id i holds one image of each of up to
  ``batch_size`` consecutive classes, so its BN statistics are its own. Every batch is stepped every iteration
  (one Adam over all images equals one Adam per batch: Adam is element-wise and a batch's loss only reaches its
  own images).
* **Augmentation during recovery**: ``crop=none`` is the CIFAR recipe, "roll jitter only" (``torch.roll`` by offsets
  in [0, jitter] in H and W, one draw per batch); ``crop=shared`` adds RandomResizedCrop + flip with ONE box and
  flip per batch, as the official ImageNet/Tiny scripts (torchvision transforms on a 4-D batch); ``per_sample``
  draws one per image (kornia's default; a deviation, recorded).
* **Relabel**: ``labels=teacher`` scores the set with the online teacher (the CIFAR script), its BatchNorm in train
  mode by default (``teacher_bn_train``: the official ``relabel_cifar.py`` never calls ``eval()``);
  ``labels=fkd`` stores FKD soft labels per protocol (``dd-bench relabel``, run by ``dd-bench run``).
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import json_sha256
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.methods.decoupled.common import (  # noqa: F401  (pixel_bounds: importable from here)
    bounds_and_teacher,
    pixel_bounds,
    recovery_batches,
)
from dd_bench.methods.decoupled.recovery import Crop, RecoveryBatch, frozen_voters, recover
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.teachers.spec import teacher_spec


class Relabel(enum.StrEnum):
    teacher = "teacher"  # online teacher at evaluation (the CIFAR recipe)
    fkd = "fkd"  # stored FKD labels, made per protocol by `dd-bench relabel`


@METHODS.register("sre2l")
class SRe2L(Synthesizer):
    name = "sre2l"
    scored_by_kd = True
    TEST_OPTIONS = {"iterations": 3, "teacher": "digits_convnet_bn_w32_d2", "jitter": 1}

    @dataclasses.dataclass
    class Config:
        teacher: str = "sre2l_cifar"  # a teacher recipe (dd_bench.teachers)
        teacher_weights: str | None = None  # a local weights file in the recipe's architecture instead
        iterations: int = 1000
        lr: float = 0.25  # Adam lr on the images (model-space units), cosine to 0
        r_bn: float = 0.01
        first_bn_multiplier: float = 10.0
        jitter: int = 4  # roll offsets in [0, jitter] pixels
        batch_size: int = 100  # consecutive classes per recovery batch (one ipc id)
        crop: Crop = Crop.none
        crop_scale_min: float = 0.08  # RandomResizedCrop scale (min, 1) when crop != none
        labels: Relabel = Relabel.teacher
        teacher_bn_train: bool = True  # the online teacher's BN on batch statistics (the official CIFAR script)
        checkpoint_every: int = 100

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        if c.iterations < 0 or c.batch_size < 1 or c.jitter < 0 or not c.lr > 0:
            raise UserError(f"sre2l: iterations >= 0, batch_size >= 1, jitter >= 0 and lr > 0 are required; got "
                            f"{c.iterations}, {c.batch_size}, {c.jitter}, {c.lr}")

    def _config_hash(self, real: RealData, ipc: int, seed: int, teacher_key: str) -> str:
        cfg = {k: v for k, v in self.config_dict().items() if k not in ("checkpoint_every", "labels",
                                                                         "teacher_bn_train")}
        return json_sha256({"cfg": cfg, "data": real.fingerprint(), "ipc": ipc, "seed": seed,
                            "teacher": teacher_key}, 16)

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        cfg, device, k = self.cfg, real.device, real.num_classes
        teacher, (lo, hi) = bounds_and_teacher(real, recipe=cfg.teacher, weights=cfg.teacher_weights,
                                               cache_dir=cache_dir, progress=progress)
        g_init = make_generator(seed, "method", "sre2l", "init")
        g_aug = make_generator(seed, "method", "sre2l", "aug", device=device)
        labels = hard_labels(k, ipc, device)  # (K*ipc,) class-major
        images = torch.randn((k * ipc, real.channels, *real.image_size), generator=g_init).to(device)
        images.requires_grad_(True)
        voters = frozen_voters([teacher.module], [1.0], first_bn_multiplier=cfg.first_bn_multiplier)
        batches = [RecoveryBatch(idx.to(device), labels[idx.to(device)], voters)
                   for idx in recovery_batches(k, ipc, cfg.batch_size)]
        status = recover(
            leaf=images, batches=batches, iterations=cfg.iterations, lr=cfg.lr, r_bn=cfg.r_bn, jitter=cfg.jitter,
            crop=cfg.crop, crop_scale_min=cfg.crop_scale_min, image_size=real.image_size,
            flip="flip" in real.dsa_strategy, bounds=(lo, hi), generator=g_aug, checkpoint_dir=checkpoint_dir,
            checkpoint_every=cfg.checkpoint_every, config_hash=self._config_hash(real, ipc, seed, teacher.key),
            progress=progress, desc=f"sre2l recover ipc{ipc}")
        return self.new_synset(
            real, ipc=ipc, images=images.detach(), labels=labels, recommended_protocol="kd",
            label_section=LabelsSection(source=str(cfg.labels), teachers=[teacher_spec(teacher)], weights=None,
                                        bn_train=cfg.teacher_bn_train),
            provenance={"distill_status": status, "teacher": teacher_spec(teacher)})
