"""Weights & Biases as a view of run records (optional extra ``[wandb]``; ``logger=wandb``, imported lazily).

* **One wandb run per record** (one evaluated set x model x protocol x label source): flat config keys (method,
  dataset, ipc, model, protocol, label source, seeds, config hash, the keys the command line overrode) and flat
  summary metrics (``acc_mean``, ``acc_std``, ``ior`` (over the task's paired random subset), ``acc_test_selected``,
  ``lrs``/``ars``, storage bytes, distill and
  eval seconds), ``group`` = the sweep (Hydra multirun directory) or ``<dataset>-ipc<ipc>``, and tags, so wandb's
  own runs table sorts and groups them as a leaderboard.
* Each run carries its record JSON (``dd_bench_record.json``), and the config and summary it was given, as run
  files; the evaluated set is an **Artifact** of type ``synthetic-set`` (its ``meta.json`` as metadata) that the
  run logs (wandb keeps one version per content digest).
* A distillation is a run of its own (``job_type=distill``): its loss and the loop's other numbers (learned lr,
  ...) logged as they happen, then the set as an Artifact with its preview image.
* ``dd-bench leaderboard logger=wandb`` publishes the leaderboard as a ``wandb.Table``;
  ``dd-bench leaderboard wandb_project=ENTITY/PROJECT`` (or a directory of offline runs) rebuilds the local
  leaderboard from the runs' record files, through the public API, never by parsing wandb's internal formats.

The config always comes from Hydra; nothing is read back from wandb to configure anything.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError
from dd_bench.results.ior import ior_by_record
from dd_bench.results.record import RunRecord

RECORD_FILE = "dd_bench_record.json"
CONFIG_FILE = "dd_bench_config.json"
SUMMARY_FILE = "dd_bench_summary.json"
CURVES_FILE = "dd_bench_curves.jsonl"


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise UserError("logger=wandb needs the wandb package: pip install 'dd-bench[wandb]' (or use logger=none)")\
            from None
    return wandb


def flat_config(record: RunRecord, overrides: list[str]) -> dict[str, Any]:
    storage = record.storage or {}
    return {"kind": record.kind, "method": record.method, "dataset": record.dataset, "ipc": record.ipc,
            "model": record.model, "protocol": record.protocol, "protocol_version": record.protocol_version,
            "ranked": record.ranked, "label_source": storage.get("label_source", "hard"),
            "label_identity": record.extra.get("label_identity"), "seeds": list(record.seeds),
            "n_seeds": len(record.seeds), "record_hash": record.record_hash, "set_hash": record.set_hash,
            "preset": record.preset, "experiment": (record.config or {}).get("experiment"),
            "overrides": list(overrides), "git_sha": record.git_sha, "device": record.device}


def flat_summary(record: RunRecord, ior: float | None = None) -> dict[str, Any]:
    """``ior``: points over the paired random-subset row (:mod:`dd_bench.results.ior`), when one was logged with it."""
    storage = record.storage or {}
    scores = record.extra.get("robust_scores") or {}
    selected = record.extra.get("acc_test_selected") or {}
    ior = None if ior is None or math.isnan(ior) else ior
    out = {"acc_mean": record.acc_mean, "acc_std": record.acc_std, "ior": ior,
           "acc_test_selected": selected.get("mean"),
           "lrs": (scores.get("lrs") or {}).get("lrs"), "ars": (scores.get("ars") or {}).get("ars"),
           "images_bytes": storage.get("images_bytes"), "labels_bytes": storage.get("labels_bytes"),
           "eval_assets_bytes": storage.get("eval_assets_bytes"), "storage_bytes": storage.get("total_bytes"),
           "storage_with_assets_bytes": storage.get("total_with_assets_bytes"),
           "distill_seconds": record.distill_seconds, "eval_seconds": record.eval_seconds}
    return {k: v for k, v in out.items() if v is not None}


def _group(record: RunRecord, sweep: str | None) -> str:
    return sweep or f"{record.dataset}-ipc{record.ipc if record.ipc is not None else 'all'}"


def log_records(records: list[RunRecord], *, project: str | None, entity: str | None, mode: str, job_type: str,
                overrides: list[str] | None = None, sweep: str | None = None, directory: str | Path | None = None
                ) -> list[dict[str, Any]]:
    """One wandb run per record; returns, per run, its files directory and the artifact it logged (or None)."""
    if not records:
        return []
    wandb = _import_wandb()
    iors = ior_by_record(records)  # the random-subset rows of the same task pair with its method rows
    logged = []
    for record in records:
        config = flat_config(record, overrides or [])
        name = "-".join(str(p) for p in (record.method, record.dataset, f"ipc{record.ipc}", record.model,
                                         record.protocol, config["label_source"]))
        run = wandb.init(project=project, entity=entity, mode=mode, job_type=job_type, group=_group(record, sweep),
                         name=name, tags=[record.kind, record.method, record.dataset, record.protocol,
                                          config["label_source"]],
                         config=config, dir=None if directory is None else str(directory), reinit="create_new")
        artifact = None
        try:
            summary = flat_summary(record, iors.get(record.record_id))
            run.summary.update(summary)
            files = Path(run.dir)
            (files / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=1, sort_keys=True, default=str))
            (files / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
            (files / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True))
            synset = Path(record.synset) if record.synset else None
            if synset is not None and (synset / "meta.json").is_file():
                artifact = synset_artifact(wandb, synset, record.set_hash)
                run.log_artifact(artifact)
                if (synset / "preview.png").is_file():
                    run.log({"preview": wandb.Image(str(synset / "preview.png"))})
            logged.append({"files": files, "artifact": artifact})
        finally:
            run.finish()
    return logged


def synset_artifact(wandb: Any, synset: Path, set_hash: str | None) -> Any:
    """The set directory as a ``synthetic-set`` Artifact with its meta.json as metadata."""
    meta = json.loads((synset / "meta.json").read_text())
    artifact = wandb.Artifact(f"synset-{set_hash or meta.get('set_hash') or meta.get('tensors_sha256', '')[:16]}",
                              type="synthetic-set", metadata=meta)
    artifact.add_dir(str(synset))
    return artifact


@contextlib.contextmanager
def distill_run(*, project: str | None, entity: str | None, mode: str, config: dict[str, Any], name: str,
                group: str, directory: str | Path | None = None):
    """A wandb run around a distillation: its curves (:data:`dd_bench.methods.loop.DISTILL_CURVES`) are logged as
    they happen, under ``<loop>/<metric>``, and kept as the run file ``dd_bench_curves.jsonl``; the context yields
    ``attach(synset_dir)``, which logs the set as an Artifact with its preview image."""
    from dd_bench.methods.loop import DISTILL_CURVES

    wandb = _import_wandb()
    run = wandb.init(project=project, entity=entity, mode=mode, job_type="distill", config=config, group=group,
                     name=name, tags=["distill", str(config.get("method"))],
                     dir=None if directory is None else str(directory), reinit="create_new")
    curves = Path(run.dir) / CURVES_FILE

    def sink(loop: str, metrics: dict[str, float]) -> None:
        prefix = loop or "distill"
        run.log({f"{prefix}/{k}": v for k, v in metrics.items()})
        with curves.open("a") as f:
            f.write(json.dumps({"loop": prefix, **metrics}) + "\n")

    def attach(synset_dir: str | Path) -> Any:
        synset = Path(synset_dir)
        meta = json.loads((synset / "meta.json").read_text())
        artifact = synset_artifact(wandb, synset, meta.get("set_hash"))
        run.log_artifact(artifact)
        if (synset / "preview.png").is_file():
            run.log({"preview": wandb.Image(str(synset / "preview.png"))})
        seconds = (meta.get("provenance") or {}).get("distill_seconds")
        if seconds is not None:
            run.summary["distill_seconds"] = seconds
        return artifact

    token = DISTILL_CURVES.set(sink)
    try:
        yield attach
    finally:
        DISTILL_CURVES.reset(token)
        run.finish()


def log_leaderboard(df: Any, *, project: str | None, entity: str | None, mode: str,
                    directory: str | Path | None = None) -> Path:
    """The leaderboard as a wandb.Table in a run of its own; returns that run's files directory."""
    wandb = _import_wandb()
    run = wandb.init(project=project, entity=entity, mode=mode, job_type="leaderboard", name="leaderboard",
                     dir=None if directory is None else str(directory), reinit="create_new")
    try:
        table = df.astype(object).where(df.notna(), None)
        run.log({"leaderboard": wandb.Table(dataframe=table)})
        return Path(run.dir)
    finally:
        run.finish()


def records_from_wandb(source: str) -> list[RunRecord]:
    """The records of every run under ``source``: a directory of (offline) run directories, read from their
    record files, or ``ENTITY/PROJECT`` through wandb's public API (each run's record file downloaded)."""
    local = Path(source)
    if local.is_dir():
        paths = sorted(local.rglob(f"files/{RECORD_FILE}"))
        return [RunRecord.from_dict(json.loads(p.read_text())) for p in paths]
    wandb = _import_wandb()
    import tempfile

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in wandb.Api().runs(source):
            try:
                handle = run.file(RECORD_FILE).download(root=f"{tmp}/{run.id}", replace=True)
            except Exception:  # noqa: BLE001 - a run that is not a dd-bench record run
                continue
            with handle:
                out.append(RunRecord.from_dict(json.load(handle)))
    return out
