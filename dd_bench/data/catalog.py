"""The dataset registry: one frozen :class:`DatasetSpec` per name, holding where the data can come from and its
constants.

Mean/std are per channel in units of x/255, as in MTT's ``utils.get_dataset`` (CIFAR-100 reuses CIFAR-10's
statistics there, and so do we; Tiny ImageNet and ImageFolder data use ImageNet's). The DSA strategy drops
``flip`` for digit data sets (MNIST, SVHN, digits), as DC does: a mirrored digit is a different or invalid symbol.
Layouts are tried in order against ``root``; every file data set also accepts a train/+test/ ImageFolder tree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dd_bench.data import cifar, mnist, svhn
from dd_bench.data.digits import DIGITS_CLASSES, DIGITS_MEAN, DIGITS_STD, read_digits
from dd_bench.data.image_folder import IMAGE_FOLDER
from dd_bench.data.sources import Decoded, Layout
from dd_bench.data.tiny_imagenet import TINY_IMAGENET
from dd_bench.registry import Registry

DSA_FULL = "color_crop_cutout_flip_scale_rotate"
DSA_NO_FLIP = "color_crop_cutout_scale_rotate"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)

CIFAR100_CLASSES = (  # noqa: SIM905 (a literal list would take 100 lines)
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard "
    "lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
    "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal "
    "shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank "
    "telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dsa_strategy: str
    class_names: tuple[str, ...] = ()  # canonical order; empty: taken from the source (folder names)
    layouts: tuple[Layout, ...] = ()  # tried in order against root
    download: Callable[[Path], None] | None = None  # fetch into root with torchvision's downloader
    embedded: Callable[[], Decoded] | None = None  # in-package data: no root, no cache
    manual_hint: str = ""  # how to obtain the data when no downloader exists

    @property
    def channels(self) -> int:
        return len(self.mean)


# Specs, not loaders: load_dataset (dd_bench/data/loading.py) looks a spec up here and loads it, so this module never
# imports the loader.
DATASETS: Registry[DatasetSpec] = Registry("dataset", kind="spec")


def get_dataset_spec(name: str) -> DatasetSpec:
    """The registered spec ``name`` (``conf/dataset/<name>.yaml``'s stem); ``load_dataset(name)`` loads the data."""
    return DATASETS.get(name)


def _register(spec: DatasetSpec) -> None:
    DATASETS.register(spec.name)(spec)


_register(
    DatasetSpec(
        "digits",
        mean=DIGITS_MEAN,
        std=DIGITS_STD,
        dsa_strategy=DSA_NO_FLIP,
        class_names=DIGITS_CLASSES,
        embedded=read_digits,
    )
)
_register(
    DatasetSpec(
        "mnist",
        mean=(0.1307,),
        std=(0.3081,),
        dsa_strategy=DSA_NO_FLIP,
        class_names=mnist.MNIST_CLASSES,
        layouts=(mnist.MNIST_RAW, IMAGE_FOLDER),
        download=mnist.download_mnist,
    )
)
_register(
    DatasetSpec(
        "fashion_mnist",
        mean=(0.2861,),
        std=(0.3530,),
        dsa_strategy=DSA_FULL,
        class_names=mnist.FASHION_MNIST_CLASSES,
        layouts=(mnist.FASHION_MNIST_RAW, IMAGE_FOLDER),
        download=mnist.download_fashion_mnist,
    )
)
_register(
    DatasetSpec(
        "svhn",
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
        dsa_strategy=DSA_NO_FLIP,
        class_names=svhn.SVHN_CLASSES,
        layouts=(svhn.SVHN_MAT, IMAGE_FOLDER),
        download=svhn.download_svhn,
    )
)
_register(
    DatasetSpec(
        "cifar10",
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        dsa_strategy=DSA_FULL,
        class_names=cifar.CIFAR10_CLASSES,
        layouts=(cifar.CIFAR10_PYTHON, cifar.CIFAR10_BINARY, IMAGE_FOLDER),
        download=cifar.download_cifar10,
    )
)
_register(
    DatasetSpec(
        "cifar100",
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        dsa_strategy=DSA_FULL,
        class_names=tuple(CIFAR100_CLASSES),
        layouts=(cifar.CIFAR100_PYTHON, cifar.CIFAR100_BINARY, IMAGE_FOLDER),
        download=cifar.download_cifar100,
    )
)
_register(
    DatasetSpec(
        "tiny_imagenet",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        dsa_strategy=DSA_FULL,
        layouts=(TINY_IMAGENET, IMAGE_FOLDER),
        manual_hint="download and unzip http://cs231n.stanford.edu/tiny-imagenet-200.zip, then point root at it",
    )
)
_register(
    DatasetSpec(
        "imagefolder",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        dsa_strategy=DSA_FULL,
        layouts=(IMAGE_FOLDER,),
        manual_hint="arrange the images as <root>/train/<class>/* and <root>/test/<class>/* (or val/)",
    )
)
