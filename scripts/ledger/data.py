"""The ledger's data adapter: one fixed, class-balanced training subset written where both pipelines read it.

A pair trains both implementations on the same images: ``per_class`` images of every class drawn with
``dd_bench.data.subsets.class_balanced_indices`` from ``seed`` (the same seed gives the same subset), written as an
ImageFolder tree (``<out>/train/<class index>_<class name>/<source index>.png``, 8-bit PNG, lossless) and as a
``subset.json`` with the indices into the original training set and their SHA-256, which the pair's entry records.
The test set is always the full one.

    python scripts/ledger/data.py --dataset cifar10 --root DIR --per-class 200 --seed 0 --out DIR
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData, load_dataset
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.io import atomic_write_json


def subset_indices(real: RealData, *, per_class: int, seed: int) -> torch.Tensor:
    """(num_classes * per_class,) indices into the training set, class-major; a function of (data, per_class, seed)."""
    return class_balanced_indices(real.train_labels, per_class, real.num_classes,
                                  generator=torch.Generator().manual_seed(seed))


def indices_sha256(indices: torch.Tensor) -> str:
    return hashlib.sha256(",".join(str(int(i)) for i in indices.tolist()).encode()).hexdigest()


def write_subset(real: RealData, *, per_class: int, seed: int, out: Path) -> dict[str, Any]:
    """Write the subset as an ImageFolder tree under ``out/train`` and describe it in ``out/subset.json``."""
    from PIL import Image

    indices = subset_indices(real, per_class=per_class, seed=seed)
    for i in indices.tolist():
        label = int(real.train_labels[i])
        folder = out / "train" / f"{label:03d}_{real.class_names[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = real.train_images[i].permute(1, 2, 0).numpy()  # (H, W, C) uint8
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(folder / f"{i:06d}.png")
    info = {"dataset": real.name, "per_class": per_class, "seed": seed, "num_images": len(indices),
            "indices": indices.tolist(), "indices_sha256": indices_sha256(indices),
            "data_fingerprint": real.fingerprint(), "test": "full"}
    atomic_write_json(out / "subset.json", info)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--per-class", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    real = load_dataset(args.dataset, root=args.root, progress=False)
    info = write_subset(real, per_class=args.per_class, seed=args.seed, out=args.out)
    print(f"wrote {info['num_images']} images to {args.out / 'train'} (indices sha256 {info['indices_sha256'][:16]})")


if __name__ == "__main__":
    main()
