"""The `kd` recipe (SRe2L, RDED, CV-DD, INFER, NRR-DD, HeLlO), the protocols that use it, and its training function:
a fresh student distilled from a label source by KL at temperature T, on the device, with per-sample augmentation.

``kd`` v1 (ranked) is frozen as SRe2L's CIFAR recipe (decoupled-methods.md §2.1, ``relabel_cifar.py``): 400
epochs, batch 128, AdamW (lr 1e-3, wd 0.01), cosine with T_max = epochs (stepped per epoch), per-sample
RandomCrop (pad = size / 8, zero pixels) + flip (none where the dataset's DSA drops it, e.g. digits), MixUp
(alpha 0.8) with the label source evaluated on the mixed batch, KL at T = 30 (batchmean, no T^2), test accuracy
once after the last epoch. The student is the model list (the CIFAR ResNet-18 in the paper presets).
``kd-quick`` v2 (unranked) is the recipe cut to the CPU demo: 200 epochs, lr 1e-2, T = 1. At IPC 1 on digits an
epoch is ONE step (10 images, batch 128); with the kd recipe's lr 1e-3 and T = 30 a fresh student moved by 200
such steps still predicts one class for teacher labels (measured 9.7% at 30 epochs, 15-40% at 300), so the
demo protocol takes 10x the lr and KL at T = 1 (measured on digits IPC 1, 3 students: RDED with its observer
71/67/75% vs a random subset with hard labels 62/67/64%). Its numbers say nothing about kd's.
A hard-label set (a random real subset) is trained under the same recipe with its one-hot labels mixed as the
images are (soft CE): the row that shows how much of a method's number comes from its labels.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from dd_bench.augment.crop_flip import NoCrop
from dd_bench.augment.mix import CutMix, KDAugment, MixUp
from dd_bench.augment.named import create_augment
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.eval.protocol import EvalProtocol, register_protocol
from dd_bench.eval.result import EvalResult
from dd_bench.eval.scoring import score
from dd_bench.labels import LabelSource, MixedLabels
from dd_bench.tracking.provenance import PeakMemory
from dd_bench.train import Cosine, HalfCosine, OptimizerSpec, WarmupCosine, train_networks
from dd_bench.train.loop import Replay, Transform

SCHEDULES = ("cosine", "half_cosine", "warmup_cosine")
MIXES = ("mixup", "cutmix", "none")
# kd's crop names (in every kd protocol's hash, so they stay) -> the augmentation of dd_bench/augment/named.py they
# build. none: no crop or flip (DD-Ranking's ARS "without augmentation").
CROPS = {"random_crop": "crop_flip", "resized_crop": "resized_crop_flip", "none": "none"}
BATCH_RULES = ("fixed", "rded")

__all__ = ["KD_CPU_BATCHED_UP_TO", "KDProtocol", "NoCrop", "T2Scaled"]  # NoCrop: re-exported from its old home


@dataclass
class T2Scaled:
    """A label source whose KL is multiplied by ``factor`` (T^2): the recipes that keep Hinton's factor."""

    source: LabelSource
    factor: float

    @property
    def name(self) -> str:
        return self.source.name

    def targets(self, x_aug: torch.Tensor, idx: torch.Tensor, epoch: int, aug_params: dict | None):
        t = self.source.targets(x_aug, idx, epoch, aug_params)
        if t.loss.kind != "kl":  # hard labels under the same recipe keep their plain (soft) CE
            return t
        return dataclasses.replace(t, loss=dataclasses.replace(t.loss, scale=t.loss.scale * self.factor))


# A kd step carries more small ops than an `mtt` one (crop, mix, label source, AdamW over every tensor); on sets of a
# few tiny images they, not the convolutions, are the cost, and one vmapped step for all seeds beats S steps.
# scripts/cpu_bench_kd_batching.py (results/cpu_bench_kd_batching.json; 2 CPU cores, kd-quick, 3 ConvNet seeds):
# batched took 0.78-0.86x the sequential time at 640-1,920 pixels a pass (digits IPC 1-3) and 1.07-1.15x at
# 3,200-6,400 (IPC 5-10). The mtt protocol at IPC 1 gains nothing (7.7 s vs 7.6 s) and keeps the sequential path.
# In pixels per pass (images x H x W).
KD_CPU_BATCHED_UP_TO = 2048


def best_checks(epochs: int, *, every: int, after: float) -> list[int]:
    """After which passes (1-based counts) the best-during-training accuracy is checked: RDED's rule
    (validation/main.py:176-181), a pass whose 0-based index e has ``e % every == every - 1`` and ``e > after * epochs``
    (the final pass is counted in any case, as the final accuracy). ``every`` 0: never."""
    if not every:
        return []
    return [e + 1 for e in range(epochs) if e % every == every - 1 and e > after * epochs]


@dataclass(frozen=True)
class KDProtocol(EvalProtocol):
    name: str
    version: int
    epochs: int = 400
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # cosine (T_max = epochs) | half_cosine (eta, §1.5) | warmup_cosine (linear warm-up)
    eta: float = 2.0
    warmup_epochs: int = 5  # warmup_cosine
    warmup_start: float = 0.01  # warmup_cosine: the first epoch's lr factor
    crop: str = "random_crop"  # random_crop (RandomCrop(size, pad) + flip) | resized_crop (RandomResizedCrop + flip)
    crop_pad: int | None = None  # random_crop: None = image size / 8
    crop_scale_min: float = 0.08  # resized_crop: scale (min, 1)
    mix: str = "mixup"  # mixup | cutmix | none
    mix_alpha: float = 0.8
    batch_rule: str = "fixed"  # fixed (batch_size) | rded (RDED's argument.py: by IPC and class count)
    temperature: float = 30.0
    kl_t_squared: bool = False  # multiply the KL by T^2 (Hinton's factor; SRe2L's Tiny-ImageNet student)
    # The "best test accuracy seen during training" several papers report (RDED: every 10 epochs in the last 20%):
    # recorded beside the final number, labelled, never ranked and never used to select anything. 0: off.
    best_every: int = 0
    best_from: float = 0.8  # fraction of the epochs after which it is checked
    test_batch_size: int = 512
    ranked: bool = True
    description: str = ""
    # The student runs on micro-batches of ceil(batch / steps) images, one backward each with its loss divided by
    # steps, and one optimiser step per batch (CV-DD's --gradient-accumulation-steps, train_fkd.py:363-394): the
    # gradient of a full batch is unchanged, the student's train-mode BN sees the micro-batch. Left out of
    # to_dict() at 1, so the hashes of the protocols without it are unchanged.
    accumulation_steps: int = 1
    # RDED's get_parameters (validation/utils.py:67-84): biases and BN parameters without weight decay.
    no_decay_1d: bool = False
    # RDED's test transform (validation/main.py:154-155): Resize(size // 7 * 8) + CenterCrop(size) on the test
    # images: 72 -> 64 on Tiny-ImageNet, the identity on 32x32 (32 // 7 * 8 = 32).
    test_resize_crop: bool = False

    family = "kd"
    trains_by_kd = True
    cpu_protocol = "kd-quick"
    scores_paper_selection = False
    augmentation_off = {"crop": "none", "mix": "none"}
    # Fields added after v1 of the protocols that do not use them: left out of to_dict() at these values, so the
    # hashes (and the records) of those protocols are unchanged.
    _OMITTED_AT_DEFAULT = {"accumulation_steps": 1, "no_decay_1d": False, "test_resize_crop": False}

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise UserError(f"Unknown kd schedule '{self.schedule}'; available: {', '.join(SCHEDULES)}")
        if self.mix not in MIXES:
            raise UserError(f"Unknown kd mix '{self.mix}'; available: {', '.join(MIXES)}")
        if self.crop not in CROPS:
            raise UserError(f"Unknown kd crop '{self.crop}'; available: {', '.join(CROPS)}")
        if self.batch_rule not in BATCH_RULES:
            raise UserError(f"Unknown kd batch rule '{self.batch_rule}'; available: {', '.join(BATCH_RULES)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError(f"protocol {self.name}: epochs and batch_size must be >= 1")
        if self.accumulation_steps < 1 or self.batch_size % self.accumulation_steps:
            # train_fkd.py:364 asserts batch_size % gradient_accumulation_steps == 0
            raise UserError(f"protocol {self.name}: accumulation_steps {self.accumulation_steps} must be >= 1 and "
                            f"divide batch_size {self.batch_size}")

    @property
    def passes(self) -> int:
        return self.epochs

    @property
    def length(self) -> str:
        return f"{self.epochs} epochs"

    def lr_for(self, learned_lr: float | None) -> float:
        return self.lr  # the kd family never uses a learned lr

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "family": self.family}
        for key, default in self._OMITTED_AT_DEFAULT.items():
            if d[key] == default:
                del d[key]
        return d

    def augment(self, real: RealData) -> KDAugment:
        crop = create_augment(CROPS[self.crop], real=real, pad=self.crop_pad, scale_min=self.crop_scale_min)
        crop = NoCrop() if crop is None else crop  # KDAugment always crops: the identity draws nothing
        mix = {"mixup": lambda: MixUp(alpha=self.mix_alpha), "none": lambda: None,
               "cutmix": lambda: CutMix(alpha=self.mix_alpha, image_size=real.image_size)}[self.mix]()
        return KDAugment(crop=crop, mix=mix)

    def batch_for(self, num_images: int, num_classes: int, dataset: str | None = None) -> int:
        """The batch size for a set of ``num_images``: fixed, or RDED's rule (argument.py:233-258: IPC 1/10/50 ->
        10/50/100, x2 from 100 classes; Tiny-ImageNet always 100, L252-254), never above the set's size."""
        if self.batch_rule == "fixed":
            return self.batch_size
        if dataset == "tiny_imagenet":
            return min(100, num_images)
        ipc = max(1, num_images // num_classes)
        batch = {1: 10, 10: 50, 50: 100}.get(ipc, self.batch_size)
        batch *= 2 if num_classes >= 100 else 1
        return min(batch, num_images)

    def lr_schedule(self) -> Cosine | HalfCosine | WarmupCosine:
        if self.schedule == "warmup_cosine":
            return WarmupCosine(self.epochs, self.warmup_epochs, self.warmup_start)
        return Cosine(t_max=self.epochs) if self.schedule == "cosine" else HalfCosine(self.epochs, self.eta)

    def train_and_score(
        self,
        *,
        model: str,
        images: torch.Tensor | list[torch.Tensor],
        targets: torch.Tensor | list[torch.Tensor],
        real: RealData,
        lr: float,
        seeds: list[int],
        transform: Transform | None,
        batched: bool | None = None,
        progress: bool = True,
        desc: str = "",
        label_source: LabelSource | list[LabelSource] | None = None,
        replay: Replay | None = None,
        warm_images: torch.Tensor | None = None,
    ) -> EvalResult:
        """Distil one fresh student per seed from ``label_source`` (None: the targets, mixed as the images are,
        :class:`MixedLabels`) and score each on the test set. ``lr`` is unused: the recipe fixes its own."""
        if warm_images is not None:
            raise ValueError(f"protocol '{self.name}' has no warm start")
        if label_source is None:
            label_source = ([MixedLabels(t, real.num_classes) for t in targets] if isinstance(targets, (list, tuple))
                            else MixedLabels(targets, real.num_classes))
        first = label_source[0] if isinstance(label_source, (list, tuple)) else label_source
        extra = {"label_source": getattr(first, "name", "hard")}
        labels = label_source
        if self.kl_t_squared:
            labels = ([T2Scaled(s, self.temperature ** 2) for s in labels] if isinstance(labels, (list, tuple))
                      else T2Scaled(labels, self.temperature ** 2))
        best: dict[int, float] = {}
        checked: list[int] = []

        check_at = set(best_checks(self.epochs, every=self.best_every, after=self.best_from))

        def track_best(ep: int, networks) -> None:
            done = ep + 1
            if done not in check_at:
                return
            for seed, acc in zip(networks.seeds, score(networks, real, self), strict=True):
                best[seed] = max(best.get(seed, 0.0), acc)
            if done not in checked:
                checked.append(done)

        tracker = PeakMemory(real.device)
        start = time.perf_counter()
        with tracker:
            trained = train_networks(
                model=model, images=images, labels=labels, num_classes=real.num_classes, passes=self.epochs,
                batch_size=self.batch_for(len(images[0] if isinstance(images, (list, tuple)) else images),
                                          real.num_classes, real.name),
                optimizer=OptimizerSpec(self.optimizer, momentum=self.momentum, weight_decay=self.weight_decay,
                                        no_decay_1d=self.no_decay_1d),
                lr=self.lr, schedule=self.lr_schedule(), seeds=seeds, augment=self.augment(real),
                transform=transform, batched=batched, progress=progress, desc=desc, replay=replay,
                after_pass=track_best if self.best_every else None, cpu_batched_up_to=KD_CPU_BATCHED_UP_TO,
                accumulation_steps=self.accumulation_steps)
            accuracies = score(trained, real, self)
        if real.device.type == "cuda":
            torch.cuda.synchronize(real.device)
        seconds = time.perf_counter() - start
        if self.best_every:
            extra["best_during_training"] = {
                "accuracies": [max(best.get(s, 0.0), a) for s, a in zip(seeds, accuracies, strict=True)],
                "epochs_checked": checked,
                "note": "best test accuracy seen during training (as the papers report it, also counting the final "
                        "epoch); labelled, never ranked, never used for selection"}
        return EvalResult(model=model, protocol=self.name, protocol_version=self.version, seeds=list(seeds),
                          accuracies=accuracies, eval_seconds=seconds, peak_memory=tracker.as_dict(), lr=self.lr,
                          batched=trained.batched, extra=extra)


register_protocol(KDProtocol(
    name="kd", version=1,
    description="SRe2L's CIFAR recipe: 400 epochs, batch 128, AdamW 1e-3 / wd 0.01, cosine, RandomCrop + flip, "
                "MixUp 0.8 with the label source on the mixed batch, KL at T=30; ranked"))
# v2: v1 (30 epochs, lr 1e-3, T=30) left every teacher-labelled student at chance (9.72% on digits: one
# class): at IPC 1 an epoch is one step, and 30 (or 300) small steps against T=30 targets barely move it.
register_protocol(KDProtocol(
    name="kd-quick", version=2, epochs=200, lr=1e-2, temperature=1.0, ranked=False,
    description="CPU demo only: the kd recipe with 200 epochs, lr 1e-2 and KL at T=1 (a ConvNet student in "
                "the demo; at IPC 1 an epoch is one step); never ranked"))
# v3: the best-during-training checks are RDED's (validation/main.py:176-181: after epoch index e when e % 10 == 9
# and e > 0.8 * epochs, i.e. after 250, 260, ..., 300 of 300 passes); v2 also checked after 240.
# v2: RDED's argument.py forces batch 100 on Tiny-ImageNet (L252-254), its test transform is Resize(size // 7 * 8)
# + CenterCrop(size) (validation/main.py:154-155: 72 -> 64 on Tiny, the identity on CIFAR), and get_parameters
# (validation/utils.py:67-84) exempts biases and BN from weight decay; v1 had none of the three.
register_protocol(KDProtocol(
    name="kd-rded", version=3, epochs=300, schedule="half_cosine", eta=2.0, crop="resized_crop",
    crop_scale_min=1.0, mix="cutmix", mix_alpha=1.0, temperature=20.0, batch_rule="rded", best_every=10,
    no_decay_1d=True, test_resize_crop=True, ranked=False,
    description="RDED paper comparison (validation/main.py, argument.py): 300 epochs, AdamW 1e-3 / wd 0.01 on "
                "weights only (biases and BN exempt, get_parameters), half cosine eta 2, RandomResizedCrop scale "
                "(1/factor, 1) = (1, 1) on 32x32 + flip, CutMix 1.0, KL at T=20, batch by IPC (10/50/100, x2 for "
                "100 classes; 100 on Tiny-ImageNet), test images Resize(size // 7 * 8) + CenterCrop(size); final "
                "epoch, with RDED's best (every 10 epochs in the last 20%) recorded beside it; not ranked"))
register_protocol(KDProtocol(
    name="kd-sre2l-tiny", version=1, epochs=100, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9,
    weight_decay=1e-4, schedule="warmup_cosine", warmup_epochs=5, warmup_start=0.01, crop="resized_crop",
    crop_scale_min=0.08, mix="none", temperature=20.0, kl_t_squared=True, ranked=False,
    description="SRe2L's Tiny-ImageNet paper comparison (zeyuanyin/tiny-imagenet train_kd.sh + train_kd.py): "
                "100 epochs, batch 256, SGD 0.2 / 0.9 / wd 1e-4, 5 linear warm-up epochs from 0.01x then cosine, "
                "RandomResizedCrop + flip, no mix, the teacher on the same batch, KL at T=20 times T^2; "
                "not ranked"))
# v2: INFER's val_static.py / val_dyn.py test every 10 epochs and print the max ("Best"): the published numbers
# are best during training, so v2 records that column beside the final epoch (training itself is unchanged).
register_protocol(KDProtocol(
    name="kd-infer", version=2, epochs=400, batch_size=64, best_every=10, best_from=0.0, ranked=False,
    description="INFER paper comparison: 400 epochs, batch 64, AdamW 1e-3 / wd 0.01, cosine, RandomCrop + flip, "
                "MixUp 0.8 (static labels interpolated as logits), KL at T=30; final epoch, with the paper's "
                "best (every 10 epochs) beside it; not ranked"))
register_protocol(KDProtocol(
    name="kd-infer-dyn", version=2, epochs=80, batch_size=64, best_every=10, best_from=0.0, ranked=False,
    description="INFER+Dyn paper comparison (val_dyn.py): kd-infer with 80 epochs (400 / (M + 1): the instance "
                "set is M + 1 times larger), the teachers' ensemble online on every MixUp batch; final epoch, "
                "with the paper's best (every 10 epochs) beside it; not ranked"))

# CV-DD's validate/train_fkd.py: 300 epochs, FKD batches of 16 replayed, AdamW (lr per table) / wd 0.01,
# LambdaLR 0.5 (1 + cos(pi e / (E eta))) per epoch, RandomResizedCrop (0.08, 1) + flip, CutMix 1.0, KL at T=20,
# best_acc1 over tests every 10 epochs. eta is 1 or 2 per (dataset, student, IPC): one protocol per value.
# v2: weight decay on weights only (train_fkd.py:285 builds AdamW over get_parameters), and the student runs on
# micro-batches of 8 with 2 accumulation steps, as all 90 validate scripts pass
# --gradient-accumulation-steps 2 (train_fkd.py:363-394); v1 ran one batch of 16 (the same gradient, but the
# student's train-mode BN normalised 16 images instead of 8).
def _cvdd(name: str, eta: float) -> KDProtocol:
    return KDProtocol(
        name=name, version=2, epochs=300, batch_size=16, schedule="half_cosine", eta=eta, crop="resized_crop",
        crop_scale_min=0.08, mix="cutmix", mix_alpha=1.0, temperature=20.0, best_every=10, best_from=0.0,
        accumulation_steps=2, no_decay_1d=True, ranked=False,
        description=f"CV-DD / SRe2L++ paper comparison (validate/train_fkd.py): 300 epochs, batch 16 (labels "
                    "and augmentation per batch of 16) run as micro-batches of 8 with 2-step gradient "
                    f"accumulation, AdamW 1e-3 / wd 0.01 on weights only (biases and BN exempt: get_parameters, "
                    f"utils_validate.py:67-81), half cosine eta {eta:g}, RandomResizedCrop (0.08, 1) + flip, "
                    "CutMix 1.0, KL at T=20 (FKD labels: label_source=fkd); final epoch, with the paper's best "
                    "(every 10 epochs) beside it; not ranked")


register_protocol(_cvdd("kd-cvdd", 1.0))
register_protocol(_cvdd("kd-cvdd-eta2", 2.0))
