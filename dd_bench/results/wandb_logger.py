"""Weights & Biases as a view of run records (optional extra ``[wandb]``; ``logger=wandb``, imported lazily).

* **One wandb run per record** (one evaluated set x model x protocol x label source), **whose id is the record
  hash**: a rerun of a job whose records were kept opens the same run again (``resume="allow"``) instead of adding
  a row, so the runs table holds one row per record however often a job runs (offline, each invocation still
  writes its own ``offline-run-*`` folder, all with that id; ``wandb sync`` folds them into the one run).
* The run config is every resolved value of what ran, as flat keys: the record's own (method, dataset, ipc, model,
  protocol, label source, seeds, hashes, device), the job's composed config flattened (``dataset.zca``,
  ``seed``, ``validation``, ``image_store``, ...), ``method.*`` the options the set was made with (from its
  ``meta.json``, so ``dd-bench evaluate`` of someone else's set shows that set's options), ``eval.*`` every field
  of the protocol that ran (``eval.epochs``, ``eval.lr``, ..., also the ones the command line left at their
  defaults), and ``overrides`` (the keys the command line set). Flat summary metrics (``acc_mean``, ``acc_std``,
  ``ior`` (over the task's paired random subset), ``acc_test_selected``, ``lrs``/``ars``, storage bytes, distill
  and eval seconds), ``group`` = the sweep (Hydra multirun directory) or ``<dataset>-ipc<ipc>``, and tags, so
  wandb's own runs table filters, sorts and groups them as a leaderboard.
* Each run carries its record JSON (``dd_bench_record.json``), and the config and summary it was given, as run
  files; the evaluated set is an **Artifact** of type ``synthetic-set`` (its ``meta.json`` as metadata, its hidden
  entries such as a ``.checkpoint/`` left out) that the run logs (wandb keeps one version per content digest).
* A distillation is a run of its own (``job_type=distill``, id ``distill-<set hash>``, resumed the same way, with
  the same flat config): its loss and the loop's other numbers (learned lr, ...) logged as they happen under one
  key per quantity (``distill/loss``, ``distill/lr``, ``distill/iteration``), so the curves of every method and
  IPC overlay in one panel and are told apart by the config; then the set as an Artifact with its preview image.
* ``dd-bench leaderboard logger=wandb`` publishes the leaderboard as a ``wandb.Table``;
  ``dd-bench leaderboard wandb_project=ENTITY/PROJECT`` (or a directory of offline runs) rebuilds the local
  leaderboard from the runs' record files, through the public API, never by parsing wandb's internal formats.

The config always comes from Hydra; nothing is read back from wandb to configure anything.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError
from dd_bench.results.ior import ior_by_record
from dd_bench.results.record import RunRecord
from dd_bench.tracking.curves import DISTILL_CURVES

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


# Parts of a job's config that say where it logged or how it printed, not what ran; the demo block only means
# something to the demo.
_NOT_WHAT_RAN = ("logger", "hydra", "progress")
# wandb refuses these characters in a run id; a legacy set hash reads "sha256:<hex>".
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def run_id(digest: str, *, prefix: str = "") -> str:
    """A valid wandb run id derived from a hash, the same on every run of the same config: a record's id is its
    record hash (64 hex digits); ``prefix`` + a shortened hash stays within the same 64 characters (56 hex digits
    still never collide)."""
    return _ID_UNSAFE.sub("-", f"{prefix}{digest}")[:64]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"method": {"lr_img": 1.0}}`` -> ``{"method.lr_img": 1.0}``; lists stay values (``models``, ``seeds``)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _job_keys(job_config: dict[str, Any] | None) -> dict[str, Any]:
    """The composed job config as flat keys, less where it logged and how it printed (and the demo block outside
    the demo)."""
    job = dict(job_config or {})
    drop = _NOT_WHAT_RAN if job.get("task") == "demo" else (*_NOT_WHAT_RAN, "demo")
    return _flatten({k: v for k, v in job.items() if k not in drop})


def _method_keys(options: dict[str, Any] | None) -> dict[str, Any]:
    return _flatten({"method": dict(options)}) if options else {}


def flat_config(record: RunRecord, overrides: list[str], *, set_meta: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """Every resolved value of what ran, as flat keys (see the module docstring); later sources win a shared key:
    the job's config, then the set's method options, then the protocol that ran, then the record's own fields."""
    out = _job_keys(record.config)
    # method.*: the options the set was made with. The job's own method group describes the set only when the job
    # made it (an `evaluate` job's group is the default method's); without the set's meta.json, keep it only then.
    made_with = (set_meta or {}).get("config")
    job_method = (record.config or {}).get("method") or {}
    if isinstance(made_with, dict) or job_method.get("name") != record.method:
        out = {k: v for k, v in out.items() if not k.startswith("method.")}
        out.update(_method_keys(made_with if isinstance(made_with, dict) else None))
    # eval.*: every field of the protocol that ran (the job's eval group leaves the unchanged ones null).
    protocol = {k: v for k, v in (record.extra.get("protocol") or {}).items() if k != "description"}
    out.update(_flatten({"eval": protocol}))
    if record.extra.get("batched") is not None:
        out["eval.batched"] = record.extra["batched"]
    storage = record.storage or {}
    out.update({"kind": record.kind, "method": record.method, "dataset": record.dataset, "ipc": record.ipc,
                "model": record.model, "protocol": record.protocol, "protocol_version": record.protocol_version,
                "ranked": record.ranked, "label_source": storage.get("label_source", "hard"),
                "label_identity": record.extra.get("label_identity"), "seeds": list(record.seeds),
                "n_seeds": len(record.seeds), "record_hash": record.record_hash, "set_hash": record.set_hash,
                "preset": record.preset, "experiment": (record.config or {}).get("experiment"),
                "overrides": list(overrides), "git_sha": record.git_sha, "device": record.device})
    return out


def distill_config(*, job_config: dict[str, Any], method: str, method_options: dict[str, Any], set_hash: str,
                   overrides: list[str]) -> dict[str, Any]:
    """A distillation run's config: the job's config as flat keys, ``method.*`` the options the method ran with
    (CV-DD's measured prior file included), and the set it makes."""
    out = {k: v for k, v in _job_keys(job_config).items() if not k.startswith("method.")}
    out.update(_method_keys({"name": method, **method_options}))
    dataset = job_config.get("dataset")
    out.update({"kind": "distill", "method": method,
                "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset, "ipc": job_config.get("ipc"),
                "seed": job_config.get("seed"), "set_hash": set_hash, "preset": job_config.get("preset"),
                "experiment": job_config.get("experiment"), "overrides": list(overrides)})
    return out


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


def _init(wandb: Any, *, config: dict[str, Any], directory: str | Path | None, **kwargs: Any) -> Any:
    """``wandb.init`` resuming the run of this id when there is one: a rerun adds no row."""
    return wandb.init(config=config, dir=None if directory is None else str(directory), resume="allow",
                      reinit="create_new", **kwargs)


def log_records(records: list[RunRecord], *, project: str | None, entity: str | None, mode: str, job_type: str,
                overrides: list[str] | None = None, sweep: str | None = None, directory: str | Path | None = None
                ) -> list[dict[str, Any]]:
    """One wandb run per record, its id the record hash; returns, per run, its id, its files directory, the config
    wandb holds for it and the artifact it logged (or None)."""
    if not records:
        return []
    wandb = _import_wandb()
    iors = ior_by_record(records)  # the random-subset rows of the same task pair with its method rows
    logged = []
    for record in records:
        synset = Path(record.synset) if record.synset else None
        meta = None
        if synset is not None and (synset / "meta.json").is_file():
            meta = json.loads((synset / "meta.json").read_text())
        config = flat_config(record, overrides or [], set_meta=meta)
        name = "-".join(str(p) for p in (record.method, record.dataset, f"ipc{record.ipc}", record.model,
                                         record.protocol, config["label_source"]))
        run = _init(wandb, config=config, directory=directory, id=run_id(record.record_hash or record.record_id),
                    project=project, entity=entity, mode=mode, job_type=job_type, group=_group(record, sweep),
                    name=name, tags=[record.kind, record.method, record.dataset, record.protocol,
                                     config["label_source"]])
        artifact = None
        try:
            summary = flat_summary(record, iors.get(record.record_id))
            run.summary.update(summary)
            files = Path(run.dir)
            (files / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=1, sort_keys=True, default=str))
            (files / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
            (files / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, sort_keys=True))
            if meta is not None:
                artifact = _log_set(wandb, run, synset=synset, meta=meta)
            logged.append({"id": run.id, "files": files, "config": dict(run.config), "artifact": artifact})
        finally:
            run.finish()
    return logged


def _log_set(wandb: Any, run: Any, *, synset: Path, meta: dict[str, Any]) -> Any:
    """The set as an Artifact (one version per content digest, so logging it again adds nothing), and its preview
    image unless the run was resumed (it has one already; a second would be a new history step)."""
    artifact = synset_artifact(wandb, synset, meta.get("set_hash"))
    run.log_artifact(artifact)
    if (synset / "preview.png").is_file() and not run.resumed:
        run.log({"preview": wandb.Image(str(synset / "preview.png"))})
    return artifact


def synset_artifact(wandb: Any, synset: Path, set_hash: str | None) -> Any:
    """The set directory as a ``synthetic-set`` Artifact with its meta.json as metadata. Hidden entries are left
    out: a ``.checkpoint/`` a distillation kept to resume from (several times the set's size) and temporary files
    of an atomic write are not part of the set."""
    meta = json.loads((synset / "meta.json").read_text())
    artifact = wandb.Artifact(f"synset-{set_hash or meta.get('set_hash') or meta.get('tensors_sha256', '')[:16]}",
                              type="synthetic-set", metadata=meta)
    for path in sorted(synset.rglob("*")):
        relative = path.relative_to(synset)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            artifact.add_file(str(path), name=relative.as_posix())
    return artifact


@contextlib.contextmanager
def distill_run(*, project: str | None, entity: str | None, mode: str, config: dict[str, Any], set_hash: str,
                name: str, group: str, directory: str | Path | None = None):
    """A wandb run around a distillation (id ``distill-<set hash>``, resumed by a rerun; ``config`` from
    :func:`distill_config`): its curves (:data:`dd_bench.tracking.curves.DISTILL_CURVES`) are logged as they happen,
    under ``distill/<quantity>`` whatever the method (a method that runs several loops, such as HeLlO's projector
    fit then its image steps, logs them one after the other; each point's loop label is in the run file
    ``dd_bench_curves.jsonl``); the context yields ``attach(synset_dir)``, which logs the set as an Artifact with
    its preview image."""
    wandb = _import_wandb()
    run = _init(wandb, config=config, directory=directory, id=run_id(set_hash, prefix="distill-"), project=project,
                entity=entity, mode=mode, job_type="distill", group=group, name=name,
                tags=["distill", str(config.get("method"))])
    files = Path(run.dir)
    (files / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
    curves = files / CURVES_FILE

    def sink(loop: str, metrics: dict[str, float]) -> None:
        # One key per quantity: the loop label ("dm ipc1") names the method and IPC, which the config holds, so
        # keying by it would give every method x IPC a panel of its own.
        run.log({f"distill/{k}": v for k, v in metrics.items()})
        with curves.open("a") as f:
            f.write(json.dumps({"loop": loop or "distill", **metrics}) + "\n")

    def attach(synset_dir: str | Path) -> Any:
        synset = Path(synset_dir)
        meta = json.loads((synset / "meta.json").read_text())
        artifact = _log_set(wandb, run, synset=synset, meta=meta)
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
        # A rerun writes another offline folder for the same run (its id is the record hash): one record per run,
        # the newest folder's (wandb names them run-<time>-<id> or offline-run-<time>-<id>).
        newest: dict[str, RunRecord] = {}
        for path in sorted(local.rglob(f"files/{RECORD_FILE}"),
                           key=lambda p: p.parent.parent.name.removeprefix("offline-")):
            record = RunRecord.from_dict(json.loads(path.read_text()))
            newest[record.record_id] = record
        return list(newest.values())
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
