"""What a dataset source on disk looks like to the loader: a layout that can be located, then decoded.

Locating is cheap (directory checks and a file listing) and yields the exact files the decoder will read; the
cache key is built from their sizes and mtimes *before* anything is decoded, so a cache hit never decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from dd_bench.errors import UserError, UserFileNotFoundError


@dataclass
class Decoded:
    """Both splits of a dataset as uint8 tensors, the format every reader returns and the cache stores."""

    train_images: torch.Tensor  # (N, C, H, W) uint8
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor  # (M, C, H, W) uint8
    test_labels: torch.Tensor  # (M,) int64
    class_names: list[str]

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise UserError(f"decoded {split} images must be uint8 (N, C, H, W); got {x.dtype} {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
                raise UserError(f"decoded {split} labels must be int64 (N,) matching the images; got {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(self.class_names)):
                raise UserError(f"decoded {split} labels fall outside [0, {len(self.class_names)})")
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise UserError(
                f"train and test images differ in shape: {tuple(self.train_images.shape[1:])} vs "
                f"{tuple(self.test_images.shape[1:])}"
            )


@dataclass
class Source:
    """A located dataset: which layout matched, where, the files the decoder reads, and the decoder itself."""

    layout: str
    directory: Path
    files: list[Path]
    decode: Callable[[bool], Decoded]  # argument: show a progress bar


class Layout(Protocol):
    """One on-disk arrangement of a dataset (a torchvision folder, an ImageFolder tree, ...)."""

    name: str

    def looked_at(self, root: Path) -> list[str]:
        """Human-readable paths this layout checks under ``root``, for the not-found message."""
        ...

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        """The source under ``root`` when this layout is present, None when it is absent.

        Raises FileNotFoundError when the layout is recognisably present but incomplete (a partial download).
        """
        ...


def require_files(layout: str, directory: Path, names: Sequence[str]) -> list[Path]:
    """The paths ``directory/name``; a layout whose marker exists but lacks some files is an error, not absent."""
    paths = [directory / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserFileNotFoundError(
            f"{layout} layout found at {directory} but incomplete; missing: {', '.join(missing)}. "
            "Re-download or re-extract the data set there."
        )
    return paths


def first_existing(directory: Path, names: Sequence[str]) -> Path | None:
    """The first ``directory/name`` that is a file (e.g. an idx file with or without .gz)."""
    for n in names:
        if (directory / n).is_file():
            return directory / n
    return None


def check_native_size(layout: str, image_size: int | None, native: int) -> None:
    """Fixed-size binary layouts are not resized; an explicit image_size must equal the native one."""
    if image_size is not None and image_size != native:
        raise UserError(
            f"{layout} images are {native}x{native}; image_size={image_size} is only supported for "
            "ImageFolder trees (resize the images there, or drop image_size)"
        )
