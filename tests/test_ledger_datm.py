"""The DATM pair of the fidelity ledger (scripts/ledger/datm.py): one budget table for both sides, the preset's values
where none is reduced, the official config it writes, and what it reads back from the official run."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What the checkout's configs/CIFAR-10/ConvIN/IPC10.yaml holds at 97ae510 (the keys the pair reads or writes).
OFFICIAL_IPC10 = {"dataset": "CIFAR10", "device": [3], "ipc": 10, "syn_steps": 80, "expert_epochs": 2, "lr_img": 100,
                  "lr_teacher": 0.01, "buffer_path": "../buffer_storage/", "data_path": "../dataset",
                  "ema_decay": 0.9995, "Iteration": 10000, "batch_syn": 100, "project": "CIFAR10_ipc10",
                  "num_eval": 1, "eval_it": 500, "skip_first_eva": True, "lr_y": 2.0, "Momentum_y": 0.9,
                  "threshold": 1.0, "pix_init": "samples_predicted_correctly", "batch_train": 128,
                  "min_start_epoch": 0, "current_max_start_epoch": 10, "max_start_epoch": 20,
                  "expansion_end_epoch": 1000, "lr_lr": 1e-05, "zca": True}


def _datm():
    """scripts/ledger/datm.py, imported by name as pair.py imports it (it imports mtt and harness by name)."""
    if str(ROOT / "scripts" / "ledger") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts" / "ledger"))
    return importlib.import_module("datm")


def _composed(compose_cfg, pair):
    datm = _datm()
    return compose_cfg("task=run", f"experiment={datm.EXPERIMENT}", *datm.SELECTION_OFF,
                       *[f"{k}={v}" for k, v in pair.ddbench_overrides().items()],
                       "method.expert_buffers=/b/CIFAR10/ConvNet/replay_buffer_*.pt")


def test_each_datm_budget_value_reaches_both_sides_unchanged(compose_cfg, tmp_path):
    datm = _datm()
    for pair in [*datm.PAIRS.values(), *map(datm.smoke, datm.PAIRS.values())]:
        assert pair.nets >= 5 and pair.eval_epochs in (300, 1)
        # every start epoch the window can reach has its target on the shared trajectories, and the window grows
        assert pair.max_start_epoch - 1 + pair.expert_epochs <= pair.family.expert_train_epochs
        assert pair.min_start_epoch < pair.current_max_start_epoch < pair.max_start_epoch
        assert 0 < pair.expansion_end_epoch < pair.iterations and pair.batch_syn == 10 * pair.ipc
        cfg = _composed(compose_cfg, pair)
        official, _ = datm.official_config(OFFICIAL_IPC10, pair, data_path=tmp_path, buffer_path=tmp_path / "b")
        for field, key, override in datm.BUDGET_KEYS:
            composed = cfg.ipc if override == "ipc" else cfg.method[override.split(".")[1]]
            assert official[key] == composed == getattr(pair, field), (pair.name, field)
            assert type(official[key]) is type(OFFICIAL_IPC10.get(key, getattr(pair, field))), key  # yacs types
        assert cfg.method.expert_buffers.endswith("replay_buffer_*.pt") and cfg.dataset.zca
        # the scoring both sets get, and no selection or held-out split on dd-bench's side
        assert cfg.eval.name == "mtt" and list(cfg.models) == ["convnet"] and cfg.validation is None
        assert cfg.method.eval_every == 0 and not cfg.method.paper_selection
        assert cfg.method.init == "correct" and cfg.method.labels == "learned"
        assert official["eval_it"] == official["Iteration"] and official["skip_first_eva"]
        assert official["num_eval"] == 1 and official["parall_eva"] and official["device"] == [0]


def test_the_datm_values_are_the_presets_and_reductions_name_the_preset_values(compose_cfg):
    datm = _datm()
    pair = datm.PAIRS["datm-cifar10-ipc10"]
    preset = compose_cfg("task=run", f"experiment={datm.EXPERIMENT}").method
    assert pair.preset == f"experiment={datm.EXPERIMENT}" and pair.family is datm.mtt.FAMILY
    for field, value in pair.reduced:
        assert preset[field] == value and getattr(pair, field, None) in (None, *range(value))
    unreduced = {f for f, _, _ in datm.BUDGET_KEYS} - {f for f, _ in pair.reduced} - {"ipc"}
    assert all(getattr(pair, f) == preset[f] for f in unreduced), unreduced
    # the official config agrees with the table wherever nothing is reduced (official_config refuses otherwise)
    assert all(OFFICIAL_IPC10[key] == getattr(pair, field) for field, key, _ in datm.BUDGET_KEYS
               if key in OFFICIAL_IPC10 and field not in dict(pair.reduced))


def test_the_official_config_lists_its_changes_and_refuses_a_disagreeing_table(tmp_path):
    import dataclasses

    datm = _datm()
    pair = datm.PAIRS["datm-cifar10-ipc10"]
    cfg, changes = datm.official_config(OFFICIAL_IPC10, pair, data_path=tmp_path, buffer_path=tmp_path / "b")
    assert cfg["lr_img"] == 100 and isinstance(cfg["lr_img"], int)  # cfg.py's int: yacs refuses a float
    assert changes["Iteration"] == [10000, 100] and changes["max_start_epoch"] == [20, 3]
    assert changes["parall_eva"] == [None, True] and changes["Sequential_Generation"] == [None, True]
    assert "lr_y" not in changes and "threshold" not in changes and "batch_syn" not in changes
    with pytest.raises(SystemExit, match="lr_label=3.0 is not .* lr_y=2.0"):
        datm.official_config(OFFICIAL_IPC10, dataclasses.replace(pair, lr_label=3.0), data_path=tmp_path,
                             buffer_path=tmp_path)
    with pytest.raises(SystemExit, match="holds an integer"):
        datm.official_config(OFFICIAL_IPC10, dataclasses.replace(pair, lr_img=100.5, smoke=True),
                             data_path=tmp_path, buffer_path=tmp_path)


def test_the_official_set_at_n_is_staged_under_the_names_the_datm_importer_reads(tmp_path):
    import torch

    datm = _datm()
    normal = tmp_path / "Normal"
    normal.mkdir()
    with pytest.raises(SystemExit, match="saved no set at iteration 100"):
        datm.stage_official_set(normal, tmp_path / "staged", iteration=100)
    torch.save(torch.zeros(100, 3, 32, 32), normal / "images_100.pt")
    torch.save(torch.randn(100, 10), normal / "labels_100.pt")
    torch.save(torch.tensor(0.0123), normal / "lr_100.pt")
    torch.save(torch.ones(100, 3, 32, 32), normal / "images_best.pt")  # never read: the names at N are
    staged = datm.stage_official_set(normal, tmp_path / "staged", iteration=100)
    assert sorted(p.name for p in Path(staged["dir"]).iterdir()) == ["images_best.pt", "labels_best.pt",
                                                                      "lr_best.pt"]
    assert torch.load(Path(staged["dir"]) / "images_best.pt").abs().sum() == 0


def test_the_official_trace_is_read_from_its_wandb_rows_and_log(tmp_path):
    datm = _datm()
    rows = [{"step": 0, "Progress": 0}, {"step": 0, "Synthetic_LR": 0.01}, {"step": 0, "falts": 0},
            {"step": None, "Grand_Loss": 1.2, "Start_Epoch": 0}, {"step": 1, "Synthetic_LR": 0.01},
            {"step": None, "Grand_Loss": 0.8, "Start_Epoch": 1}, {"step": 2, "falts": 2},
            {"step": None, "Grand_Loss": 1.5, "Start_Epoch": 2}]
    (tmp_path / "wandb.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "log").write_text("InitialAcc:0.93\n[2024-05-01 10:00:00] iter = 0000, loss = 1.2000\n")
    trace = datm.official_trace(tmp_path / "wandb.jsonl", tmp_path / "log", iterations=2)
    assert trace == {"start_epochs": [0, 1], "skipped_updates": 1, "mean_loss": pytest.approx(1.0),
                     "label_init_accuracy": pytest.approx(93.0)}
