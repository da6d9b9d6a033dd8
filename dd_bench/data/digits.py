"""The embedded dataset: scikit-learn's bundled 8x8 handwritten digits (1,797 images, pixels 0..16).

Pixels are scaled to uint8 as round(x * 255 / 16) (numpy round-half-even; only x = 8 -> 127.5 -> 128 is a tie),
shape (N, 1, 8, 8). The stratified 80/20 train/test split was drawn once with
``train_test_split(stratify=y, test_size=0.2, random_state=0)`` and its test indices are committed in
``digits_split.json`` together with the SHA-256 of the uint8 array, so the split never moves with sklearn versions
and a changed bundled array is detected. Mean/std are the training split's, committed below and checked by tests.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

import numpy as np
import torch

from dd_bench.data.sources import Decoded

SPLIT_FILE = "digits_split.json"
DIGITS_CLASSES = tuple(str(d) for d in range(10))
# Per-channel statistics of the 1,437 training images, in units of x/255 (population std over all pixels).
DIGITS_MEAN = (0.305434,)
DIGITS_STD = (0.375957,)


def digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits -> images (1797, 1, 8, 8) uint8 and labels (1797,) int64, in sklearn's order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8).reshape(-1, 1, 8, 8)
    return images, bunch.target.astype(np.int64)


def array_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def split_record() -> dict[str, Any]:
    """The committed split record (test indices, array checksum, provenance)."""
    return json.loads(resources.files("dd_bench.data").joinpath(SPLIT_FILE).read_text())


def generate_split_record() -> dict[str, Any]:
    """How ``digits_split.json`` was made (kept for provenance; the runtime only reads the committed file)."""
    import sklearn
    from sklearn.model_selection import train_test_split

    images, labels = digits_uint8()
    _, test = train_test_split(np.arange(len(labels)), stratify=labels, test_size=0.2, random_state=0)
    return {
        "description": "Frozen stratified 80/20 split of sklearn.datasets.load_digits, images round(x*255/16) uint8",
        "generated_with": f"sklearn.model_selection.train_test_split(stratify=y, test_size=0.2, random_state=0), "
        f"scikit-learn {sklearn.__version__}",
        "images_shape": list(images.shape),
        "images_sha256": array_sha256(images),
        "test_indices": sorted(int(i) for i in test),
    }


def train_test_indices() -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices into sklearn's digits order."""
    record = split_record()
    test = np.asarray(record["test_indices"], dtype=np.int64)
    n = int(record["images_shape"][0])
    train = np.setdiff1d(np.arange(n), test)
    return train, test


def read_digits() -> Decoded:
    images, labels = digits_uint8()
    record = split_record()
    sha = array_sha256(images)
    if list(images.shape) != record["images_shape"] or sha != record["images_sha256"]:
        raise RuntimeError(
            f"scikit-learn's bundled digits changed (shape {images.shape}, sha256 {sha}); the committed split in "
            f"dd_bench/data/{SPLIT_FILE} expects shape {record['images_shape']}, sha256 {record['images_sha256']}"
        )
    train, test = train_test_indices()
    return Decoded(
        torch.from_numpy(images[train]),
        torch.from_numpy(labels[train]),
        torch.from_numpy(images[test]),
        torch.from_numpy(labels[test]),
        class_names=list(DIGITS_CLASSES),
    )
