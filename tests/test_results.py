"""Run records, provenance, the leaderboard and baselines/published.csv (CPU only, fast)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from dd_bench.results import (
    GAP_COLUMN,
    PUBLISHED_CSV,
    PeakMemory,
    RunRecord,
    build_leaderboard,
    collect_provenance,
    format_leaderboard_text,
    git_state,
    load_published,
    load_records,
    peak_memory_tracker,
    provenance_fields,
    write_leaderboard,
    write_record,
)
from dd_bench.results.leaderboard import COLUMNS, PUBLISHED_COLUMNS


def make_record(**overrides) -> RunRecord:
    fields = {
        "kind": "evaluation",
        "method": "dm",
        "dataset": "cifar10",
        "ipc": 10,
        "protocol": "mtt",
        "protocol_version": 1,
        "model": "convnet",
        "seeds": [0, 1, 2],
        "accuracies": [48.0, 49.0, 50.0],
        "ranked": True,
        "storage": {
            "images_bytes": 1000,
            "labels_bytes": 80,
            "extras_bytes": 0,
            "eval_assets_bytes": 0,
            "dtype": "uint8",
        },
        "eval_seconds": 12.5,
        "created": "2026-01-01T00:00:00+00:00",
    }
    fields.update(overrides)
    return RunRecord(**fields)


# ---- RunRecord ---------------------------------------------------------------------------------------------------


def test_summary_statistics_are_derived_in_percent():
    rec = make_record(seeds=[0, 1], accuracies=[48.0, 50.0])
    assert rec.acc_mean == 49.0
    assert rec.acc_std == pytest.approx(math.sqrt(2.0))  # sample std, ddof=1
    assert make_record(seeds=[3], accuracies=[70.0]).acc_std == 0.0
    assert rec.storage["total_bytes"] == 1080


def test_inconsistent_or_invalid_records_are_rejected():
    with pytest.raises(ValueError, match="acc_mean"):
        make_record(acc_mean=10.0)
    with pytest.raises(ValueError, match="one accuracy per seed"):
        make_record(seeds=[0], accuracies=[1.0, 2.0])
    with pytest.raises(ValueError, match="Unknown record kind"):
        make_record(kind="paper")
    with pytest.raises(ValueError, match="storage"):
        make_record(storage={"image_bytes": 3})


def test_round_trip_through_dict_and_json():
    rec = make_record(extra={"subset_indices": [[1, 2], [3, 4]]}, config={"lr": 0.01}, preset="paper", ipc=None)
    data = json.loads(json.dumps(rec.to_dict()))
    assert data["record_id"] == rec.record_id
    assert RunRecord.from_dict(data) == rec
    with pytest.raises(ValueError, match="Unknown run-record keys"):
        RunRecord.from_dict({**data, "acc_mena": 1.0})
    with pytest.raises(ValueError, match="does not match"):
        RunRecord.from_dict({**data, "seeds": [5, 6, 7]})


def test_record_id_is_stable_and_ignores_results_and_time():
    rec = make_record()
    # Pinned: a changed hash would orphan every committed record file.
    assert rec.record_id == "f2540bb20cf8dca9"
    same_run = make_record(accuracies=[10.0, 20.0, 30.0], created="2030-01-01T00:00:00+00:00", eval_seconds=1.0)
    assert same_run.record_id == rec.record_id
    assert make_record(seeds=[0, 1, 3]).record_id != rec.record_id
    assert make_record(synset_sha256="ab" * 32).record_id != rec.record_id
    assert make_record(ranked=False).record_id != rec.record_id


# ---- write_record / load_records ---------------------------------------------------------------------------------


def test_write_record_writes_under_records_and_replaces_same_run(tmp_path):
    path = write_record(make_record(), tmp_path)
    assert path == tmp_path / "records" / f"{make_record().record_id}.json"
    write_record(make_record(accuracies=[60.0, 61.0, 62.0]), tmp_path)
    assert json.loads(path.read_text())["acc_mean"] == 61.0
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_write_record_is_atomic_when_the_rename_crashes(tmp_path, monkeypatch):
    path = write_record(make_record(), tmp_path)
    before = path.read_text()

    def crash(*args, **kwargs):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        write_record(make_record(accuracies=[1.0, 2.0, 3.0]), tmp_path)
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary or partial file left behind


def test_write_record_never_overwrites_a_different_file(tmp_path):
    rec = make_record()
    target = tmp_path / "records" / f"{rec.record_id}.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(make_record(method="mtt").to_dict()))
    with pytest.raises(FileExistsError, match="different run"):
        write_record(rec, tmp_path)
    target.write_text("{ not json")
    with pytest.raises(FileExistsError, match="not a readable run record"):
        write_record(rec, tmp_path)
    assert target.read_text() == "{ not json"


def test_load_records_skips_corrupt_files_with_a_warning(tmp_path):
    write_record(make_record(), tmp_path)
    write_record(make_record(method="mtt"), tmp_path / "cpu" / "demo")
    records_dir = tmp_path / "records"
    (records_dir / "bad.json").write_text("{ truncated")
    (records_dir / "wrong.json").write_text(json.dumps({"method": "dm"}))
    (records_dir / "list.json").write_text("[1, 2]")
    (records_dir / ".inflight.tmp.json").write_text("{")  # a temporary is never read
    with pytest.warns(UserWarning) as caught:
        records = load_records(tmp_path)
    assert sorted(r.method for r in records) == ["dm", "mtt"]
    messages = " ".join(str(w.message) for w in caught)
    assert "bad.json" in messages and "wrong.json" in messages and "list.json" in messages
    assert load_records(tmp_path / "missing") == []


# ---- leaderboard -------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_published(tmp_path) -> Path:
    path = tmp_path / "published.csv"
    path.write_text(
        ",".join(PUBLISHED_COLUMNS)
        + "\n"
        + "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,test source,partial\n"
        + "full_data,cifar10,all,convnet,84.8,0.1,mtt,final,reference,test source,partial\n"
        + "random,cifar10,10,convnet,26.0,,mtt,final,mtt,test source,no\n"
    )
    return path


@pytest.fixture
def synthetic_records() -> list[RunRecord]:
    return [
        make_record(seeds=[0, 1], accuracies=[40.0, 42.0], created="2026-01-01T00:00:00+00:00"),
        make_record(seeds=[5, 6], accuracies=[50.0, 52.0], created="2026-02-01T00:00:00+00:00"),
        make_record(method="mtt", accuracies=[64.0, 65.0, 66.0]),
        make_record(protocol="quick", ranked=False, accuracies=[30.0, 31.0, 32.0]),
        make_record(kind="reference", method="random_subset", accuracies=[26.0, 27.0, 28.0]),
        make_record(kind="reference", method="full_data", ipc=None, seeds=[0], accuracies=[84.0]),
    ]


def test_leaderboard_keeps_every_record_and_protocols_apart(synthetic_records, tiny_published):
    df = build_leaderboard(synthetic_records, published_csv=tiny_published)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 6  # every record is a row: nothing pooled, nothing dropped
    mtt_rows, quick_rows = df[df["protocol"] == "mtt"], df[df["protocol"] == "quick"]
    assert len(quick_rows) == 1 and not quick_rows["ranked"].any() and mtt_rows["ranked"].all()
    # Ranked tables come first, so no quick row sits between mtt rows.
    assert list(df["protocol"]) == ["mtt"] * 5 + ["quick"]

    dms = mtt_rows[(mtt_rows["method"] == "dm") & (mtt_rows["kind"] == "evaluation")]
    assert sorted(dms["variant"]) == ["seeds=0,1", "seeds=5,6"]  # what tells the two dm rows apart
    dm = dms[dms["variant"] == "seeds=5,6"].iloc[0]
    assert dm["acc_mean"] == 51.0 and "legacy record" in dm["note"]
    assert dm["published"] == 48.9 and dm["published_verified"] == "partial"
    assert dm[GAP_COLUMN] == pytest.approx(51.0 - 48.9)
    assert dm["acc_mean_std"] == "51.00 +- 1.41"
    assert dm["storage_bytes"] == 1080

    keys = mtt_rows["method"] + "/" + mtt_rows["kind"] + "/" + mtt_rows["variant"]
    ranks = dict(zip(keys, mtt_rows["rank"], strict=True))
    assert ranks["mtt/evaluation/"] == 1 and ranks["dm/evaluation/seeds=5,6"] == 2
    assert ranks["dm/evaluation/seeds=0,1"] == 3
    assert pd.isna(ranks["random_subset/reference/"]) and pd.isna(ranks["full_data/reference/"])

    full = df[df["method"] == "full_data"].iloc[0]
    assert pd.isna(full["ipc"]) and full[GAP_COLUMN] == pytest.approx(84.0 - 84.8)
    assert full["acc_mean_std"] == "84.00 +- n/a"  # one seed: no spread to show
    random_ref = df[df["method"] == "random_subset"].iloc[0]
    # The reference row sits beside the papers' random-real baseline (published as `random`).
    assert random_ref["kind"] == "reference" and random_ref["published"] == 26.0
    assert math.isnan(random_ref["published_std"])
    # The CPU demo protocol is never compared with a paper, even where a published row matches its key.
    assert math.isnan(quick_rows.iloc[0]["published"]) and math.isnan(quick_rows.iloc[0][GAP_COLUMN])
    assert build_leaderboard(synthetic_records)[GAP_COLUMN].isna().all()


def test_leaderboard_files_and_text(synthetic_records, tiny_published, tmp_path):
    df = build_leaderboard(synthetic_records, published_csv=tiny_published)
    csv_path, md_path = write_leaderboard(df, tmp_path / "board")
    assert csv_path.name == "leaderboard.csv" and md_path.name == "leaderboard.md"
    back = pd.read_csv(csv_path)
    assert GAP_COLUMN in back.columns and len(back) == len(df)

    md = md_path.read_text()
    after_mtt = md.split("## Protocol `mtt` v1 (ranked)")[1]
    mtt_section, quick_section = after_mtt.split("## Protocol `quick` v1 - NOT RANKED")
    assert "mean +- std over seeds" in mtt_section and "paper's selection rule" in mtt_section
    assert GAP_COLUMN in mtt_section and "full data (reference)" in mtt_section
    assert "random real subset (reference)" in mtt_section and "| 84.8 +- 0.1 |" in mtt_section
    assert "Not ranked" in quick_section and "| 30.00 +- 1.00 |" not in mtt_section
    assert quick_section.count("| cifar10 |") == 1

    text = format_leaderboard_text(df)
    assert "== Protocol `mtt` v1 (ranked)" in text and "NOT RANKED" in text and "|" not in text.split("\n")[4]
    empty = build_leaderboard([], published_csv=tiny_published)
    assert empty.empty and list(empty.columns) == list(COLUMNS)
    assert format_leaderboard_text(empty) == "No run records.\n"


# ---- baselines/published.csv -------------------------------------------------------------------------------------


def test_published_csv_parses_with_declared_columns():
    table = load_published(PUBLISHED_CSV)
    assert tuple(pd.read_csv(PUBLISHED_CSV, nrows=0).columns) == PUBLISHED_COLUMNS
    assert set(table["verified"]) <= {"yes", "no", "partial"}
    assert set(table["dataset"]) <= {"cifar10", "cifar100", "tiny_imagenet", "mnist", "fashion_mnist", "svhn"}
    models = {"convnet", "convnetd4", "resnet18", "resnet18_bn", "resnet18_cifar", "vgg11", "alexnet"}
    assert set(table["model"]) <= models
    assert table["acc_mean"].between(0, 100).all() and table["source"].str.len().gt(0).all()
    assert set(table["method"]) >= {"mtt", "mtt_ftd_repro", "ftd", "datm", "tesla", "dm", "dc", "dsa", "full_data"}

    def cell(method, dataset, ipc, model="convnet"):
        hit = table[(table.method == method) & (table.dataset == dataset) & (table.ipc == ipc) & (table.model == model)]
        assert len(hit) == 1
        return hit.iloc[0]

    # MTT's own reported row versus FTD's reproduction (reference/verified-numbers.md section 1).
    own, repro = cell("mtt", "cifar100", 10), cell("mtt_ftd_repro", "cifar100", 10)
    assert (own["acc_mean"], own["verified"]) == (40.1, "partial")
    assert (repro["acc_mean"], repro["verified"]) == (39.7, "yes")
    assert cell("datm", "tiny_imagenet", 50, "convnetd4")["acc_mean"] == 39.7
    full = table[(table.method == "full_data") & (table.dataset == "cifar10")]
    assert len(full) == 1 and pd.isna(full.iloc[0]["ipc"]) and full.iloc[0]["acc_mean"] == 84.8


def test_load_published_rejects_bad_tables(tmp_path):
    header = ",".join(PUBLISHED_COLUMNS) + "\n"
    bad_flag = tmp_path / "flag.csv"
    bad_flag.write_text(header + "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,src,maybe\n")
    with pytest.raises(ValueError, match="verified"):
        load_published(bad_flag)
    bad_selection = tmp_path / "selection.csv"
    bad_selection.write_text(header + "dm,cifar10,10,convnet,48.9,0.6,mtt,best,mtt,src,yes\n")
    with pytest.raises(ValueError, match="selection must be one of .*best_during_training"):
        load_published(bad_selection)
    dup = tmp_path / "dup.csv"
    dup.write_text(header + "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,a,yes\n"
                   "dm,cifar10,10,convnet,49.0,0.6,mtt,final,mtt,b,yes\n")
    with pytest.raises(ValueError, match="duplicate"):
        load_published(dup)
    # One cell under two protocols is two rows, not a duplicate.
    two = tmp_path / "two.csv"
    two.write_text(header + "rded,cifar10,10,resnet18_cifar,37.1,,kd-rded,best_during_training,n,a,no\n"
                   "rded,cifar10,10,resnet18_cifar,30.0,,kd,final,n,b,no\n")
    assert len(load_published(two)) == 2


# ---- provenance --------------------------------------------------------------------------------------------------


def test_provenance_fields_present_and_private():
    prov = collect_provenance("cpu")
    for key in ("package_version", "git_sha", "git_dirty", "torch_version", "python_version", "platform", "device"):
        assert key in prov
    assert prov["device"] == "cpu" and prov["device_name"] and prov["cpu_count"] >= 1
    assert not any("host" in key for key in prov)
    json.dumps(prov)
    rec = make_record(**provenance_fields(prov))
    assert rec.device.startswith("cpu (") and rec.provenance == prov


def test_git_state_never_fails(tmp_path, monkeypatch):
    assert git_state(tmp_path) == {"git_sha": None, "git_dirty": None}
    assert git_state(tmp_path / "does-not-exist") == {"git_sha": None, "git_dirty": None}

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert git_state() == {"git_sha": None, "git_dirty": None}
    assert collect_provenance("cpu")["git_sha"] is None


def test_peak_memory_on_cpu_and_unsupported_devices():
    with peak_memory_tracker("cpu") as peak:
        _ = bytearray(1 << 20)
    assert peak.kind == "cpu_process_peak_rss" and peak.bytes > (1 << 20)
    assert peak.as_dict() == {"bytes": peak.bytes, "kind": "cpu_process_peak_rss"}
    meta = PeakMemory("meta")
    meta.start()
    assert meta.stop() is None and meta.as_dict() == {"bytes": None, "kind": "unavailable"}


def test_custom_and_quick_protocols_never_show_published_numbers(tmp_path):
    """A `+custom` or `quick` row with a matching published key gets no published value and no gap."""
    from dd_bench.results import RunRecord, build_leaderboard

    published = tmp_path / "published.csv"
    published.write_text(",".join(PUBLISHED_COLUMNS) + "\n"
                         + "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,test,partial\n")
    rows = []
    for protocol in ("mtt", "mtt+custom", "quick"):
        rows.append(RunRecord(kind="evaluation", method="dm", dataset="cifar10", ipc=10, protocol=protocol,
                              protocol_version=1, model="convnet", seeds=[0, 1], accuracies=[50.0, 52.0],
                              ranked=protocol == "mtt"))
    df = build_leaderboard(rows, published_csv=published).set_index("protocol")
    assert df.loc["mtt", "published"] == 48.9
    assert df[["published"]].loc[["mtt+custom", "quick"]].isna().all().all()


def test_a_best_during_training_published_number_is_compared_with_our_best(tmp_path):
    """CV-DD's (and RDED's) published numbers are the best test accuracy seen during training: the gap uses our
    best-during-training mean, never the final epoch; without a best column the gap is empty."""
    from dd_bench.results import build_leaderboard
    from dd_bench.results.leaderboard import GAP_COLUMN

    published = tmp_path / "published.csv"
    published.write_text(",".join(PUBLISHED_COLUMNS) + "\n"
                         "cvdd,cifar10,10,resnet18_cifar,44.6,,kd-cvdd,best_during_training,kd-cvdd,test,yes\n"
                         "sre2l,cifar10,10,resnet18_cifar,27.2,0.5,kd,final,kd (final epoch),test,no\n")
    best = {"accuracies": [46.0, 48.0], "epochs_checked": [10, 20], "note": "best"}
    rows = [make_record(method="cvdd", protocol="kd-cvdd", model="resnet18_cifar", seeds=[0, 1],
                        accuracies=[40.0, 42.0], ranked=False, extra={"best_during_training": best}),
            make_record(method="cvdd", protocol="kd-cvdd", model="resnet18_cifar", ipc=10, seeds=[0, 1, 2],
                        accuracies=[40.0, 42.0, 41.0], ranked=False),
            make_record(method="sre2l", protocol="kd", model="resnet18_cifar", seeds=[0, 1], accuracies=[30.0, 28.0])]
    df = build_leaderboard(rows, published_csv=published)
    cvdd = df[df["method"] == "cvdd"].set_index("n_seeds")
    assert cvdd.loc[2, GAP_COLUMN] == pytest.approx(47.0 - 44.6)  # our best mean, not the final 41.0
    assert pd.isna(cvdd.loc[3, GAP_COLUMN])  # no best recorded: no gap rather than a final-vs-best one
    (sre2l,) = df[df["method"] == "sre2l"][GAP_COLUMN]
    assert sre2l == pytest.approx(29.0 - 27.2)  # a final-epoch published number: the final mean


def test_the_terminal_board_reads_at_a_glance(synthetic_records, tiny_published):
    """At most 120 columns; empty columns dropped; notes as footnotes; memory only as a CUDA evaluation peak."""
    teacher = {"images_bytes": 1000, "labels_bytes": 80, "extras_bytes": 0, "eval_assets_bytes": 162616,
               "eval_assets": {"teacher:digits_convnet_bn_w64_d2": 162616}, "label_source": "teacher",
               "dtype": "float32"}
    records = [*synthetic_records,
               make_record(protocol="kd-quick", protocol_version=2, ranked=False, method="rded", storage=teacher,
                           peak_memory={"bytes": 10**9, "kind": "cpu_process_peak_rss"}),
               make_record(protocol="kd-quick", protocol_version=2, ranked=False, method="sre2l", storage=teacher,
                           peak_memory={"bytes": 3 * 2**20, "kind": "cuda_allocator_peak"})]
    text = format_leaderboard_text(build_leaderboard(records, published_csv=tiny_published))
    assert max(len(line) for line in text.splitlines()) <= 120
    kd = text.split("== Protocol `kd-quick` v2")[1]
    header = kd.split("\n-------")[0].splitlines()[-1].split()
    assert "published" not in header and "gap" not in header  # not comparable with papers: no empty columns
    assert "+ at eval" in kd and "158.8 KiB" in kd and "gpu mem" in kd and "3.0 MiB" in kd
    assert "CPU RSS" not in text and "953.7 MiB" not in text  # a process figure is never printed
    mtt = text.split("== Protocol `mtt` v1 (ranked)")[1].split("== Protocol")[0]
    assert "-- cifar10, IPC 10" in mtt and "-- cifar10, all images" in mtt and "[1] legacy record" in mtt
    assert "+ at eval" not in mtt  # nothing is needed at evaluation there


# ---- the comparison contract: protocol-matched published rows, like-for-like gaps, IOR --------------------------


@pytest.fixture
def two_protocol_published(tmp_path) -> Path:
    path = tmp_path / "published.csv"
    path.write_text(",".join(PUBLISHED_COLUMNS) + "\n"
                    "rded,cifar10,10,resnet18_cifar,37.1,,kd-rded,best_during_training,RDED's recipe,src,no\n"
                    "cvdd,cifar10,10,resnet18_cifar,44.6,,kd-cvdd,best_during_training,CV-DD's recipe,src,yes\n"
                    "mtt,cifar10,10,convnet,65.3,0.7,mtt,best_of_checkpoints_test,mtt,src,partial\n"
                    "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,src,partial\n"
                    "tesla,cifar10,10,convnet,66.4,0.8,mtt,unknown,mtt,src,no\n"
                    "sre2l,cifar10,10,resnet18_cifar,27.2,0.5,,unknown,recipe unknown,src,no\n")
    return path


def test_a_published_row_appears_only_beside_its_own_protocol(two_protocol_published):
    """CV-DD under the ranked `kd` never shows CV-DD's `kd-cvdd` number; the note names the protocol that has one."""
    best = {"accuracies": [40.0, 42.0], "epochs_checked": [300]}
    rows = [make_record(method=m, protocol=p, model="resnet18_cifar", seeds=[0, 1], accuracies=[36.0, 38.0],
                        ranked=p == "kd", extra={"best_during_training": best})
            for m in ("rded", "cvdd") for p in ("kd", m if m == "cvdd" else "kd-rded")]
    rows.append(make_record(method="sre2l", protocol="kd", model="resnet18_cifar", accuracies=[30.0, 28.0, 29.0]))
    df = build_leaderboard(rows, published_csv=two_protocol_published).set_index(["method", "protocol"])
    assert pd.isna(df.loc[("cvdd", "kd"), "published"]) and pd.isna(df.loc[("cvdd", "kd"), GAP_COLUMN])
    assert "published 44.6 is under `kd-cvdd`" in df.loc[("cvdd", "kd"), "note"]
    assert pd.isna(df.loc[("rded", "kd"), "published"]) and "`kd-rded`" in df.loc[("rded", "kd"), "note"]
    assert df.loc[("rded", "kd-rded"), "published"] == 37.1
    assert df.loc[("rded", "kd-rded"), "published_selection"] == "best_during_training"
    assert "published" not in df.loc[("rded", "kd-rded"), "note"]
    # A number of unknown recipe (empty protocol) is shown beside nothing, and the note says why.
    assert pd.isna(df.loc[("sre2l", "kd"), "published"]) and "no dd-bench protocol" in df.loc[("sre2l", "kd"), "note"]
    text = format_leaderboard_text(build_leaderboard(rows, published_csv=two_protocol_published))
    kd_table = text.split("== Protocol `kd` v1 (ranked)")[1].split("== Protocol")[0]
    assert "44.6" not in kd_table.split("[1]")[0] and "No published number is shown" in kd_table


@pytest.mark.parametrize("selection, extra, expected, basis", [
    ("final", {}, 49.0 - 48.9, "final epoch"),
    ("best_during_training", {"best_during_training": {"accuracies": [51.0, 53.0]}}, 52.0 - 48.9,
     "best during training"),
    ("best_during_training", {}, math.nan, None),  # ours not recorded: no gap, never the final epoch instead
    ("best_of_checkpoints_test", {"acc_test_selected": {"mean": 50.5}}, 50.5 - 48.9, "test-selected checkpoint"),
    ("best_of_checkpoints_test", {}, math.nan, None),
    ("unknown", {"acc_test_selected": {"mean": 50.5}}, math.nan, None),
])
def test_the_gap_uses_our_number_measured_the_papers_way(tmp_path, selection, extra, expected, basis):
    published = tmp_path / "published.csv"
    published.write_text(",".join(PUBLISHED_COLUMNS) + f"\ndm,cifar10,10,convnet,48.9,0.6,mtt,{selection},mtt,s,no\n")
    row = build_leaderboard([make_record(extra=extra)], published_csv=published).iloc[0]
    assert row["published"] == 48.9 and row["published_selection"] == selection
    if math.isnan(expected):
        assert pd.isna(row[GAP_COLUMN]) and row["gap_ours"] is None
    else:
        assert row[GAP_COLUMN] == pytest.approx(expected) and row["gap_ours"] == basis
    md = _render_markdown(build_leaderboard([make_record(extra=extra)], published_csv=published))
    assert (basis or "never") in md or basis is None


def _render_markdown(df: pd.DataFrame) -> str:
    from dd_bench.results.leaderboard import _render

    return _render(df, markdown=True)


def _teachers(*keys: str) -> list[dict]:
    return [{"recipe": k, "key": k} for k in keys]


def test_ior_is_the_method_minus_its_same_protocol_same_label_random_row(tmp_path):
    common = {"protocol": "kd", "model": "resnet18_cifar", "ranked": True}
    hard_ref = make_record(kind="reference", method="random_subset", accuracies=[20.0, 22.0, 21.0], **common)
    teacher_ref = make_record(kind="reference", method="random_subset", accuracies=[30.0, 31.0, 32.0],
                              storage={"label_source": "teacher"},
                              extra={"label_identity": "teacher:ka,kb:bn_train"}, **common)
    other_teacher_ref = make_record(kind="reference", method="random_subset", accuracies=[10.0, 10.0, 10.0],
                                    storage={"label_source": "teacher"},
                                    extra={"label_identity": "teacher:kz"}, **common)
    static_ref = make_record(kind="reference", method="random_subset", accuracies=[25.0, 25.0, 25.0],
                             storage={"label_source": "static"},
                             extra={"label_identity": "static:teacher:ka,kb"}, **common)
    other_protocol_ref = make_record(kind="reference", method="random_subset", accuracies=[5.0, 5.0, 5.0],
                                     **{**common, "protocol": "kd-rded", "ranked": False})
    fkd = make_record(method="cvdd", accuracies=[40.0, 41.0, 42.0], storage={"label_source": "fkd"},
                      extra={"teachers": _teachers("ka", "kb")}, **common)
    learned = make_record(method="datm", accuracies=[23.0, 24.0, 25.0], label_kind="soft_logits", **common)
    static = make_record(method="infer", accuracies=[28.0, 28.0, 28.0], storage={"label_source": "static"},
                         extra={"teachers": _teachers("ka", "kb")}, **common)
    unpaired = make_record(method="rded", accuracies=[33.0, 33.0, 33.0], storage={"label_source": "teacher"},
                           extra={"teachers": _teachers("kq")}, **common)
    no_ref = make_record(method="dm", dataset="cifar100", accuracies=[9.0, 9.0, 9.0], **common)
    records = [hard_ref, teacher_ref, other_teacher_ref, static_ref, other_protocol_ref, fkd, learned, static,
               unpaired, no_ref]
    for i, rec in enumerate(records):  # distinct configs, as real records are
        rec.record_hash = f"{i + 1:02d}".ljust(64, "0")
    df = build_leaderboard(records).set_index("method")
    assert df.loc["cvdd", "ior"] == pytest.approx(41.0 - 31.0)  # fkd labels: the same teachers online
    assert df.loc["datm", "ior"] == pytest.approx(24.0 - 21.0)  # learned labels: the hard-label subset
    assert df.loc["infer", "ior"] == pytest.approx(28.0 - 25.0)  # static logits: the static subset
    assert pd.isna(df.loc["rded", "ior"])  # teachers with no reference row: empty, never another teacher's
    assert pd.isna(df.loc["dm", "ior"])  # no reference row at all
    assert df[df.index == "random_subset"]["ior"].isna().all()  # references have no IOR
    text = format_leaderboard_text(df.reset_index())
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "IOR" in text and "+10.00" in text
    csv_path, md_path = write_leaderboard(df.reset_index(), tmp_path)
    assert "ior" in pd.read_csv(csv_path).columns and "IOR (points)" in md_path.read_text()


def test_published_csv_names_a_registered_protocol_and_a_selection_rule_for_every_row():
    from dd_bench.eval.protocol import PROTOCOLS
    from dd_bench.results.published import SELECTIONS

    table = load_published(PUBLISHED_CSV)
    assert set(table["selection"]) <= set(SELECTIONS)
    assert set(table["protocol"]) - {""} <= set(PROTOCOLS.list())

    def rows(method, dataset=None):
        hit = table[table.method == method]
        return hit if dataset is None else hit[hit.dataset == dataset]

    own_dc = rows("dc")[rows("dc").model == "convnet"]  # DC's own numbers: DC's main.py recipe, not mtt
    assert (own_dc["protocol"] == "dc").all() and (own_dc["selection"] == "final").all()
    assert set(rows("dsa")["protocol"]) == {"mtt"}  # DSA's numbers use the 1000-epoch DSA recipe
    cifar_sre2l = rows("sre2l")[rows("sre2l").dataset != "tiny_imagenet"]
    assert (cifar_sre2l["protocol"] == "").all() and (cifar_sre2l["selection"] == "unknown").all()
    assert (rows("rded")[["protocol", "selection"]] == ["kd-rded", "best_during_training"]).all().all()
    assert set(rows("cvdd")["protocol"]) == {"kd-cvdd", "kd-cvdd-eta2"}
    for tm in ("mtt", "ftd", "datm", "tesla"):  # trajectory matching reports the test-selected checkpoint
        assert set(rows(tm)["selection"]) == {"best_of_checkpoints_test"}, tm
