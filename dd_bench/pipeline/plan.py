"""A set's identity before any work: its method's options checked and resolved, the validation split taken out of
the data it sees, its set hash and its directory (the command line plans from the composed config:
:func:`dd_bench.app.tasks.plan_distill`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dd_bench.data import RealData, split_validation
from dd_bench.methods import create_method
from dd_bench.results.keys import set_dirname, set_hash
from dd_bench.synset.image_store import check_image_store, store_identity


@dataclass
class DistillPlan:
    method: str
    options: dict[str, Any]
    real: Any  # RealData the method sees (the validation split removed)
    holdout: dict[str, Any] | None
    set_hash: str
    out: Path
    image_store: str = "native"
    jpeg_quality: int = 75


def plan_distill(*, method_config: dict[str, Any], dataset: dict[str, Any], real: RealData, ipc: int, seed: int,
                 validation: float | None, image_store: str, jpeg_quality: int, out: str | Path | None,
                 results_dir: str | Path, prior_file: tuple[str, str] | None = None) -> DistillPlan:
    """The plan of the set that ``method_config`` (the method's config, ``name`` included) makes from ``real`` with
    the dataset config ``dataset``. ``validation``: the fraction held out (None: none); ``out``: the set's directory
    (None: ``<results_dir>/synsets/<name>``). ``prior_file``: (path, digest) of CV-DD's measured priors; the set hash
    takes the digest, not the path."""
    check_image_store(image_store, jpeg_quality, channels=real.channels)
    options = dict(method_config)
    name = options.pop("name")
    hashed = options
    if prior_file is not None:
        options = {**options, "prior_file": prior_file[0]}
        hashed = {**options, "prior_file": f"measured:{prior_file[1]}"}
    # Unknown or impossible options fail here, before distilling; `auto` choices are resolved (and hashed) here.
    resolved = create_method(name, **options).resolve_options(real=real, ipc=ipc)
    options, hashed = {**options, **resolved}, {**hashed, **resolved}
    holdout = None
    if validation is not None:
        # Everything fitted to data (experts, teachers, the ZCA whitening) sees the training set minus the split;
        # the evaluator whitens with that same matrix (dd_bench.data.validation.evaluation_real).
        real, val = split_validation(real, fraction=validation, seed=seed, refit_zca=True)
        holdout = {"fraction": validation, "seed": seed, "num_images": len(val["indices"]),
                   "indices": [int(i) for i in val["indices"]]}
    digest = set_hash(method=name, method_config=hashed, dataset=dataset, data_fingerprint=real.fingerprint(), ipc=ipc,
                      seed=seed, validation=validation, image_store=store_identity(image_store, jpeg_quality))
    out = Path(out) if out else Path(results_dir) / "synsets" / set_dirname(
        method=name, dataset=real.name, ipc=ipc, seed=seed, set_hash_hex=digest)
    return DistillPlan(method=name, options=options, real=real, holdout=holdout, set_hash=digest, out=out,
                       image_store=image_store, jpeg_quality=jpeg_quality)
