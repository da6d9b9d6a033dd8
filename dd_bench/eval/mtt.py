"""The `mtt` recipe: SGD on the set's own labels, the protocols that use it, and its training function.

``mtt`` reproduces the official ``evaluate_synset`` of DC/DSA/DM/MTT/FTD/DATM (trajectory-matching.md §7.4):
a fresh network per seed, SGD (momentum 0.9, weight decay 5e-4), ``epochs + 1`` passes over the set
(ep = 0..epochs), after the pass with ``ep == epochs // 2 + 1`` the lr is multiplied by 0.1 and a fresh SGD is
created (momentum reset), batch 256, lr = the set's learned lr when present else 0.01, DSA on every batch, CE
(soft CE on learned logits), test accuracy once after the last pass. It is the ranking protocol; changing any
field means a new version.

Other protocols exist for paper comparison or the CPU demo and are never ranked beside ``mtt``: ``mtt-fyi`` is
``mtt`` with FYI's modified DSA (trajectory-matching.md section 4e-f), the evaluator of FYI's own tables;
``dc`` is DC's own evaluation, whose epochs and augmentation depend on the dataset and model
(:class:`DatasetRuleProtocol`); ``mtt-ftd-warm`` is FTD's evaluation of its EMA images (a network warm from the raw
images, :class:`WarmStartProtocol`), the number FTD's EMA rows report; ``mtt`` scores the EMA images on fresh
networks.

Training runs over the shared loop (:mod:`dd_bench.train`): hard or stored-probability targets (CE / soft CE).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from dd_bench.augment import DSA, create_augment
from dd_bench.augment.dc_aug import DCAugment
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.eval.protocol import EvalProtocol, register_protocol
from dd_bench.eval.result import EvalResult
from dd_bench.eval.scoring import score
from dd_bench.tracking.provenance import PeakMemory
from dd_bench.train import OptimizerSpec, StepDecay, TrainedNetworks
from dd_bench.train import train_networks as train_with_recipe
from dd_bench.train.loop import Replay, Transform
from dd_bench.train.targets import label_source_for

if TYPE_CHECKING:
    from dd_bench.synset import SyntheticSet


# The names of dd_bench/augment/named.py this recipe accepts (the Hydra schema's eval.augment choices).
class Augment(enum.StrEnum):
    dsa = "dsa"  # the dataset's DSA strategy on every batch
    dsa_fyi = "dsa_fyi"  # FYI's DSA: flip p=0.5 on every batch, then one other family
    none = "none"
    dc_crop_scale_rotate = "dc_crop_scale_rotate"  # DC's own per-sample augmentation (get_daparam: MNIST)
    dc_crop_noise = "dc_crop_noise"  # DC's own, for a BatchNorm evaluation model (get_daparam: ConvNetBN)


AUGMENT_KINDS = tuple(a.value for a in Augment)


@dataclass(frozen=True)
class MTTProtocol(EvalProtocol):
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

    family = "mtt"
    trains_by_kd = False
    cpu_protocol = "quick"
    scores_paper_selection = True
    augmentation_off = {"augment": "none"}
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

    @property
    def length(self) -> str:
        return f"{self.passes} passes"

    def lr_for(self, learned_lr: float | None) -> float:
        return learned_lr if (self.use_learned_lr and learned_lr is not None) else self.lr

    def to_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        at = list(fields).index("augment") + 1
        items = [*fields.items()]
        return dict([*items[:at], ("soft_label_loss", self.soft_label_loss), *items[at:]])

    def resolved(self, *, dataset: str, model: str) -> MTTProtocol:
        """The recipe that trains ``model`` on ``dataset``: the protocol itself, except for rules that depend on
        them (:class:`DatasetRuleProtocol`). Records keep the unresolved protocol: the rule is its identity."""
        return self

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
        label_source: Any = None,
        replay: Replay | None = None,
        warm_images: torch.Tensor | None = None,
    ) -> EvalResult:
        """SGD on the targets themselves (no label source); with ``warm_images`` each seed's network first learns
        them, then continues on ``images`` with a fresh SGD and schedule (FTD's warm start)."""
        if label_source is not None:
            raise UserError(f"protocol '{self.name}' trains on the set's own labels; a label source needs a kd "
                            "protocol (eval=kd, eval=kd-quick)")
        device = real.device
        trains = self.resolved(dataset=real.name, model=model)  # dc: its epochs and augmentation for this pair
        augment = make_augment(real, trains)
        if isinstance(augment, DCAugment):
            batched = False  # DC's crop fills with the batch's channel means: one seed's batch at a time
        tracker = PeakMemory(device)
        start = time.perf_counter()
        with tracker:
            common = dict(model=model, targets=targets, num_classes=real.num_classes, protocol=trains, lr=lr,
                          seeds=seeds, augment=augment, transform=transform, batched=batched,
                          progress=progress)
            warm = None if warm_images is None else train_networks(images=warm_images, desc=f"{desc} (raw)", **common)
            trained = train_networks(images=images, desc=desc, start=warm, stage=0 if warm is None else 1, **common)
            accuracies = score(trained, real, self)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return EvalResult(
            model=model, protocol=self.name, protocol_version=self.version, seeds=list(seeds),
            accuracies=accuracies, eval_seconds=time.perf_counter() - start, peak_memory=tracker.as_dict(), lr=lr,
            batched=trained.batched)


@dataclass(frozen=True)
class DatasetRuleProtocol(MTTProtocol):
    """DC's ``main.py`` evaluation (VICO-UoE/DatasetCondensation L118-128 with ``utils.get_daparam``): 300 epochs
    without augmentation, except where ``get_daparam`` turns DC's own augmentation on, and then 1000 epochs: its
    per-sample crop / scale / rotate on MNIST, crop / noise for a ConvNetBN evaluation model (which wins). The rest
    is ``evaluate_synset`` as in ``mtt`` (SGD 0.01, momentum 0.9, wd 5e-4, x0.1 after pass epochs // 2 + 1, batch
    256). A subclass, so the fields of the other protocols (and their hashes) are unchanged."""

    augmented_epochs: int = 1000
    augmented_datasets: tuple[str, ...] = ("mnist",)  # crop_scale_rotate
    augmented_models: tuple[str, ...] = ("convnet_bn",)  # crop_noise (DC's ConvNetBN)

    def resolved(self, *, dataset: str, model: str) -> MTTProtocol:
        if model in self.augmented_models:
            return dataclasses.replace(self, epochs=self.augmented_epochs, augment="dc_crop_noise")
        if dataset in self.augmented_datasets:
            return dataclasses.replace(self, epochs=self.augmented_epochs, augment="dc_crop_scale_rotate")
        return self


@dataclass(frozen=True)
class WarmStartProtocol(MTTProtocol):
    """FTD's EMA number (distill_FTD.py: ``evaluate_synset`` trains ``net_eval`` on the raw images, then the SAME,
    already trained network again on the EMA images, with a fresh optimiser and lr schedule): each seed's network is
    trained under the protocol on the set's raw images (``extras["images_raw"]``), then again on its images, and
    scored after the second stage. A subclass, so the fields of the other protocols (and their hashes) are unchanged.
    """

    warm_start: str = "ftd"  # the only warm start there is; any other value trains fresh networks, as mtt

    def warm_images(self, synset: SyntheticSet) -> torch.Tensor | None:
        if self.warm_start != "ftd":
            return None
        raw = synset.extras.get("images_raw")
        if raw is None:
            raise UserError(f"protocol '{self.name}' trains on the set's raw images before its EMA images; this "
                            f"{synset.method} set has none (only FTD sets with ema_decay > 0 keep them): use eval=mtt")
        return raw


def make_augment(real: RealData, protocol: MTTProtocol) -> DSA | DCAugment | None:
    """The protocol's training augmentation for ``real``'s images; ``dsa_fyi`` fails for strategies without flip."""
    try:
        return create_augment(protocol.augment, real=real)
    except ValueError as err:
        raise UserError(f"protocol '{protocol.name}' cannot evaluate on dataset '{real.name}': {err}") from None


def protocol_optimizer(protocol: MTTProtocol) -> OptimizerSpec:
    return OptimizerSpec("sgd", momentum=protocol.momentum, weight_decay=protocol.weight_decay)


def protocol_schedule(protocol: MTTProtocol) -> StepDecay:
    return StepDecay(decay_epoch=protocol.decay_epoch, factor=protocol.decay_factor)


def train_networks(
    *,
    model: str,
    images: torch.Tensor | list[torch.Tensor],
    targets: torch.Tensor | list[torch.Tensor],
    num_classes: int,
    protocol: MTTProtocol,
    lr: float,
    seeds: list[int],
    augment: object | None,
    transform: Transform | None = None,
    batched: bool | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    desc: str = "",
    model_kwargs: dict | None = None,
    start: TrainedNetworks | None = None,
    stage: int = 0,
) -> TrainedNetworks:
    """Train one fresh ``model`` per seed on ``(images, targets)`` under an `mtt` ``protocol`` (already resolved):
    SGD with momentum and weight decay, ``epochs + 1`` passes, the official step decay.

    targets: (N,) int64 class indices or (N, K) float probabilities; a list per seed when images is one.
    See :func:`dd_bench.train.train_networks` for the rest.
    """
    labels = ([label_source_for(t) for t in targets] if isinstance(targets, (list, tuple))
              else label_source_for(targets))
    return train_with_recipe(
        model=model, images=images, labels=labels, num_classes=num_classes, passes=protocol.passes,
        batch_size=protocol.batch_size, optimizer=protocol_optimizer(protocol), lr=lr,
        schedule=protocol_schedule(protocol), seeds=seeds, augment=augment, transform=transform, batched=batched,
        max_steps=max_steps, progress=progress, desc=desc, model_kwargs=model_kwargs, start=start, stage=stage)


register_protocol(MTTProtocol(
    name="mtt", version=1, epochs=1000,
    description="official evaluate_synset: 1001 passes, x0.1 + fresh SGD after pass 501, batch 256, DSA; ranked"))
register_protocol(MTTProtocol(
    name="quick", version=1, epochs=299, ranked=False,
    description="CPU demo only: 300 passes, same decay rule (after pass epochs//2+1); never ranked beside mtt"))
register_protocol(DatasetRuleProtocol(
    name="dc", version=1, epochs=300, augment="none", ranked=False,
    description="DC paper comparison (main.py + get_daparam): evaluate_synset for 300 epochs without augmentation; "
                "on MNIST DC's per-sample crop / scale / rotate for 1000 epochs (a ConvNetBN model: crop / noise, "
                "1000 epochs); DC's own published numbers; not ranked (mtt ranks DC and DSA)"))
register_protocol(MTTProtocol(
    name="mtt-datm", version=1, epochs=1000, batch_size=128, ranked=False,
    description="DATM paper comparison: mtt with batch 128 and soft CE on learned logits; not ranked"))
register_protocol(MTTProtocol(
    name="mtt-fyi", version=1, epochs=1000, augment="dsa_fyi", ranked=False,
    description="FYI paper comparison: mtt with FYI's DSA (flip p=0.5 on every batch + one other DSA family); "
                "datasets whose strategy has flip only; not ranked"))
register_protocol(WarmStartProtocol(
    name="mtt-ftd-warm", version=1, epochs=1000, ranked=False,
    description="FTD paper comparison: mtt on the raw images, then the same networks (warm) on the EMA images, "
                "as distill_FTD.py scores its EMA sets; FTD sets only (ema_decay > 0); not ranked"))
