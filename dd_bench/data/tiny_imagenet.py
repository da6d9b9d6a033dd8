"""Tiny ImageNet (200 classes, 64x64) in its distributed layout, ``root/tiny-imagenet-200/`` or ``root`` itself.

``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` whose classes are listed in
``val/val_annotations.txt`` (file, wnid, box; tab-separated). MTT reads val with ImageFolder after moving the files
into class folders; here the annotation file assigns the labels in memory and the user's root is never written.
Classes are the sorted wnids (ImageFolder's order); val images are ordered class by class, then by file name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dd_bench.data.image_folder import decode_labelled, scan_class_tree
from dd_bench.data.sources import Source
from dd_bench.errors import UserError, UserFileNotFoundError


def read_val_annotations(path: Path) -> dict[str, str]:
    """val_annotations.txt -> {file name: wnid}."""
    labels = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            raise UserError(f"{path}:{n}: expected '<file>\\t<wnid>\\t...', got {line!r}")
        labels[parts[0]] = parts[1]
    return labels


class _TinyImageNetLayout:
    name = "tiny-imagenet-200"

    def _candidates(self, root: Path) -> list[Path]:
        return [root / "tiny-imagenet-200", root]

    def looked_at(self, root: Path) -> list[str]:
        return [f"{d}/train/<wnid>/images/ + {d}/val/val_annotations.txt ({self.name})" for d in self._candidates(root)]

    def locate(self, root: Path, *, image_size: int | None, known_classes: Sequence[str]) -> Source | None:
        for directory in self._candidates(root):
            annotations = directory / "val" / "val_annotations.txt"
            if (directory / "train").is_dir() and annotations.is_file():
                return self._source(directory, annotations, image_size)
        return None

    def _source(self, directory: Path, annotations: Path, image_size: int | None) -> Source:
        train_tree = scan_class_tree(directory / "train")  # {wnid: [train/<wnid>/images/*.JPEG]}
        classes = sorted(train_tree)
        index = {c: i for i, c in enumerate(classes)}
        val_labels = read_val_annotations(annotations)
        unknown = sorted({w for w in val_labels.values() if w not in index})
        if unknown:
            raise UserError(f"{annotations} names wnids without a train folder: {', '.join(unknown[:10])}")
        val_dir = directory / "val" / "images"
        missing = [f for f in val_labels if not (val_dir / f).is_file()]
        if missing:
            raise UserFileNotFoundError(
                f"{len(missing)} images listed in {annotations} are missing, e.g. {val_dir / missing[0]}"
            )
        train = [(p, index[c]) for c in classes for p in train_tree[c]]
        test = sorted(((val_dir / f, index[w]) for f, w in val_labels.items()), key=lambda t: (t[1], t[0].name))
        return Source(
            self.name,
            directory,
            [p for p, _ in train + test] + [annotations],
            lambda progress: decode_labelled(
                train, test, classes, image_size=image_size, progress=progress, desc=f"decoding {directory}"
            ),
        )


TINY_IMAGENET = _TinyImageNetLayout()
