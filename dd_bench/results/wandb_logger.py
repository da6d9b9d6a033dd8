"""Weights & Biases as a view of run records (optional extra; ``logger=wandb``).

wandb receives the resolved config and the records' explicit summary keys; it never supplies configuration.
It is imported lazily, so dd-bench runs without it installed.
"""

from __future__ import annotations

from typing import Any

from dd_bench.errors import UserError
from dd_bench.results.record import RunRecord

SUMMARY_KEYS = ("acc_mean", "acc_std", "eval_seconds", "distill_seconds")


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise UserError("logger=wandb needs the wandb package: pip install 'dd-bench[wandb]' (or use logger=none)")\
            from None
    return wandb


def log_records(records: list[RunRecord], *, project: str | None, entity: str | None, mode: str,
                config: dict[str, Any], job_type: str) -> None:
    """One wandb run per call: the config, each record's summary under ``<model>/<kind>/<method>/...`` keys and
    a table of all records, so leaderboards can be compared across runs."""
    if not records:
        return
    wandb = _import_wandb()
    run = wandb.init(project=project, entity=entity, mode=mode, config=config, job_type=job_type, reinit=True)
    try:
        columns = ["kind", "method", "dataset", "ipc", "protocol", "model", "n_seeds", "acc_mean", "acc_std",
                   "storage_bytes", "distill_seconds", "eval_seconds", "record_id"]
        rows = []
        for r in records:
            prefix = f"{r.model}/{r.kind}/{r.method}"
            for key in SUMMARY_KEYS:
                value = getattr(r, key)
                if value is not None:
                    run.summary[f"{prefix}/{key}"] = value
            run.summary[f"{prefix}/storage_bytes"] = r.storage.get("total_bytes")
            rows.append([r.kind, r.method, r.dataset, r.ipc, r.protocol, r.model, len(r.seeds), r.acc_mean,
                         r.acc_std, r.storage.get("total_bytes"), r.distill_seconds, r.eval_seconds, r.record_id])
        run.log({"records": wandb.Table(columns=columns, data=rows)})
    finally:
        run.finish()
