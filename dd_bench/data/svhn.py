"""SVHN (cropped digits) reader for the torchvision layout: ``root/train_32x32.mat`` and ``root/test_32x32.mat``.

Each .mat holds ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) with labels 1..10, where 10 means the digit 0
(torchvision maps 10 -> 0 the same way). Also accepted under ``root/svhn/`` or ``root/SVHN/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dd_bench.data.sources import Decoded, Source, check_native_size, require_files
from dd_bench.errors import UserError

SVHN_CLASSES = tuple(str(d) for d in range(10))
_FILES = ("train_32x32.mat", "test_32x32.mat")


def read_svhn_mat(files: dict[str, Path]) -> Decoded:
    from scipy.io import loadmat  # a scikit-learn dependency, imported only when SVHN is read

    out = {}
    for split, path in files.items():
        mat = loadmat(str(path))
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
            raise UserError(f"{path}: expected X uint8 (32, 32, 3, N) and y (N, 1); got X {x.dtype} {x.shape}")
        out[f"{split}_images"] = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)))  # (N, 3, H, W)
        out[f"{split}_labels"] = torch.from_numpy(y.astype(np.int64) % 10)
    return Decoded(**out, class_names=list(SVHN_CLASSES))


class _SvhnLayout:
    name = "svhn .mat"

    def _candidates(self, root: Path) -> list[Path]:
        return [root, root / "svhn", root / "SVHN"]

    def looked_at(self, root: Path) -> list[str]:
        return [f"{d}/{_FILES[0]} + {_FILES[1]} ({self.name})" for d in self._candidates(root)]

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        for directory in self._candidates(root):
            if (directory / _FILES[0]).is_file():
                check_native_size(self.name, image_size, 32)
                train, test = require_files(self.name, directory, _FILES)
                files = {"train": train, "test": test}
                return Source(self.name, directory, [train, test], lambda progress, f=files: read_svhn_mat(f))
        return None


SVHN_MAT = _SvhnLayout()


def download_svhn(root: Path) -> None:
    from torchvision.datasets import SVHN

    for split in ("train", "test"):
        SVHN(str(root), split=split, download=True)
