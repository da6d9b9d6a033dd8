"""``dd-bench export`` and ``dd-bench import``: a set to and from other repositories' formats (the CLI side;
the formats themselves are :mod:`dd_bench.exchange`). Split from :mod:`dd_bench.app.tasks`, which dispatches here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from dd_bench.app.job import cache_dir_of, load_real
from dd_bench.errors import UserError


def _required(cfg: DictConfig, task: str, *keys: str) -> None:
    missing = [k for k in keys if not cfg.get(k)]
    if missing:
        usage = {"export": "synset=DIR format=imagefolder|npz|pt|hf out=DIR",
                 "import": "format=mtt|datm|dc|imagefolder|npz path=... dataset=NAME space=... out=DIR"}[task]
        raise UserError(f"{task} needs {', '.join(f'{k}=' for k in missing)}: dd-bench {task} {usage}")


def _older_set_fingerprint(cfg: DictConfig, meta: dict[str, Any]) -> str | None:
    """The data fingerprint of a set made before its provenance recorded one: that of the data set loaded here, when
    it is here and matches the set (the same image space, ZCA matrix included, and the same classes); else None and
    the datasheet says it is not recorded (an export never fails for want of the data)."""
    from dd_bench.methods.base import image_space_of

    try:
        real = load_real(cfg, dataset_name=meta["dataset"])
    except UserError:
        return None
    same = image_space_of(real) == meta.get("image_space") and list(real.class_names) == meta.get("class_names")
    return real.fingerprint() if same else None


def task_export(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.exchange import export_synset
    from dd_bench.exchange.export import get_exporter
    from dd_bench.results import load_records
    from dd_bench.synset import read_meta

    _required(cfg, "export", "synset", "format", "out")
    get_exporter(cfg.format)  # an unknown format fails here, before any work, listing the registered ones
    meta = read_meta(cfg.synset)
    zca = None
    if (meta.get("image_space") or {}).get("space") == "zca":
        zca = load_real(cfg, dataset_name=meta["dataset"]).zca
    fingerprint = None if (meta.get("provenance") or {}).get("data_fingerprint") else _older_set_fingerprint(cfg, meta)
    # The records beside the set (<results>/synsets/<set> -> <results>) and under results=, whichever hold any.
    found = {}
    for where in dict.fromkeys([Path(cfg.synset).resolve().parent.parent, Path(cfg.results).resolve()]):
        for r in load_records(where) if where.is_dir() else []:
            if meta.get("set_hash") and r.set_hash == meta["set_hash"]:
                found[r.record_id] = r
    records = list(found.values())
    materialised = None
    if cfg.materialise:
        from dd_bench.eval import get_protocol
        from dd_bench.labels.relabel import relabel_to_disk

        protocol = get_protocol(cfg.materialise)
        if not protocol.trains_by_kd:
            raise UserError(f"materialise={cfg.materialise}: labels are materialised for a kd protocol (kd, "
                            "kd-quick, ...); this one trains on the set's own labels")
        materialised = relabel_to_disk(synset_dir=Path(cfg.synset), real=load_real(cfg, dataset_name=meta["dataset"]),
                                       protocol=protocol, cache_dir=cache_dir_of(cfg), progress=cfg.progress,
                                       kind="fkd")
    out = export_synset(cfg.synset, fmt=cfg.format, out=cfg.out, records=records, zca=zca, cache_dir=cache_dir_of(cfg),
                        materialised=materialised, data_fingerprint=fingerprint)
    print(f"exported {cfg.synset} as {cfg.format} to {out} (datasheet.json with {len(records)} recorded result(s))")
    return {"out": str(out), "records": []}


def task_import(cfg: DictConfig) -> dict[str, Any]:
    from dd_bench.exchange import import_set
    from dd_bench.exchange.imports import get_importer
    from dd_bench.synset import read_meta

    _required(cfg, "import", "format", "path", "out")
    get_importer(cfg.format)  # an unknown format fails here, listing the registered ones
    out = import_set(cfg.format, cfg.path, real=load_real(cfg), out=cfg.out, space=cfg.space, experiment=cfg.entry,
                     name=cfg.name, classes=cfg.classes)
    meta = read_meta(out)
    print(f"imported {cfg.path} ({cfg.format}) as {out}: {meta['num_images']} images of {meta['dataset']}, ipc "
          f"{meta['ipc']}, {meta['label_kind']} labels; score it with dd-bench evaluate synset={out}")
    return {"synset": str(out), "records": []}
