"""CIFAR-10 / CIFAR-100 readers for the torchvision (python pickle) and the original binary layouts.

Python layout (what ``torchvision.datasets.CIFAR10(root, download=True)`` leaves): ``root/cifar-10-batches-py/``
with ``data_batch_1..5``, ``test_batch``, ``batches.meta``; CIFAR-100: ``root/cifar-100-python/{train,test,meta}``
(fine labels). Pickles go through :mod:`dd_bench.data.safe_pickle`, never plain pickle.
Binary layout: ``root/cifar-10-batches-bin/`` (records of 1 label byte + 3072 pixel bytes) and
``root/cifar-100-binary/`` (coarse byte, fine byte, 3072 pixel bytes).
Either directory may also be given as ``root`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dd_bench.data.safe_pickle import load_numpy_pickle
from dd_bench.data.sources import Decoded, Source, check_native_size, require_files
from dd_bench.errors import UserError

_PIXELS = 3 * 32 * 32  # one CIFAR image, channel-major (R plane, G plane, B plane), row-major within a plane


def _field(d: dict, key: str) -> Any:
    """Pickles written by Python 2 unpickle with str keys (latin1), Python 3 ones may carry bytes keys."""
    if key in d:
        return d[key]
    if key.encode() in d:
        return d[key.encode()]
    raise UserError(f"CIFAR pickle has no '{key}' entry (keys: {sorted(map(str, d))})")


def _as_names(values: Sequence[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _images(flat: np.ndarray, source: Path) -> torch.Tensor:
    """(N, 3072) uint8 rows -> (N, 3, 32, 32): the row layout is already channel-major."""
    flat = np.asarray(flat)
    if flat.dtype != np.uint8 or flat.ndim != 2 or flat.shape[1] != _PIXELS:
        raise UserError(f"{source}: expected uint8 (N, {_PIXELS}) image rows, got {flat.dtype} {flat.shape}")
    return torch.from_numpy(np.ascontiguousarray(flat).reshape(-1, 3, 32, 32).copy())


def read_cifar_python(files: dict[str, list[Path]], label_key: str, names_key: str) -> Decoded:
    """Decode the pickled batches. ``files``: {"train": [...], "test": [...], "meta": [one file]}."""
    meta = load_numpy_pickle(files["meta"][0])
    class_names = _as_names(_field(meta, names_key))
    splits = {}
    for split in ("train", "test"):
        xs, ys = [], []
        for path in files[split]:
            batch = load_numpy_pickle(path)
            xs.append(_images(_field(batch, "data"), path))
            ys.append(torch.as_tensor(np.asarray(_field(batch, label_key), dtype=np.int64)))
        splits[split] = (torch.cat(xs), torch.cat(ys))
    return Decoded(*splits["train"], *splits["test"], class_names=class_names)


def read_cifar_binary(files: dict[str, list[Path]], label_bytes: int, label_offset: int) -> Decoded:
    """Fixed-size records: ``label_bytes`` header bytes (the label at ``label_offset``) then 3072 pixels."""
    class_names = [ln.strip() for ln in files["meta"][0].read_text().splitlines() if ln.strip()]
    record = label_bytes + _PIXELS
    splits = {}
    for split in ("train", "test"):
        xs, ys = [], []
        for path in files[split]:
            raw = np.fromfile(path, dtype=np.uint8)
            if raw.size % record:
                raise UserError(f"{path}: size {raw.size} is not a multiple of the {record}-byte CIFAR record")
            rows = raw.reshape(-1, record)
            ys.append(torch.from_numpy(rows[:, label_offset].astype(np.int64)))
            xs.append(_images(rows[:, label_bytes:], path))
        splits[split] = (torch.cat(xs), torch.cat(ys))
    return Decoded(*splits["train"], *splits["test"], class_names=class_names)


class _CifarLayout:
    """One CIFAR directory flavour; ``marker`` identifies it, ``train``/``test``/``meta`` are the files read."""

    def __init__(
        self, name: str, subdir: str, marker: str, train: list[str], test: list[str], meta: str, kind: str, **kw: int
    ) -> None:
        self.name, self.subdir, self.marker = name, subdir, marker
        self.train, self.test, self.meta, self.kind, self.kw = train, test, meta, kind, kw

    def looked_at(self, root: Path) -> list[str]:
        return [f"{root / self.subdir}/{self.marker} ({self.name})", f"{root}/{self.marker} ({self.name}, root itself)"]

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        for directory in (root / self.subdir, root):
            if (directory / self.marker).is_file():
                check_native_size(self.name, image_size, 32)
                paths = require_files(self.name, directory, [*self.train, *self.test, self.meta])
                nt, ns = len(self.train), len(self.test)
                files = {"train": paths[:nt], "test": paths[nt : nt + ns], "meta": paths[nt + ns :]}
                return Source(self.name, directory, paths, lambda progress, f=files: self._decode(f))
        return None

    def _decode(self, files: dict[str, list[Path]]) -> Decoded:
        # Looked up by name at call time so tests can swap the readers.
        reader = read_cifar_python if self.kind == "python" else read_cifar_binary
        return reader(files, **self.kw)  # type: ignore[arg-type]


CIFAR10_PYTHON = _CifarLayout(
    "cifar-10-batches-py",
    "cifar-10-batches-py",
    "batches.meta",
    [f"data_batch_{i}" for i in range(1, 6)],
    ["test_batch"],
    "batches.meta",
    "python",
    label_key="labels",
    names_key="label_names",
)
CIFAR10_BINARY = _CifarLayout(
    "cifar-10-batches-bin",
    "cifar-10-batches-bin",
    "batches.meta.txt",
    [f"data_batch_{i}.bin" for i in range(1, 6)],
    ["test_batch.bin"],
    "batches.meta.txt",
    "binary",
    label_bytes=1,
    label_offset=0,
)
CIFAR100_PYTHON = _CifarLayout(
    "cifar-100-python",
    "cifar-100-python",
    "meta",
    ["train"],
    ["test"],
    "meta",
    "python",
    label_key="fine_labels",
    names_key="fine_label_names",
)
CIFAR100_BINARY = _CifarLayout(
    "cifar-100-binary",
    "cifar-100-binary",
    "fine_label_names.txt",
    ["train.bin"],
    ["test.bin"],
    "fine_label_names.txt",
    "binary",
    label_bytes=2,
    label_offset=1,
)


def _download(root: Path, cls_name: str) -> None:
    # Download and extract only: torchvision's CIFAR constructor would read the pickles with plain pickle.
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    cls = getattr(datasets, cls_name)
    download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)


def download_cifar10(root: Path) -> None:
    _download(root, "CIFAR10")


def download_cifar100(root: Path) -> None:
    _download(root, "CIFAR100")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
