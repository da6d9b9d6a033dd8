"""logger=wandb with the REAL wandb package in offline mode: one run per record with flat config and summary (every
resolved method, protocol and dataset value as a flat key), its id the record hash so a rerun adds no run, the
record JSON as a run file, the set as a synthetic-set Artifact without its checkpoint, distillation curves under one
key per quantity, the leaderboard as a wandb.Table, and the leaderboard rebuilt from the runs' record files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

wandb = pytest.importorskip("wandb")

def _run_id(folder: Path) -> str:
    """The id of the run an offline-run-<time>-<id>[-n] folder holds: its log file is run-<id>.wandb."""
    (log,) = folder.glob("run-*.wandb")
    return log.stem.removeprefix("run-")


def _run_ids(root: Path) -> list[str]:
    """The id of every run folder under root, one entry per folder (a rerun of a run adds a folder, not an id)."""
    return [_run_id(p) for p in sorted(root.glob("**/wandb/offline-run-*"))]


@pytest.fixture
def logged_keys(monkeypatch):
    """{run id: every key the run logged} for the runs opened while the test runs (a spy on wandb.init)."""
    keys: dict[str, set[str]] = {}
    real_init = wandb.init

    def init(**kwargs):
        run = real_init(**kwargs)
        real_log = run.log

        def log(data, *args, **kw):
            keys.setdefault(run.id, set()).update(data)
            return real_log(data, *args, **kw)

        run.log = log
        return run

    monkeypatch.setattr(wandb, "init", init)
    return keys


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
    from dd_bench.app.tasks import run
    from dd_bench.results import RunRecord
    from dd_bench.results.wandb_logger import CONFIG_FILE, RECORD_FILE, SUMMARY_FILE, log_records

    result = run(compose_cfg("task=run", "method=random", "eval=quick", "eval.epochs=2", "models=[mlp]", "seeds=2",
                             "ipc=1"))
    records = [RunRecord.from_dict(r) for r in result["records"]]
    assert len(records) == 2  # the set's evaluation and its random-subset reference
    logged = log_records(records, project="ddb-test", entity=None, mode="offline", job_type="run",
                         overrides=["method=random", "ipc=1"], directory=offline)
    runs = sorted(offline.glob("wandb/offline-run-*"))
    assert len(runs) == 2 and len(logged) == 2
    own, record = next((item, r) for item, r in zip(logged, records, strict=True) if r.kind == "evaluation")
    files = own["files"]
    back = RunRecord.from_dict(json.loads((files / RECORD_FILE).read_text()))
    assert back.record_hash == record.record_hash and back.accuracies == record.accuracies
    config = json.loads((files / CONFIG_FILE).read_text())
    assert {"method", "dataset", "ipc", "model", "protocol", "label_source", "seeds", "record_hash",
            "overrides"} <= set(config) and config["overrides"] == ["method=random", "ipc=1"]
    assert all(not isinstance(v, dict) for v in config.values())  # flat
    assert own["id"] == record.record_hash  # a rerun opens this run again
    held = own["config"]  # what wandb itself holds as the run's config
    assert held["eval.epochs"] == 2 and held["eval.batch_size"] > 0 and held["eval.lr"] > 0  # resolved, not null
    assert held["eval.name"] == record.protocol and held["method.name"] == "random"
    assert held["dataset.name"] == "digits" and held["dataset.zca"] is False and held["seed"] == 0
    assert {"validation", "image_store", "models", "references"} <= set(held)
    assert not [k for k in held if k.startswith(("logger.", "demo.", "hydra.", "progress"))]  # not what ran
    summary = json.loads((files / SUMMARY_FILE).read_text())
    assert {"acc_mean", "acc_std", "storage_bytes", "eval_seconds"} <= set(summary)
    reference = next(r for r in records if r.kind == "reference")
    assert summary["ior"] == pytest.approx(record.acc_mean - reference.acc_mean)  # over the task's random subset
    artifact = own["artifact"]
    assert artifact.type == "synthetic-set" and artifact.metadata["method"] == "random"
    assert {"meta.json", "synset.safetensors", "preview.png"} <= set(artifact.manifest.entries)


def test_set_artifact_leaves_out_the_checkpoint(compose_cfg, offline):
    from dd_bench.app.tasks import run
    from dd_bench.results.wandb_logger import synset_artifact

    synset = Path(run(compose_cfg("task=distill", "method=random", "ipc=1"))["synset"])
    (synset / ".checkpoint").mkdir()
    (synset / ".checkpoint" / "checkpoint.safetensors").write_bytes(b"x" * 64)  # as a resumable run leaves it
    (synset / "extra").mkdir()
    (synset / "extra" / "notes.txt").write_text("kept")
    entries = set(synset_artifact(wandb, synset, "h" * 64).manifest.entries)
    assert {"meta.json", "synset.safetensors", "extra/notes.txt"} <= entries
    assert not [e for e in entries if ".checkpoint" in e]


def test_a_rerun_of_a_kept_job_adds_no_run_and_logs_every_resolved_value(compose_cfg, offline, logged_keys):
    from dd_bench.app.tasks import run
    from dd_bench.results import load_records
    from dd_bench.results.wandb_logger import CONFIG_FILE, records_from_wandb

    job = ("task=run", "method=dm", "method.iterations=2", "method.batch_real=16", "eval=quick", "eval.epochs=1",
           "models=[mlp]", "seeds=1", "ipc=1", "logger=wandb", "logger.mode=offline", "logger.project=ddb-test")
    first = run(compose_cfg(*job))
    ids = _run_ids(offline)
    records = load_records(offline / "runs")
    set_hash = next(r.set_hash for r in records if r.kind == "evaluation")
    # the distillation, the set's evaluation and its random-subset reference: each run's id is its record's hash
    distill_id = f"distill-{set_hash}"[:64]
    assert sorted(ids) == sorted([distill_id, *(r.record_hash for r in records)])
    again = run(compose_cfg(*job))
    assert again["kept"] == 1
    assert [r["record_hash"] for r in again["records"]] == [r["record_hash"] for r in first["records"]]
    assert len(_run_ids(offline)) == 2 * len(ids) and set(_run_ids(offline)) == set(ids)  # folders, not runs
    configs = {_run_id(p.parent.parent): json.loads(p.read_text())
               for p in offline.glob(f"**/wandb/offline-run-*/files/{CONFIG_FILE}")}
    evaluation_id = next(r.record_hash for r in records if r.kind == "evaluation")
    distill, evaluation = configs[distill_id], configs[evaluation_id]
    for config in (distill, evaluation):
        assert config["method"] == "dm" and config["method.iterations"] == 2 and config["method.batch_real"] == 16
        assert {"method.lr_img", "method.init", "dataset.name", "seed", "ipc"} <= set(config)
    assert evaluation["eval.epochs"] == 1 and evaluation["eval.augment"] and evaluation["seeds"] == [0]
    # distillation curves: one key per quantity, the same whatever the method or IPC
    assert logged_keys[distill_id] >= {"distill/loss", "distill/iteration"}
    assert not [k for keys in logged_keys.values() for k in keys if "ipc" in k or k.startswith("dm")]
    assert sorted(r.record_hash for r in records_from_wandb(str(offline))) == sorted(r.record_hash for r in records)
    assert not list((offline / "runs").rglob("*.lock"))  # no lock file outlives its run


def test_distill_curve_keys_do_not_depend_on_the_method(offline, logged_keys):
    from dd_bench.methods.loop import DISTILL_CURVES
    from dd_bench.results.wandb_logger import distill_run

    for method, ipc in (("dc", 10), ("mtt", 50)):
        with distill_run(project="ddb-test", entity=None, mode="offline", config={"method": method, "ipc": ipc},
                         set_hash=f"{method}-set", name=method, group="g", directory=offline):
            DISTILL_CURVES.get()(f"{method} ipc{ipc}", {"iteration": 0, "loss": 1.5, "lr": 0.01})
    assert logged_keys["distill-dc-set"] == logged_keys["distill-mtt-set"] == {"distill/iteration", "distill/loss",
                                                                                "distill/lr"}


def test_leaderboard_table_and_rebuild_from_offline_runs(compose_cfg, offline):
    from dd_bench.app.tasks import run

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
    from dd_bench.app.tasks import run
    from dd_bench.methods.loop import DISTILL_CURVES
    from dd_bench.results.wandb_logger import CURVES_FILE

    run(compose_cfg("task=distill", "method=dm", "method.iterations=3", "method.batch_real=16", "logger=wandb",
                    "logger.mode=offline", "logger.project=ddb-test"))
    (run_dir,) = offline.glob("**/wandb/offline-run-*")
    curves = [json.loads(line) for line in (run_dir / "files" / CURVES_FILE).read_text().splitlines()]
    assert [c["iteration"] for c in curves] == [0, 1, 2] and all("loss" in c for c in curves)
    assert {c["loop"] for c in curves} == {"dm ipc1"}  # the loop's label stays in the run file
    assert list(run_dir.glob("files/media/images/preview_*.png"))
    assert DISTILL_CURVES.get() is None  # the observer is gone after the run


def test_trajectory_matching_curves_carry_the_learned_lr_and_validation_accuracy(compose_cfg, offline):
    from dd_bench.app.tasks import run
    from dd_bench.methods import METHODS
    from dd_bench.results.wandb_logger import CURVES_FILE

    options = [f"method.{k}={v}" for k, v in METHODS.get("mtt").TEST_OPTIONS.items()]
    run(compose_cfg("task=distill", "method=mtt", *options, "method.iterations=4", "method.eval_every=2",
                    "method.eval_epochs=1", "method.eval_networks=1", "validation=0.1", "logger=wandb",
                    "logger.mode=offline", "logger.project=ddb-test"))
    (run_dir,) = offline.glob("**/wandb/offline-run-*")
    curves = [json.loads(line) for line in (run_dir / "files" / CURVES_FILE).read_text().splitlines()]
    assert all("lr" in c for c in curves) and "val_acc" not in curves[0] and "val_acc" in curves[-1]
