"""What a task reads from its composed config, as the library's arguments: the job's config as data, the data set,
the protocol, the label sources, the models, the image store and the cache directory. The tasks, the demo, export and
import and the input checks all read the config through these, so none of them imports another to do it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dd_bench.errors import UserError


def job_config(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain JSON-ready data (enums by value): what records, meta.json and wandb receive."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def cache_dir_of(cfg: DictConfig) -> Path | None:
    """``dataset.cache_dir`` as a path (None: the cache root's default)."""
    return Path(cfg.dataset.cache_dir) if cfg.dataset.cache_dir else None


def load_real(cfg: DictConfig, dataset_name: str | None = None) -> Any:
    """The data set the config names (or ``dataset_name`` with the config's other dataset keys), on its device."""
    from dd_bench.data import load_dataset
    from dd_bench.pipeline.device import resolve_device

    d = cfg.dataset
    device = resolve_device(cfg.device)  # a bad device fails before the data is read
    real = load_dataset(dataset_name or d.name, root=d.root, download=d.download, zca=d.zca, cache_dir=d.cache_dir,
                        image_size=d.image_size, progress=cfg.progress)
    return real.to(device)


def protocol_of(cfg: DictConfig) -> Any:
    """The protocol ``eval=`` names, with the ``eval.*`` field overrides (an unranked ``<name>+custom``)."""
    from dd_bench.eval import custom_protocol, get_protocol

    fields = ("epochs", "batch_size", "lr", "use_learned_lr", "augment")
    overrides = {f: cfg.eval[f] for f in fields if cfg.eval[f] is not None}
    return custom_protocol(cfg.eval.name, **overrides) if overrides else get_protocol(cfg.eval.name)


def check_models(models: list[str]) -> None:
    """Each a registered model or ``timm.<name>``, else one line naming the registered ones."""
    from dd_bench.models import MODELS, list_models

    for m in models:
        if not m.startswith("timm.") and m not in MODELS:
            raise UserError(f"Unknown model '{m}'; available: {', '.join(list_models())}")


def label_sources_of(cfg: DictConfig) -> list[str]:
    """The label sources a task scores with (``label_sources``, else ``label_source``), each checked, in order."""
    from dd_bench.labels import check_label_source

    sources = list(cfg.get("label_sources") or [cfg.label_source])
    for source in sources:
        check_label_source(source)
    if len(set(sources)) != len(sources):
        raise UserError(f"label_sources={sources} names a source twice")
    return sources


def check_image_store_of(cfg: DictConfig) -> None:
    """``image_store`` / ``jpeg_quality`` checked before any data is read (one line naming the valid values)."""
    from dd_bench.synset.image_store import check_image_store

    check_image_store(cfg.image_store, cfg.jpeg_quality)
