"""Random real subset: ``ipc`` random training images per class, kept as the original uint8 pixels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.methods.base import METHODS, Synthesizer, source_indices
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet


@METHODS.register("random")
class RandomReal(Synthesizer):
    name = "random"

    @dataclasses.dataclass
    class Config:
        pass

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        idx = class_balanced_indices(real.train_labels, ipc, real.num_classes,
                                     generator=make_generator(seed, "method", "random"))
        return self.new_synset(real, ipc=ipc, images=real.train_images[idx], labels=real.train_labels[idx],
                               image_encoding="uint8", extras={"source_indices": source_indices(real, idx)})
