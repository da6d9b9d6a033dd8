"""MNIST / Fashion-MNIST readers for the torchvision layout: ``root/<MNIST|FashionMNIST>/raw/`` idx files.

The idx format (LeCun): 2 zero bytes, a type code (0x08 = uint8), the number of dimensions, then that many
big-endian int32 sizes, then the data. Files may be gzip-compressed (``.gz``), as downloaded.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dd_bench.data.sources import Decoded, Source, check_native_size, first_existing
from dd_bench.errors import UserError, UserFileNotFoundError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}
_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_CLASSES = (  # torchvision's names (MTT uses dst_train.classes)
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def read_idx(path: Path) -> np.ndarray:
    """One idx file (optionally .gz) -> numpy array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise UserError(f"{path}: not an idx file (bad magic {data[:4]!r})")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise UserError(f"{path}: header says {shape} ({expected} bytes) but {len(data) - offset} bytes follow")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def read_mnist_raw(files: dict[str, Path], class_names: Sequence[str]) -> Decoded:
    arrays = {k: read_idx(p) for k, p in files.items()}
    out = {}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
            raise UserError(f"{files[f'{split}_images']}: expected uint8 (N, H, W) images and (N,) labels")
        out[f"{split}_images"] = torch.from_numpy(x.copy()).unsqueeze(1)  # (N, 1, 28, 28)
        out[f"{split}_labels"] = torch.from_numpy(y.astype(np.int64))
    return Decoded(**out, class_names=list(class_names))


class IdxLayout:
    """``root/<folder>/raw/`` (torchvision), also ``root/raw/`` or ``root`` itself holding the four idx files."""

    def __init__(self, folder: str, class_names: Sequence[str]) -> None:
        self.folder, self.class_names = folder, tuple(class_names)
        self.name = f"{folder}/raw idx"

    def _candidates(self, root: Path) -> list[Path]:
        return [root / self.folder / "raw", root / "raw", root]

    def looked_at(self, root: Path) -> list[str]:
        return [f"{d}/{_STEMS['train_images']}[.gz] ({self.name})" for d in self._candidates(root)]

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        for directory in self._candidates(root):
            if first_existing(directory, [_STEMS["train_images"], _STEMS["train_images"] + ".gz"]) is None:
                continue
            check_native_size(self.name, image_size, 28)
            files: dict[str, Path] = {}
            for key, stem in _STEMS.items():
                found = first_existing(directory, [stem, stem + ".gz"])
                if found is None:
                    raise UserFileNotFoundError(
                        f"{self.name} layout found at {directory} but {stem}[.gz] is missing; re-download it."
                    )
                files[key] = found
            return Source(
                self.name,
                directory,
                list(files.values()),
                lambda progress, f=files: read_mnist_raw(f, self.class_names),
            )
        return None


MNIST_RAW = IdxLayout("MNIST", MNIST_CLASSES)
FASHION_MNIST_RAW = IdxLayout("FashionMNIST", FASHION_MNIST_CLASSES)


def download_mnist(root: Path) -> None:
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def download_fashion_mnist(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)
