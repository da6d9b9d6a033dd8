"""Teacher recipes: how a teacher network is trained on the real training set, named by the method cards.

A recipe is everything that changes the trained weights; :meth:`TeacherRecipe.key` hashes it with the data
fingerprint (so a validation split, which removes training images, is part of the key) and
:data:`TEACHERS_CODE_VERSION`. Recipes are registered by name (``teacher=sre2l_cifar`` in presets):

* ``sre2l_cifar`` (SRe2L and RDED on CIFAR, decoupled-methods.md §2.1): the CIFAR ResNet-18 (3x3 stem, no
  max-pool), SGD lr 0.1, momentum 0.9, wd 5e-4, cosine over 200 epochs, batch 128, RandomCrop(32, 4) + flip.
* ``cvdd_cifar`` (CV-DD's committee, §5): Adam lr 1e-3, wd 1e-4, cosine over 200 epochs, batch 512, the same crops;
  ``cvdd_cifar_{resnet50,shufflenetv2,mobilenetv2,densenet121}`` the rest of its committee; ``cvdd_tiny*`` the
  same five for Tiny-ImageNet (SGD 0.01, 50 epochs, batch 128).
* ``infer_cifar_{resnet18,mobilenetv2,efficientnet_b0,shufflenetg2}``: INFER's four teachers with kuangliu's CIFAR
  recipe (SGD 0.1, cosine, 200 epochs, batch 128).
* ``rded_observer_cifar``: RDED's observer, a reading of torchvision's classification reference (SGD 0.1, wd 1e-4,
  steplr 30 / 0.1, 90 epochs, batch 32, RandomResizedCrop + flip), labelled as one.
* ``rded_observer_cifar_conv3``: the same reading on RDED's conv3 (ConvNet width 128, depth 3, batch norm:
  ``convnet_bn``), the observer of RDED's conv3 -> conv3 scripts; with ``method.teacher_weights`` it names the
  architecture a conv3 weights file is loaded into.
* ``digits_convnet_bn_w{32,64}_d{2,3}``: the digits pool (the CIFAR architectures do not fit 8x8): ConvNet-BN width
  and depth variants, SGD 0.01 / 0.9 / 5e-4, cosine over 10 epochs, batch 64, crops with 1 pixel of padding and no
  flip (flips are wrong for digits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import json_sha256
from dd_bench.models import MODELS, list_models
from dd_bench.registry import Registry
from dd_bench.train import OPTIMIZER_KINDS

# Bump when a code change alters the weights a recipe produces: cached teachers then get a new key.
TEACHERS_CODE_VERSION = 1
SCHEDULES = ("cosine", "warmup_cosine", "constant", "step")
AUGMENTS = ("crop_flip", "resized_crop_flip", "none")  # the names of dd_bench/augment/named.py a recipe accepts


@dataclass(frozen=True)
class TeacherRecipe:
    model: str = "resnet18_cifar"
    model_kwargs: tuple[tuple[str, Any], ...] | Mapping[str, Any] = field(default=())
    epochs: int = 200
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    schedule: str = "cosine"  # cosine (T_max = epochs, stepped per epoch) | warmup_cosine | constant | step
    warmup_epochs: int = 0  # warmup_cosine: linear warm-up epochs from warmup_start x lr (torchvision reference)
    warmup_start: float = 0.01
    step_size: int = 30  # step: lr x gamma every step_size epochs (torchvision reference's steplr)
    gamma: float = 0.1
    # RandomCrop(size, pad) + flip (no flip where the dataset's DSA drops it) | RandomResizedCrop(0.08, 1) + flip | none
    augment: str = "crop_flip"
    crop_pad: int | None = None  # None: image size / 8 (4 on 32x32, 1 on 8x8)
    seed: int = 0

    def __post_init__(self) -> None:
        kwargs = self.model_kwargs
        kwargs = tuple(sorted(kwargs.items())) if isinstance(kwargs, Mapping) else tuple(sorted(kwargs))
        object.__setattr__(self, "model_kwargs", kwargs)
        if self.model not in MODELS and not self.model.startswith("timm."):
            raise UserError(f"Unknown teacher model '{self.model}'; available: {', '.join(list_models())}")
        for name, value, options in (("optimizer", self.optimizer, OPTIMIZER_KINDS),
                                     ("schedule", self.schedule, SCHEDULES), ("augment", self.augment, AUGMENTS)):
            if value not in options:
                raise UserError(f"Unknown teacher {name} '{value}'; available: {', '.join(options)}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise UserError(f"teacher recipe needs epochs >= 1, batch_size >= 1 and lr > 0; got {self.epochs}, "
                            f"{self.batch_size}, {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model_kwargs"] = dict(self.model_kwargs)
        if self.schedule != "step":  # added later: left out where unused, so every earlier teacher keeps its key
            del d["step_size"], d["gamma"]
        return d

    def key(self, real: RealData) -> str:
        """24 hex digits: the recipe, the data (its fingerprint: a validation split changes it) and the code."""
        payload = {"v": TEACHERS_CODE_VERSION, "recipe": self.to_dict(), "data": real.fingerprint(),
                   "classes": real.num_classes, "dsa_strategy": real.dsa_strategy}
        if self.augment == "resized_crop_flip":  # the crop's own code version (keys of the other recipes stay put)
            from dd_bench.augment.resized_crop import VERSION

            payload["resized_crop"] = VERSION
        return json_sha256(payload, 24)


TEACHER_RECIPES: Registry = Registry("teacher recipe", kind="spec")
TEACHER_RECIPES.register("sre2l_cifar")(TeacherRecipe())
TEACHER_RECIPES.register("cvdd_cifar")(TeacherRecipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, batch_size=512))
# CV-DD's committee (R18 above, R50, ShuffleNetV2-0.5, MobileNetV2, DenseNet-121) and INFER's teachers (kuangliu's
# pytorch-cifar recipe: SGD 0.1 / 0.9 / 5e-4, cosine over 200 epochs, batch 128), on the 32x32-adapted zoo.
for _arch in ("resnet50", "shufflenetv2", "mobilenetv2", "densenet121"):
    TEACHER_RECIPES.register(f"cvdd_cifar_{_arch}")(TeacherRecipe(model=f"{_arch}_cifar", optimizer="adam", lr=1e-3,
                                                                   weight_decay=1e-4, batch_size=512))
# CV-DD's Tiny-ImageNet committee (squeeze/scripts: SGD 0.01 / 0.9 / wd 1e-4, 50 epochs, batch 128); its crops are
# not given for Tiny: RandomCrop(64, 4) + flip as on CIFAR, assumed.
for _arch in ("resnet18", "resnet50", "shufflenetv2", "mobilenetv2", "densenet121"):
    TEACHER_RECIPES.register("cvdd_tiny" if _arch == "resnet18" else f"cvdd_tiny_{_arch}")(TeacherRecipe(
        model=f"{_arch}_cifar", epochs=50, lr=0.01, weight_decay=1e-4, batch_size=128, crop_pad=4))
# SRe2L's Tiny-ImageNet teacher (zeyuanyin/tiny-imagenet script/train_rn18.sh, the "E50" model): the modified
# ResNet-18, SGD 0.2 / 0.9 / wd 1e-4, batch 256, 50 epochs, 5 linear warm-up epochs from 0.01x then cosine; the
# torchvision reference's RandomResizedCrop + flip (train.py's transforms were not read: unverified).
TEACHER_RECIPES.register("sre2l_tiny")(TeacherRecipe(epochs=50, lr=0.2, weight_decay=1e-4, batch_size=256,
                                                     schedule="warmup_cosine", warmup_epochs=5,
                                                     augment="resized_crop_flip"))
# RDED's observers: its README (L45-54) gives only their accuracies (CIFAR-10 93.86, CIFAR-100 72.27) and says they
# come from torchvision's classification reference, adapted; no hyper-parameters. A READING of that reference's
# defaults (references/classification/train.py argparse: SGD lr 0.1, momentum 0.9, wd 1e-4, steplr every 30 epochs
# x0.1, 90 epochs, batch 32 per process, RandomResizedCrop + flip) on the modified ResNet-18 RDED's CIFAR scripts
# name (resnet-18-modified): not RDED's verified recipe. SRe2L's sre2l_cifar is about 6 points stronger on CIFAR-100.
TEACHER_RECIPES.register("rded_observer_cifar")(TeacherRecipe(epochs=90, lr=0.1, momentum=0.9, weight_decay=1e-4,
                                                              batch_size=32, schedule="step", step_size=30,
                                                              gamma=0.1, augment="resized_crop_flip"))
# RDED's conv3 observer (scripts/cifar*_10ipc_conv3_to_conv3_cr5.sh, --arch-name conv3): synthesize/utils.py
# load_model's ConvNet with net_norm "batch", relu, avgpooling, depth 3, width 128 (L183-192): dd-bench's convnet_bn.
# README L45-54: CIFAR-10 82.24, CIFAR-100 61.27. The same READING of the torchvision reference as above.
TEACHER_RECIPES.register("rded_observer_cifar_conv3")(TeacherRecipe(
    model="convnet_bn", model_kwargs={"width": 128, "depth": 3}, epochs=90, lr=0.1, momentum=0.9, weight_decay=1e-4,
    batch_size=32, schedule="step", step_size=30, gamma=0.1, augment="resized_crop_flip"))
for _arch in ("resnet18", "mobilenetv2", "efficientnet_b0", "shufflenetg2"):
    TEACHER_RECIPES.register(f"infer_cifar_{_arch}")(TeacherRecipe(model=f"{_arch}_cifar"))
for _width in (32, 64):
    for _depth in (2, 3):
        TEACHER_RECIPES.register(f"digits_convnet_bn_w{_width}_d{_depth}")(TeacherRecipe(
            model="convnet_bn", model_kwargs={"width": _width, "depth": _depth}, epochs=10, lr=0.01,
            batch_size=64, crop_pad=1))


def get_recipe(name: str) -> TeacherRecipe:
    return TEACHER_RECIPES.get(name)
