"""CV-DD: dataset distillation via committee voting (Cui et al. 2025; Jiacheng8/CV-DD), and its single-teacher
baseline SRe2L++ (decoupled-methods.md §5, §7.2 "CV-DD-min").

* **Squeeze**: a pool of teachers trained by the suite (``cvdd_cifar*`` recipes: R18, R50, ShuffleNetV2-0.5,
  MobileNetV2, DenseNet-121 with Adam 1e-3, 200 epochs, batch 512), shared through the teacher cache.
* **Priors** and **committees** (:mod:`dd_bench.methods.decoupled.committee`): each ipc id is recovered against N = 2
  voters weighted by softmax(prior / 5). The paper presets' ``priors=sre2l_pp`` are measured before the run by
  :mod:`dd_bench.pipeline.cvdd_priors` (single-teacher SRe2L++ sets scored on the validation split;
  docs/methods/cvdd.md).
* **Initialisation** from the RDED selector (:func:`dd_bench.methods.decoupled.rded.select_patches`, observer = the
  pool's first teacher): the official "medium" patches are pre-made files whose generation code is not public; here
  each class's ``mipc`` candidates are ranked by the observer's CE on their best crop and ``ipc`` are drawn (seeded)
  from the middle tercile (``init_difficulty=medium``; easy / hard: the lowest / highest tercile). Our reading of
  "medium", not verified against code.
* **Recovery** (:func:`dd_bench.methods.decoupled.recovery.recover`): 4,000 Adam iterations, lr 0.25 cosine, r_bn
  0.01, one RandomResizedCrop + flip per batch (torchvision on a 4-D batch) and roll jitter <= 4, images clipped to
  the pixel range after every step, batches of ``batch_size`` consecutive classes per ipc id.
* **Relabel**: the whole pool with weights softmax(prior / 10) on logits, BatchNorm in train mode on half-batches
  (``bn_split=2``: CV-DD's BSSL). The set's own label source is that committee online (``label_source=teacher``,
  the ranked ``kd``); ``label_source=fkd`` under ``kd-cvdd`` stores them FKD-style at batch 16 as the paper does.

SRe2L++ (``method=sre2l_pp``) is the same pipeline with one teacher (the CIFAR ResNet-18 recipe), weight 1.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import json_sha256
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.methods.decoupled.committee import (
    OFFICIAL_POOL,
    OFFICIAL_PRIORS,
    Priors,
    committees,
    official_pool,
    prior_entries,
    prior_weights,
)
from dd_bench.methods.decoupled.common import bounds_and_pool, recovery_batches
from dd_bench.methods.decoupled.rded import class_candidates, select_patches
from dd_bench.methods.decoupled.recovery import Crop, RecoveryBatch, Voter, frozen_voters, recover
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.teachers.spec import check_teacher_pool, teacher_spec
from dd_bench.teachers.store import Teacher, accuracy


class Init(enum.StrEnum):
    patches = "patches"  # real crops from the RDED selector (CV-DD's patch initialisation)
    gaussian = "gaussian"  # standard normal noise in model space (SRe2L's; CV-DD's "Guassian" option)


class Difficulty(enum.StrEnum):
    easy = "easy"  # lowest-CE tercile of the observer's ranking
    medium = "medium"  # middle tercile (the official default, "patch_diff medium")
    hard = "hard"  # highest-CE tercile


TERCILE = {Difficulty.easy: 0, Difficulty.medium: 1, Difficulty.hard: 2}


def tercile_pick(order_len: int, ipc: int, difficulty: Difficulty, generator: torch.Generator) -> torch.Tensor:
    """``ipc`` positions drawn without replacement from one tercile of a ranking of ``order_len`` candidates."""
    third = order_len // 3
    lo = TERCILE[difficulty] * third
    hi = order_len if difficulty == Difficulty.hard else lo + third
    if hi - lo < ipc:
        raise UserError(f"cvdd: the {difficulty} tercile of {order_len} candidates holds {hi - lo}; ipc {ipc} "
                        f"needs at least {ipc} (raise mipc to at least {3 * ipc})")
    return lo + torch.randperm(hi - lo, generator=generator)[:ipc]


@dataclasses.dataclass
class RecoveryConfig:
    """The options CV-DD and SRe2L++ share (SRe2L++ is CV-DD with one teacher)."""

    teachers: list[str] = dataclasses.field(default_factory=lambda: list(OFFICIAL_POOL))  # teacher recipes
    teacher_weights: list[str] | None = None  # local weights files, one per teacher (null: suite-trained)
    priors: Priors = Priors.validation
    # priors=sre2l_pp: a prior file (committee.load_prior_file); null: dd-bench run/distill measures them
    # (dd_bench/pipeline/cvdd_priors.py) and fills this in
    prior_file: str | None = None
    committee_size: int = 2  # voters per ipc id (N)
    weight_temperature: float = 5.0  # recovery weights softmax(prior / tau)
    label_temperature: float = 10.0  # relabel weights over the pool softmax(prior / tau)
    init: Init = Init.patches
    init_difficulty: Difficulty = Difficulty.medium
    mipc: int = 300  # candidate real images per class for the patch initialisation
    num_crop: int = 5  # candidate crops per image
    init_scale_min: float = 0.08  # the selector's RandomResizedCrop scale (min, 1)
    iterations: int = 4000
    lr: float = 0.25  # Adam(0.5, 0.9) on the images, cosine to 0
    r_bn: float = 0.01
    first_bn_multiplier: float = 10.0
    jitter: int = 4
    batch_size: int = 100  # consecutive classes per recovery batch (one ipc id)
    crop: Crop = Crop.shared
    crop_scale_min: float = 0.08
    teacher_bn_train: bool = True  # BSSL: the relabelling teachers' BN on batch statistics
    bn_split: int = 2  # ... of half-batches
    stack_voters: bool = False  # voters of one architecture as one vmapped forward (same loss, reassociated)
    checkpoint_every: int = 100


# What SRe2L++ (one teacher, weight 1) sets instead of CV-DD's committee options; the rest is shared.
COMMITTEE_OPTIONS = {"priors": Priors.equal.value, "prior_file": None, "committee_size": 1,
                     "weight_temperature": 5.0, "label_temperature": 10.0}


def single_teacher_options(options: dict[str, Any], *, teacher: str, weights: str | None = None) -> dict[str, Any]:
    """The SRe2L++ options of one pool teacher of a CV-DD config (``priors=sre2l_pp``: the set whose student's
    accuracy is that teacher's prior): CV-DD's shared options, SRe2L++'s committee of one. The CV-DD and SRe2L++
    paper presets differ only there, so a shipped SRe2L++ run of the same teacher has the same set hash."""
    shared = {f.name for f in dataclasses.fields(RecoveryConfig)}
    return {**{k: v for k, v in options.items() if k in shared}, **COMMITTEE_OPTIONS, "teachers": [teacher],
            "teacher_weights": None if weights is None else [weights]}


@METHODS.register("cvdd")
class CVDD(Synthesizer):
    name = "cvdd"
    scored_by_kd = True
    TEST_OPTIONS = {"iterations": 3, "teachers": ["digits_convnet_bn_w32_d2", "digits_convnet_bn_w64_d2"],
                    "priors": "equal", "jitter": 1, "mipc": 30, "num_crop": 1, "crop_scale_min": 1.0,
                    "init_scale_min": 1.0}

    @dataclasses.dataclass
    class Config(RecoveryConfig):
        # priors=sre2l_pp without prior_file (dd_bench/pipeline/cvdd_priors.py): the IPC of the single-teacher SRe2L++
        # sets (null: the run's; the official priors are the README's SRe2L++ ResNet-18 cells at IPC 50 on CIFAR, IPC
        # 10 on Tiny, decoupled-methods.md §5(a)) and the protocol scoring them (null: the run's eval)
        prior_ipc: int | None = None
        prior_eval: str | None = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        check_teacher_pool(self.name, c.teachers, c.teacher_weights)
        if not 1 <= c.committee_size <= len(c.teachers):
            raise UserError(f"{self.name}: committee_size {c.committee_size} is larger than the "
                            f"{len(c.teachers)} teacher(s) given ({', '.join(c.teachers)}); use 1 to "
                            f"{len(c.teachers)} or add teachers")
        prior_ipc, prior_eval = getattr(c, "prior_ipc", None), getattr(c, "prior_eval", None)
        if prior_ipc is not None and prior_ipc < 1:
            raise UserError(f"{self.name}: prior_ipc must be >= 1 (or null: the run's ipc); got {prior_ipc}")
        if prior_eval is not None:
            from dd_bench.eval import PROTOCOLS

            if prior_eval not in PROTOCOLS:
                raise UserError(f"{self.name}: Unknown prior_eval '{prior_eval}'; available: "
                                f"{', '.join(PROTOCOLS.list())}")
        if c.iterations < 0 or c.batch_size < 1 or c.jitter < 0 or not c.lr > 0 or c.bn_split < 1 or c.mipc < 1:
            raise UserError(f"{self.name}: iterations >= 0, batch_size >= 1, jitter >= 0, lr > 0, bn_split >= 1 "
                            f"and mipc >= 1 are required; got {c.iterations}, {c.batch_size}, {c.jitter}, "
                            f"{c.lr}, {c.bn_split}, {c.mipc}")

    def _priors(self, real: RealData, pool: list[Teacher], specs: list[dict]) -> tuple[list[float], dict[str, Any]]:
        c = self.cfg
        if c.priors == Priors.equal:
            return [0.0] * len(pool), {"source": "equal", "note": "equal weights (--voter-type equal)"}
        if c.priors == Priors.official:
            if real.name not in OFFICIAL_PRIORS or tuple(c.teachers) != official_pool(real.name):
                own = ", ".join(official_pool(real.name))
                raise UserError(f"{self.name}: priors=official are the repo's numbers for its own five teachers "
                                f"({own}) on {', '.join(OFFICIAL_PRIORS)}; got teachers {', '.join(c.teachers)} on "
                                f"{real.name}: use priors=validation or sre2l_pp")
            return list(OFFICIAL_PRIORS[real.name]), {
                "source": "official", "note": "the official repo's hard-coded priors, measured on the authors' "
                                              "teachers, not these"}
        if c.priors == Priors.sre2l_pp:
            entries = prior_entries(c.prior_file, specs)
            return [float(e["accuracy"]) for e in entries], {
                "source": "sre2l_pp", "file": str(c.prior_file),
                "entries": [{k: e.get(k) for k in ("recipe", "key", "accuracy", "split", "source")} for e in entries],
                "note": "accuracies of students trained on single-teacher SRe2L++ sets, on the split each entry "
                        "names (dd-bench measures them on the validation split; the paper's are test accuracies)"}
        if real.val_images is None:
            raise UserError(f"{self.name}: priors=validation weighs the committee by each teacher's accuracy on "
                            "the validation split, and this run has none: add validation=0.1, or use "
                            "priors=official|sre2l_pp|equal")
        values = [t.validation_accuracy if t.validation_accuracy is not None
                  else accuracy(t.module, real.val_images, real.val_labels, real) for t in pool]
        return values, {"source": "validation", "note": "each teacher's validation-split accuracy, a proxy for "
                                                        "the paper's SRe2L++ priors (never the test set)"}

    def _config_hash(self, real: RealData, ipc: int, seed: int, keys: list[str], priors: list[float]) -> str:
        cfg = {k: v for k, v in self.config_dict().items()  # the priors enter by value
               if k not in ("checkpoint_every", "label_temperature", "teacher_bn_train", "bn_split", "prior_file",
                            "prior_ipc", "prior_eval")}
        return json_sha256({"cfg": cfg, "data": real.fingerprint(), "ipc": ipc, "seed": seed, "teachers": keys,
                            "priors": priors}, 16)

    def _init_images(self, real: RealData, ipc: int, seed: int, observer: Teacher) -> torch.Tensor:
        c, device = self.cfg, real.device
        if c.init == Init.gaussian:
            g = make_generator(seed, "method", self.name, "init")
            return torch.randn((real.num_classes * ipc, real.channels, *real.image_size), generator=g).to(device)
        g_pick = make_generator(seed, "method", self.name, "pick")
        g_crop = make_generator(seed, "method", self.name, "crop", device=device)
        out = []
        for cls in range(real.num_classes):
            pool, candidates = class_candidates(real, cls, mipc=c.mipc, generator=g_pick)
            patches, _ = select_patches(observer.module, candidates, cls, keep=len(pool), num_crop=c.num_crop,
                                        factor=1, generator=g_crop, crop_scale_min=c.init_scale_min)
            out.append(patches[tercile_pick(len(pool), ipc, c.init_difficulty, g_pick).to(device)])
        return torch.cat(out)  # (K*ipc, C, H, W) class-major

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        c, device, k = self.cfg, real.device, real.num_classes
        if c.priors == Priors.sre2l_pp and not c.prior_file:
            raise UserError(f"{self.name}: priors=sre2l_pp needs prior_file=PATH here; `dd-bench run` / `distill` "
                            "measure the priors first (validation split) and pass it "
                            "(dd_bench/pipeline/cvdd_priors.py)")
        pool, (lo, hi) = bounds_and_pool(real, recipes=c.teachers, weights=c.teacher_weights, cache_dir=cache_dir,
                                         progress=progress)
        specs = [teacher_spec(t) for t in pool]
        priors, prior_info = self._priors(real, pool, specs)
        chosen = committees(ipc=ipc, pool_size=len(pool), size=c.committee_size, priors=priors, dataset=real.name,
                            official_pool=tuple(c.teachers) == official_pool(real.name),
                            generator=make_generator(seed, "method", self.name, "committee"))
        images = self._init_images(real, ipc, seed, pool[0]).clone().requires_grad_(True)
        labels = hard_labels(k, ipc, device)
        frozen = frozen_voters([t.module for t in pool], [1.0] * len(pool), first_bn_multiplier=c.first_bn_multiplier)
        chunks = -(-k // c.batch_size)  # recovery batches per ipc id
        committee_weights, batches = [], []
        for j, idx in enumerate(recovery_batches(k, ipc, c.batch_size)):
            members = chosen[j // chunks]
            w = prior_weights([priors[i] for i in members], c.weight_temperature)
            if j % chunks == 0:
                committee_weights.append({"teachers": [c.teachers[i] for i in members], "weights": w})
            idx = idx.to(device)
            batches.append(RecoveryBatch(idx, labels[idx], [Voter(frozen[i].net, frozen[i].bn, wi)
                                                           for i, wi in zip(members, w, strict=True)]))
        status = recover(
            leaf=images, batches=batches, iterations=c.iterations, lr=c.lr, r_bn=c.r_bn, jitter=c.jitter,
            crop=c.crop, crop_scale_min=c.crop_scale_min, image_size=real.image_size,
            flip="flip" in real.dsa_strategy, bounds=(lo, hi),
            generator=make_generator(seed, "method", self.name, "aug", device=device),
            checkpoint_dir=checkpoint_dir, checkpoint_every=c.checkpoint_every,
            config_hash=self._config_hash(real, ipc, seed, [t.key for t in pool], priors), progress=progress,
            desc=f"{self.name} recover ipc{ipc}", stack_voters=c.stack_voters)
        relabel = prior_weights(priors, c.label_temperature) if len(pool) > 1 else None
        return self.new_synset(
            real, ipc=ipc, images=images.detach(), labels=labels, recommended_protocol="kd",
            label_section=LabelsSection(source="teacher", teachers=specs, weights=relabel, bn_train=c.teacher_bn_train,
                                        bn_split=c.bn_split),
            provenance={"distill_status": status, "priors": {**prior_info, "values": priors},
                        "committees": committee_weights, "relabel_weights": relabel})


@METHODS.register("sre2l_pp")
class SRe2LPP(CVDD):
    """SRe2L++: CV-DD's pipeline with one teacher (``recover_sre2l_ipc50.sh``: model_setting 0, equal weight)."""

    name = "sre2l_pp"
    TEST_OPTIONS = {"iterations": 3, "teachers": ["digits_convnet_bn_w32_d2"], "jitter": 1, "mipc": 30,
                    "num_crop": 1, "crop_scale_min": 1.0, "init_scale_min": 1.0}

    @dataclasses.dataclass
    class Config(RecoveryConfig):
        teachers: list[str] = dataclasses.field(default_factory=lambda: ["cvdd_cifar"])
        priors: Priors = Priors.equal
        committee_size: int = 1
