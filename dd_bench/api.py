"""The Python API for users' own tensors: ``dd_bench.score(images, labels, dataset=..., protocol=..., ...)``
scores a distilled set that lives in memory, without the command line, and returns its run records (as
DD-Ranking's main use does). The images go through the same checks as ``dd-bench import``; the evaluation is
the one every set gets.

>>> records = dd_bench.score(images, labels, dataset="cifar10", root="data/cifar10", protocol="mtt",
...                          models=["convnet"], seeds=5, space="normalized")       # doctest: +SKIP
>>> records[0].acc_mean                                                               # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch


def score(images: torch.Tensor, labels: torch.Tensor, *, dataset: str, protocol: str = "mtt",
          models: list[str] | tuple[str, ...] = ("convnet",), seeds: int | list[int] = 5,
          label_source: str = "auto", space: str = "normalized", soft_labels: torch.Tensor | None = None,
          learned_lr: float | None = None, root: str | Path | None = None, zca: bool = False,
          device: str = "auto", results: str | Path | None = None, name: str = "user",
          cache_dir: str | Path | None = None, progress: bool = False) -> list[Any]:
    """Score ``images`` (N, C, H, W) with class ids ``labels`` (N,) on ``dataset``'s test set under ``protocol``.

    ``space``: what the image values are (normalized: the dataset's mean/std; zca, with ``zca=True``; pixels in
    [0, 1]; uint8). ``seeds``: a count (networks 0..n-1) or a list. ``results``: also write the records there.
    Returns one :class:`~dd_bench.results.RunRecord` per model.
    """
    from dd_bench.app.job import check_models
    from dd_bench.data import load_dataset
    from dd_bench.eval import get_protocol
    from dd_bench.exchange.imports import synset_from_tensors
    from dd_bench.labels import check_label_source
    from dd_bench.pipeline.device import resolve_device
    from dd_bench.pipeline.score import score_set
    from dd_bench.results import write_record
    from dd_bench.synset import save_synset

    check_models(list(models))
    check_label_source(label_source)
    spec = get_protocol(protocol)
    real = load_dataset(dataset, root=root, zca=zca, cache_dir=cache_dir, progress=progress).to(
        resolve_device(device))
    synset = synset_from_tensors(images, labels, real=real, space=space, soft_labels=soft_labels,
                                 learned_lr=learned_lr, name=name, origin={"format": "tensors", "space": space})
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    config = {"api": "dd_bench.score", "dataset": dataset, "protocol": protocol, "models": list(models),
              "seeds": seed_list, "label_source": label_source, "space": space}
    with tempfile.TemporaryDirectory(prefix="dd-bench-score-") as tmp:
        directory = save_synset(synset, Path(tmp) / "set")
        # The evaluation every set gets (stored labels made first when the label source reads them); the records
        # are written beside the temporary set, and under ``results`` below.
        records, _ = score_set(synset_dir=directory, real=real, protocol=spec, models=list(models), seeds=seed_list,
                               results_dir=Path(tmp), config=config, label_sources=[label_source], progress=progress,
                               cache_dir=cache_dir, relabel=True)
    for record in records:
        record.synset = None  # it lived in a temporary directory
        if results is not None:
            write_record(record, Path(results))
    return records
