"""Sweeps never lose a result: outputs keyed by config hashes, skip-if-done, resume after a kill, parallel writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dd_bench.app.cli import main
from dd_bench.app.tasks import plan_distill, run
from dd_bench.errors import UserError
from dd_bench.results import RunRecord, build_leaderboard, load_records, write_record

TINY_EVAL = ["eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1", "references=[]"]


def _cli(tmp_path: Path, *args: str) -> int:
    return main([*args, f"results={tmp_path}", "progress=false", f"hydra.run.dir={tmp_path / 'hydra'}",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])


def test_a_sweep_over_a_method_option_keeps_both_results(tmp_path):
    assert _cli(tmp_path, "run", "-m", "method=dm", "method.iterations=2", "method.lr_img=1,10", *TINY_EVAL) == 0
    sets = sorted((tmp_path / "synsets").glob("dm-digits-ipc1-s0-*"))
    assert len(sets) == 2  # one directory per config, the readable name as prefix
    records = [r for r in load_records(tmp_path) if r.kind == "evaluation"]
    assert len(records) == 2 and len({r.set_hash for r in records}) == 2
    board = build_leaderboard(records)
    assert sorted(board["variant"]) == ["method.lr_img=1.0", "method.lr_img=10.0"]


def test_rerunning_skips_what_exists_and_rerun_true_forces(compose_cfg):
    job = ("task=run", "method=random", *TINY_EVAL)
    first = run(compose_cfg(*job))
    assert not first["reused"] and first["evaluated"] == 1
    again = run(compose_cfg(*job))
    assert again["reused"] and again["evaluated"] == 0 and again["kept"] == 1
    forced = run(compose_cfg(*job, "rerun=true"))
    assert not forced["reused"] and forced["evaluated"] == 1
    assert len(load_records(Path(compose_cfg().results))) == 1  # the same config keeps one record file


def test_two_configs_never_share_a_directory(compose_cfg, tmp_path):
    out = tmp_path / "set"
    run(compose_cfg("task=distill", "method=random", f"out={out}"))
    with pytest.raises(UserError, match="holds another config's set"):
        run(compose_cfg("task=distill", "method=random", "seed=1", f"out={out}"))
    replaced = run(compose_cfg("task=distill", "method=random", "seed=1", f"out={out}", "rerun=true"))
    assert json.loads((out / "meta.json").read_text())["set_hash"] == replaced["set_hash"]


def test_the_set_hash_ignores_where_outputs_go_and_the_device(compose_cfg, digits, tmp_path):
    base = plan_distill(compose_cfg("method=random"), digits).set_hash
    same = plan_distill(compose_cfg("method=random", f"results={tmp_path / 'elsewhere'}", "progress=true",
                                    "device=cpu", "rerun=true", "logger=wandb"), digits).set_hash
    assert same == base
    for change in ("seed=1", "ipc=2", "validation=0.1", "method=herding"):
        assert plan_distill(compose_cfg("method=random", change), digits).set_hash != base, change


def test_two_custom_protocols_get_two_records(compose_cfg):
    out = Path(compose_cfg().results) / "set"
    run(compose_cfg("task=distill", "method=random", f"out={out}"))
    for epochs in (1, 2):
        run(compose_cfg("task=evaluate", f"synset={out}", "eval=quick", f"eval.epochs={epochs}", "models=[mlp]",
                        "seeds=1", "references=[]"))
    records = load_records(Path(compose_cfg().results))
    assert len(records) == 2 and {r.extra["protocol"]["epochs"] for r in records} == {1, 2}
    assert sorted(build_leaderboard(records)["variant"]) == ["eval.epochs=1", "eval.epochs=2"]


def test_legacy_records_still_load_and_are_labelled(tmp_path):
    legacy = RunRecord(kind="evaluation", method="dm", dataset="digits", ipc=1, protocol="quick",
                       protocol_version=1, model="mlp", seeds=[0], accuracies=[50.0], ranked=False)
    data = legacy.to_dict()
    for key in ("set_hash", "record_hash"):
        data.pop(key)
    data["record_version"] = 1
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / f"{data['record_id']}.json").write_text(json.dumps(data))
    (loaded,) = load_records(tmp_path)
    assert loaded.legacy and loaded.record_id == data["record_id"]
    assert "legacy record" in build_leaderboard([loaded]).loc[0, "note"]


def test_records_are_found_while_jobs_write_temporaries(tmp_path):
    """Hidden folders (a checkpoint being swapped in, a record in flight) are never walked: one that vanishes
    mid-walk cannot break a leaderboard built while a sweep runs."""
    record = RunRecord(kind="evaluation", method="dm", dataset="digits", ipc=1, protocol="quick", protocol_version=1,
                       model="mlp", seeds=[0], accuracies=[50.0], ranked=False, record_hash="a" * 64)
    write_record(record, tmp_path / "runs")
    decoy = tmp_path / "runs" / "synsets" / "dm-x" / ".checkpoint" / ".checkpoint.tmp" / "records"
    decoy.mkdir(parents=True)
    (decoy / "stray.json").write_text("{not json")
    assert [r.record_id for r in load_records(tmp_path / "runs")] == [record.record_id]


def _write_many(args: tuple[str, int]) -> None:
    from dd_bench.io import json_sha256

    directory, worker = args
    for i in range(15):
        for method, accuracy in ((f"w{worker}-{i}", 50.0 + i), ("shared", 60.0)):
            write_record(RunRecord(kind="evaluation", method=method, dataset="digits", ipc=1, protocol="quick",
                                   protocol_version=1, model="mlp", seeds=[0], accuracies=[accuracy], ranked=False,
                                   record_hash=json_sha256(method)), directory)


def test_parallel_writers_never_lose_or_corrupt_a_record(tmp_path):
    import warnings

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_write_many, [(str(tmp_path), w) for w in range(4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unreadable record would warn
        records = load_records(tmp_path)
    assert len(records) == 4 * 15 + 1 and sum(r.method == "shared" for r in records) == 1
    assert not [p for p in (tmp_path / "records").iterdir() if p.name.startswith(".")]  # no temporaries left


def _sweep(tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "dd_bench.app.cli", "run", "-m", "method=dm", "method.lr_img=1,2",
            "method.iterations=400", "method.checkpoint_every=10", "method.batch_real=16", *TINY_EVAL,
            f"results={tmp_path}", "progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"]


def test_a_killed_sweep_resumes_and_ends_with_every_record_once(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_sweep(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # kill the sweep once the second job has checkpointed
            sets = list((tmp_path / "synsets").glob("dm-*")) if (tmp_path / "synsets").is_dir() else []
            if any((s / ".checkpoint" / "checkpoint").is_dir() and not (s / "meta.json").exists() for s in sets) \
                    and len(load_records(tmp_path)) == 1:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.05)
        else:
            pytest.fail("the second job never checkpointed")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(load_records(tmp_path)) == 1
    done = subprocess.run(_sweep(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kept" in done.stdout  # the first job was skipped
    records = load_records(tmp_path)
    assert len(records) == 2 and len({r.set_hash for r in records}) == 2
    statuses = [json.loads((s / "meta.json").read_text())["provenance"]["distill_status"]
                for s in (tmp_path / "synsets").glob("dm-*")]
    assert sum("resumed_from" in st for st in statuses) == 1  # the killed job resumed from its checkpoint


def test_cache_locations_are_one_root(compose_cfg, tmp_path, monkeypatch):
    from dd_bench.io import cache_root

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DD_BENCH_CACHE", "")
    assert cache_root() == tmp_path / "home" / ".cache" / "dd_bench"
    assert cache_root("") == cache_root()
    cache = tmp_path / "cache"
    run(compose_cfg("task=run", "method=mtt", f"dataset.cache_dir={cache}", "method.iterations=1",
                    "method.num_experts=1", "method.expert_train_epochs=2", "method.max_start_epoch=1",
                    "method.expert_epochs=1", "method.syn_steps=1", "eval=quick", "eval.epochs=1",
                    "models=[mlp]", "seeds=1", "references=[random_subset]"))
    assert list((cache / "experts").iterdir()) and list((cache / "references").glob("*.json"))
    assert not (tmp_path / "home").exists()  # nothing went to the default location


def test_reference_storage_is_counted_as_stored(digits):
    from dd_bench.methods import create_method
    from dd_bench.pipeline.references import reference_storage

    as_random = create_method("random").distill(digits, ipc=2, seed=0, progress=False).storage()
    ours = reference_storage(digits, 2 * digits.num_classes)
    for key in ("images_bytes", "labels_bytes", "eval_assets_bytes", "dtype"):  # the set also stores its indices
        assert ours[key] == as_random[key], key
    from dd_bench.data import load_dataset

    zca = load_dataset("digits", zca=True, progress=False)
    assert reference_storage(zca, 10)["eval_assets_bytes"] == 4 * (64 * 64 + 64)  # the ZCA matrix and mean
