"""Evaluation protocols: frozen, versioned recipes named in every run record.

``mtt`` reproduces the official ``evaluate_synset`` of DC/DSA/DM/MTT/FTD/DATM (trajectory-matching.md §7.4):
a fresh network per seed, SGD (momentum 0.9, weight decay 5e-4), ``epochs + 1`` passes over the set
(ep = 0..epochs), after the pass with ``ep == epochs // 2 + 1`` the lr is multiplied by 0.1 and a fresh SGD is
created (momentum reset), batch 256, lr = the set's learned lr when present else 0.01, DSA on every batch, CE
(soft CE on learned logits), test accuracy once after the last pass. It is the ranking protocol; changing any
field means a new version.

Other protocols exist for paper comparison or the CPU demo and are never ranked beside ``mtt``: ``mtt-fyi`` is
``mtt`` with FYI's modified DSA (trajectory-matching.md section 4e-f), the evaluator of FYI's own tables;
``mtt-ftd-warm`` is FTD's evaluation of its EMA images (a network warm from the raw images), the number FTD's
EMA rows report; ``mtt`` scores the EMA images on fresh networks.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import asdict, dataclass
from typing import Any

from dd_bench.errors import UserError
from dd_bench.eval.kd import KDProtocol
from dd_bench.registry import Registry

PROTOCOLS: Registry = Registry("protocol")


class Augment(enum.StrEnum):
    dsa = "dsa"  # the dataset's DSA strategy on every batch
    dsa_fyi = "dsa_fyi"  # FYI's DSA: flip p=0.5 on every batch, then one other family
    none = "none"
    dc_crop_scale_rotate = "dc_crop_scale_rotate"  # DC's own per-sample augmentation (get_daparam: MNIST)
    dc_crop_noise = "dc_crop_noise"  # DC's own, for a BatchNorm evaluation model (get_daparam: ConvNetBN)


AUGMENT_KINDS = tuple(a.value for a in Augment)


@dataclass(frozen=True)
class EvalProtocol:
    name: str
    version: int
    epochs: int  # the last pass index: epochs + 1 passes in all (ep = 0..epochs), as evaluate_synset
    batch_size: int = 256
    lr: float = 0.01  # used when the set carries no learned lr (or use_learned_lr is False)
    use_learned_lr: bool = True
    momentum: float = 0.9
    weight_decay: float = 5e-4
    decay_factor: float = 0.1  # lr *= decay_factor after the pass with ep == decay_epoch, with a fresh SGD
    # "dsa": the dataset's DSA strategy on every batch; "dsa_fyi": FYI's DSA (flip p=0.5 on every batch, then one
    # other family; needs a strategy with flip); "none"
    augment: str = "dsa"
    test_batch_size: int = 512  # no effect on accuracy (no augmentation, eval mode)
    ranked: bool = True  # ranked protocols share a leaderboard; others are labelled and kept apart
    description: str = ""

    family = "mtt"  # the training recipe family (dd_bench/eval/kd.py is the other); not a field: not hashed
    # Not an option (it was a field that no code read): soft labels always train with soft CE (the label source's
    # loss, dd_bench/train/losses.py). Still in to_dict(), after augment where the field was, so that every record
    # hash and every protocol dict written to a record stay as they were.
    soft_label_loss = "soft_ce"

    def __post_init__(self) -> None:
        if self.augment not in AUGMENT_KINDS:
            raise UserError(f"Unknown augment '{self.augment}'; available: {', '.join(AUGMENT_KINDS)}")
        if self.epochs < 0 or self.batch_size <= 0:
            raise UserError(f"protocol {self.name}: epochs must be >= 0 and batch_size > 0")

    @property
    def passes(self) -> int:
        return self.epochs + 1

    @property
    def decay_epoch(self) -> int:
        """The pass index after which the lr decays (501 for epochs=1000)."""
        return self.epochs // 2 + 1

    def lr_for(self, learned_lr: float | None) -> float:
        return learned_lr if (self.use_learned_lr and learned_lr is not None) else self.lr

    def to_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        at = list(fields).index("augment") + 1
        items = [*fields.items()]
        return dict([*items[:at], ("soft_label_loss", self.soft_label_loss), *items[at:]])

    def resolved(self, *, dataset: str, model: str) -> EvalProtocol:
        """The recipe that trains ``model`` on ``dataset``: the protocol itself, except for rules that depend on
        them (:class:`DatasetRuleProtocol`). Records keep the unresolved protocol: the rule is its identity."""
        return self


@dataclass(frozen=True)
class DatasetRuleProtocol(EvalProtocol):
    """DC's ``main.py`` evaluation (VICO-UoE/DatasetCondensation L118-128 with ``utils.get_daparam``): 300 epochs
    without augmentation, except where ``get_daparam`` turns DC's own augmentation on, and then 1000 epochs: its
    per-sample crop / scale / rotate on MNIST, crop / noise for a ConvNetBN evaluation model (which wins). The rest
    is ``evaluate_synset`` as in ``mtt`` (SGD 0.01, momentum 0.9, wd 5e-4, x0.1 after pass epochs // 2 + 1, batch
    256). A subclass, so the fields of the other protocols (and their hashes) are unchanged."""

    augmented_epochs: int = 1000
    augmented_datasets: tuple[str, ...] = ("mnist",)  # crop_scale_rotate
    augmented_models: tuple[str, ...] = ("convnet_bn",)  # crop_noise (DC's ConvNetBN)

    def resolved(self, *, dataset: str, model: str) -> EvalProtocol:
        if model in self.augmented_models:
            return dataclasses.replace(self, epochs=self.augmented_epochs, augment="dc_crop_noise")
        if dataset in self.augmented_datasets:
            return dataclasses.replace(self, epochs=self.augmented_epochs, augment="dc_crop_scale_rotate")
        return self


@dataclass(frozen=True)
class WarmStartProtocol(EvalProtocol):
    """FTD's EMA number (distill_FTD.py: ``evaluate_synset`` trains ``net_eval`` on the raw images, then the SAME,
    already trained network again on the EMA images, with a fresh optimiser and lr schedule): each seed's network is
    trained under the protocol on the set's raw images (``extras["images_raw"]``), then again on its images, and
    scored after the second stage. A subclass, so the fields of the other protocols (and their hashes) are unchanged.
    """

    warm_start: str = "ftd"


def _register(protocol: EvalProtocol) -> None:
    PROTOCOLS.register(protocol.name)(protocol)


_register(EvalProtocol(
    name="mtt", version=1, epochs=1000,
    description="official evaluate_synset: 1001 passes, x0.1 + fresh SGD after pass 501, batch 256, DSA; ranked"))
_register(EvalProtocol(
    name="quick", version=1, epochs=299, ranked=False,
    description="CPU demo only: 300 passes, same decay rule (after pass epochs//2+1); never ranked beside mtt"))
_register(DatasetRuleProtocol(
    name="dc", version=1, epochs=300, augment="none", ranked=False,
    description="DC paper comparison (main.py + get_daparam): evaluate_synset for 300 epochs without augmentation; "
                "on MNIST DC's per-sample crop / scale / rotate for 1000 epochs (a ConvNetBN model: crop / noise, "
                "1000 epochs); DC's own published numbers; not ranked (mtt ranks DC and DSA)"))
_register(EvalProtocol(
    name="mtt-datm", version=1, epochs=1000, batch_size=128, ranked=False,
    description="DATM paper comparison: mtt with batch 128 and soft CE on learned logits; not ranked"))
_register(EvalProtocol(
    name="mtt-fyi", version=1, epochs=1000, augment="dsa_fyi", ranked=False,
    description="FYI paper comparison: mtt with FYI's DSA (flip p=0.5 on every batch + one other DSA family); "
                "datasets whose strategy has flip only; not ranked"))
_register(WarmStartProtocol(
    name="mtt-ftd-warm", version=1, epochs=1000, ranked=False,
    description="FTD paper comparison: mtt on the raw images, then the same networks (warm) on the EMA images, "
                "as distill_FTD.py scores its EMA sets; FTD sets only (ema_decay > 0); not ranked"))


def _register_kd() -> None:
    _register(KDProtocol(
        name="kd", version=1,
        description="SRe2L's CIFAR recipe: 400 epochs, batch 128, AdamW 1e-3 / wd 0.01, cosine, RandomCrop + flip, "
                    "MixUp 0.8 with the label source on the mixed batch, KL at T=30; ranked"))
    # v2: v1 (30 epochs, lr 1e-3, T=30) left every teacher-labelled student at chance (9.72% on digits: one
    # class): at IPC 1 an epoch is one step, and 30 (or 300) small steps against T=30 targets barely move it.
    _register(KDProtocol(
        name="kd-quick", version=2, epochs=200, lr=1e-2, temperature=1.0, ranked=False,
        description="CPU demo only: the kd recipe with 200 epochs, lr 1e-2 and KL at T=1 (a ConvNet student in "
                    "the demo; at IPC 1 an epoch is one step); never ranked"))
    # v2: RDED's argument.py forces batch 100 on Tiny-ImageNet (L252-254), its test transform is Resize(size // 7 * 8)
    # + CenterCrop(size) (validation/main.py:154-155: 72 -> 64 on Tiny, the identity on CIFAR), and get_parameters
    # (validation/utils.py:67-84) exempts biases and BN from weight decay; v1 had none of the three.
    _register(KDProtocol(
        name="kd-rded", version=2, epochs=300, schedule="half_cosine", eta=2.0, crop="resized_crop",
        crop_scale_min=1.0, mix="cutmix", mix_alpha=1.0, temperature=20.0, batch_rule="rded", best_every=10,
        no_decay_1d=True, test_resize_crop=True, ranked=False,
        description="RDED paper comparison (validation/main.py, argument.py): 300 epochs, AdamW 1e-3 / wd 0.01 on "
                    "weights only (biases and BN exempt, get_parameters), half cosine eta 2, RandomResizedCrop scale "
                    "(1/factor, 1) = (1, 1) on 32x32 + flip, CutMix 1.0, KL at T=20, batch by IPC (10/50/100, x2 for "
                    "100 classes; 100 on Tiny-ImageNet), test images Resize(size // 7 * 8) + CenterCrop(size); final "
                    "epoch, with RDED's best (every 10 epochs in the last 20%) recorded beside it; not ranked"))
    _register(KDProtocol(
        name="kd-sre2l-tiny", version=1, epochs=100, batch_size=256, optimizer="sgd", lr=0.2, momentum=0.9,
        weight_decay=1e-4, schedule="warmup_cosine", warmup_epochs=5, warmup_start=0.01, crop="resized_crop",
        crop_scale_min=0.08, mix="none", temperature=20.0, kl_t_squared=True, ranked=False,
        description="SRe2L's Tiny-ImageNet paper comparison (zeyuanyin/tiny-imagenet train_kd.sh + train_kd.py): "
                    "100 epochs, batch 256, SGD 0.2 / 0.9 / wd 1e-4, 5 linear warm-up epochs from 0.01x then cosine, "
                    "RandomResizedCrop + flip, no mix, the teacher on the same batch, KL at T=20 times T^2; "
                    "not ranked"))
    # v2: INFER's val_static.py / val_dyn.py test every 10 epochs and print the max ("Best"): the published numbers
    # are best during training, so v2 records that column beside the final epoch (training itself is unchanged).
    _register(KDProtocol(
        name="kd-infer", version=2, epochs=400, batch_size=64, best_every=10, best_from=0.0, ranked=False,
        description="INFER paper comparison: 400 epochs, batch 64, AdamW 1e-3 / wd 0.01, cosine, RandomCrop + flip, "
                    "MixUp 0.8 (static labels interpolated as logits), KL at T=30; final epoch, with the paper's "
                    "best (every 10 epochs) beside it; not ranked"))
    _register(KDProtocol(
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
    for name, eta in (("kd-cvdd", 1.0), ("kd-cvdd-eta2", 2.0)):
        _register(KDProtocol(
            name=name, version=2, epochs=300, batch_size=16, schedule="half_cosine", eta=eta, crop="resized_crop",
            crop_scale_min=0.08, mix="cutmix", mix_alpha=1.0, temperature=20.0, best_every=10, best_from=0.0,
            accumulation_steps=2, no_decay_1d=True, ranked=False,
            description=f"CV-DD / SRe2L++ paper comparison (validate/train_fkd.py): 300 epochs, batch 16 (labels "
                        "and augmentation per batch of 16) run as micro-batches of 8 with 2-step gradient "
                        f"accumulation, AdamW 1e-3 / wd 0.01 on weights only (biases and BN exempt: get_parameters, "
                        f"utils_validate.py:67-81), half cosine eta {eta:g}, RandomResizedCrop (0.08, 1) + flip, "
                        "CutMix 1.0, KL at T=20 (FKD labels: label_source=fkd); final epoch, with the paper's best "
                        "(every 10 epochs) beside it; not ranked"))


_register_kd()


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name`` (``mtt``, ``kd``, ``quick``, ...; ``conf/eval/<name>.yaml``'s stem).

    An unknown name raises :class:`~dd_bench.errors.UserError` listing the registered ones.
    """
    return PROTOCOLS.get(name)


def custom_protocol(base: str, **overrides: Any) -> EvalProtocol:
    """A variant of a registered protocol; it is unranked and named ``<base>+custom`` so it never poses as it."""
    protocol = get_protocol(base)
    fields = {f.name for f in dataclasses.fields(protocol)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserError(f"Unknown field(s) {unknown} for protocol '{base}'; available: {', '.join(sorted(fields))}")
    overrides = {k: v.value if isinstance(v, enum.Enum) else v for k, v in overrides.items()}
    return dataclasses.replace(protocol, **overrides, name=f"{base}+custom", ranked=False)
