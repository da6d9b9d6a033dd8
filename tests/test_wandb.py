"""logger=wandb with the REAL wandb package in offline mode: one run per record with flat config and summary,
the record JSON as a run file, the set as a synthetic-set Artifact, the leaderboard as a wandb.Table, and the
leaderboard rebuilt from the runs' record files."""

from __future__ import annotations

import json

import pytest

wandb = pytest.importorskip("wandb")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    return tmp_path


def test_one_offline_run_per_record_with_files_table_and_artifact(compose_cfg, offline):
    from dd_bench.results import RunRecord
    from dd_bench.results.wandb_logger import CONFIG_FILE, RECORD_FILE, SUMMARY_FILE, log_records
    from dd_bench.tasks import run

    result = run(compose_cfg("task=run", "method=random", "eval=quick", "eval.epochs=2", "models=[mlp]", "seeds=2",
                             "ipc=1"))
    records = [RunRecord.from_dict(r) for r in result["records"]]
    assert len(records) == 2  # the set's evaluation and its random-subset reference
    logged = log_records(records, project="ddb-test", entity=None, mode="offline", job_type="run",
                         overrides=["method=random", "ipc=1"], directory=offline)
    runs = sorted(offline.glob("wandb/offline-run-*"))
    assert len(runs) == 2 and len(logged) == 2
    own, record = next((item, r) for item, r in zip(logged, records) if r.kind == "evaluation")
    files = own["files"]
    back = RunRecord.from_dict(json.loads((files / RECORD_FILE).read_text()))
    assert back.record_hash == record.record_hash and back.accuracies == record.accuracies
    config = json.loads((files / CONFIG_FILE).read_text())
    assert {"method", "dataset", "ipc", "model", "protocol", "label_source", "seeds", "record_hash",
            "overrides"} <= set(config) and config["overrides"] == ["method=random", "ipc=1"]
    assert all(not isinstance(v, dict) for v in config.values())  # flat
    summary = json.loads((files / SUMMARY_FILE).read_text())
    assert {"acc_mean", "acc_std", "storage_bytes", "eval_seconds"} <= set(summary)
    reference = next(r for r in records if r.kind == "reference")
    assert summary["ior"] == pytest.approx(record.acc_mean - reference.acc_mean)  # over the task's random subset
    artifact = own["artifact"]
    assert artifact.type == "synthetic-set" and artifact.metadata["method"] == "random"
    assert {"meta.json", "synset.safetensors", "preview.png"} <= set(artifact.manifest.entries)


def test_leaderboard_table_and_rebuild_from_offline_runs(compose_cfg, offline):
    from dd_bench.tasks import run

    cfg = compose_cfg("task=run", "method=random", "eval=quick", "eval.epochs=2", "models=[mlp]", "seeds=1",
                      "logger=wandb", "logger.mode=offline", "logger.project=ddb-test")
    run(cfg)
    board = run(compose_cfg("task=leaderboard", "logger=wandb", "logger.mode=offline", "logger.project=ddb-test"))
    (table,) = offline.glob("**/files/media/table/leaderboard_*.table.json")
    rows = json.loads(table.read_text())
    assert "acc_mean" in rows["columns"] and len(rows["data"]) == len(board["board"])
    rebuilt = run(compose_cfg("task=leaderboard", f"wandb_project={offline}"))["board"]
    assert sorted(rebuilt["record_id"]) == sorted(board["board"]["record_id"])


def test_distill_logs_its_curves_as_they_happen_then_the_set(compose_cfg, offline):
    from dd_bench.methods.loop import DISTILL_CURVES
    from dd_bench.results.wandb_logger import CURVES_FILE
    from dd_bench.tasks import run

    run(compose_cfg("task=distill", "method=dm", "method.iterations=3", "method.batch_real=16", "logger=wandb",
                    "logger.mode=offline", "logger.project=ddb-test"))
    (run_dir,) = offline.glob("**/wandb/offline-run-*")
    curves = [json.loads(line) for line in (run_dir / "files" / CURVES_FILE).read_text().splitlines()]
    assert [c["iteration"] for c in curves] == [0, 1, 2] and all("loss" in c for c in curves)
    assert list(run_dir.glob("files/media/images/preview_*.png"))
    assert DISTILL_CURVES.get() is None  # the observer is gone after the run


def test_trajectory_matching_curves_carry_the_learned_lr_and_validation_accuracy(compose_cfg, offline):
    from dd_bench.methods import METHODS
    from dd_bench.results.wandb_logger import CURVES_FILE
    from dd_bench.tasks import run

    options = [f"method.{k}={v}" for k, v in METHODS.get("mtt").TEST_OPTIONS.items()]
    run(compose_cfg("task=distill", "method=mtt", *options, "method.iterations=4", "method.eval_every=2",
                    "method.eval_epochs=1", "method.eval_networks=1", "validation=0.1", "logger=wandb",
                    "logger.mode=offline", "logger.project=ddb-test"))
    (run_dir,) = offline.glob("**/wandb/offline-run-*")
    curves = [json.loads(line) for line in (run_dir / "files" / CURVES_FILE).read_text().splitlines()]
    assert all("lr" in c for c in curves) and "val_acc" not in curves[0] and "val_acc" in curves[-1]
