"""ImageFolder trees: ``root/train/<class>/<image>`` and ``root/test/<class>/<image>`` (or ``root/val/``).

Class index = position in the sorted list of train class folders; when the folder names are exactly a known
dataset's class names (CIFAR-10 from ``shared/data/get-cifar10``, CIFAR-100, ...) the dataset's canonical order is
used instead, so labels agree with torchvision's. Images are decoded with PIL in a thread pool (Pillow releases
the GIL while decoding), to RGB, or to one channel when every image is greyscale. Without ``image_size`` all
images must share one size; with it each is resized (shorter side, bilinear) and centre-cropped to a square.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from dd_bench.data.sources import Decoded, Source
from dd_bench.errors import UserError, UserFileNotFoundError

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", ".gif")
_GREY_MODES = ("1", "L", "LA")

Labelled = list[tuple[Path, int]]


def is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def images_under(directory: Path) -> list[Path]:
    """All image files below ``directory`` (recursively, as torchvision's ImageFolder), in sorted path order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / f for f in filenames if is_image(f))
    return sorted(found)


def class_order(found: Sequence[str], known_classes: Sequence[str]) -> list[str]:
    """The dataset's canonical order when the folders are exactly its classes, else sorted folder names."""
    if known_classes and sorted(found) == sorted(known_classes):
        return list(known_classes)
    return sorted(found)


def _resize_center_crop(im, size: int):  # PIL.Image -> PIL.Image, (size, size)
    from PIL import Image

    w, h = im.size
    # torchvision Resize(int): the shorter side becomes `size`, the longer one is scaled and floored.
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BILINEAR)
    left, top = round((new_w - size) / 2.0), round((new_h - size) / 2.0)
    return im.crop((left, top, left + size, top + size))


def _decode_one(path: Path, image_size: int | None) -> np.ndarray:
    """One file -> (H, W) uint8 for greyscale sources, (H, W, 3) uint8 otherwise."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("L" if im.mode in _GREY_MODES else "RGB")
        if image_size is not None:
            im = _resize_center_crop(im, image_size)
        return np.asarray(im, dtype=np.uint8)


def decode_files(paths: Sequence[Path], *, image_size: int | None, progress: bool, desc: str) -> torch.Tensor:
    """Decode ``paths`` in a thread pool -> (N, C, H, W) uint8, C = 1 if every image is greyscale else 3."""
    from tqdm.auto import tqdm

    workers = min(32, (os.cpu_count() or 1) + 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(
            tqdm(
                pool.map(lambda p: _decode_one(p, image_size), paths),
                total=len(paths),
                desc=desc,
                disable=not progress,
                unit="img",
            )
        )
    sizes: dict[tuple[int, int], Path] = {}
    for p, a in zip(paths, arrays, strict=True):
        sizes.setdefault(a.shape[:2], p)
    if len(sizes) > 1:
        examples = ", ".join(f"{p} is {h}x{w}" for (h, w), p in list(sizes.items())[:3])
        raise UserError(
            f"images differ in size ({examples}); pass image_size=N (dataset.image_size=N) to resize the shorter "
            "side to N and centre-crop to NxN"
        )
    if all(a.ndim == 2 for a in arrays):
        return torch.from_numpy(np.stack(arrays)[:, None])  # (N, 1, H, W)
    # Mixed sources: greyscale files become RGB by channel replication (what PIL's L -> RGB does).
    rgb = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    return torch.from_numpy(np.ascontiguousarray(np.stack(rgb).transpose(0, 3, 1, 2)))


def decode_labelled(
    train: Labelled, test: Labelled, class_names: list[str], *, image_size: int | None, progress: bool, desc: str
) -> Decoded:
    """Decode both splits together so they share one channel count and size."""
    if not train or not test:
        raise UserError(f"{desc}: found {len(train)} train and {len(test)} test images; both splits need images")
    images = decode_files([p for p, _ in train + test], image_size=image_size, progress=progress, desc=desc)
    labels = torch.tensor([y for _, y in train + test], dtype=torch.int64)
    n = len(train)
    return Decoded(images[:n], labels[:n], images[n:], labels[n:], class_names=class_names)


def scan_class_tree(split_dir: Path) -> dict[str, list[Path]]:
    """``split_dir/<class>/...`` -> {class: sorted image paths}; a class folder without images is an error."""
    tree = {}
    for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            files = images_under(Path(entry.path))
            if not files:
                raise UserFileNotFoundError(f"class folder {entry.path} holds no images ({', '.join(IMG_EXTENSIONS)})")
            tree[entry.name] = files
    if not tree:
        raise UserFileNotFoundError(f"{split_dir} has no class sub-folders (expected {split_dir}/<class>/<image>)")
    return tree


class _ImageFolderLayout:
    name = "imagefolder"

    def looked_at(self, root: Path) -> list[str]:
        return [f"{root}/train/<class>/<image> with {root}/test/<class>/ or {root}/val/<class>/ (ImageFolder tree)"]

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        train_dir = root / "train"
        if not train_dir.is_dir():
            return None
        test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
        if test_dir is None:
            raise UserFileNotFoundError(f"ImageFolder tree at {root} has train/ but neither test/ nor val/")
        train_tree, test_tree = scan_class_tree(train_dir), scan_class_tree(test_dir)
        unknown = sorted(set(test_tree) - set(train_tree))
        if unknown:
            raise UserError(f"{test_dir} has classes missing from {train_dir}: {', '.join(unknown[:10])}")
        classes = class_order(list(train_tree), known_classes)
        index = {c: i for i, c in enumerate(classes)}
        train = [(p, index[c]) for c in classes for p in train_tree[c]]
        test = [(p, index[c]) for c in classes if c in test_tree for p in test_tree[c]]
        return Source(
            self.name,
            root,
            [p for p, _ in train + test],
            lambda progress: decode_labelled(
                train, test, classes, image_size=image_size, progress=progress, desc=f"decoding {root}"
            ),
        )


IMAGE_FOLDER = _ImageFolderLayout()
