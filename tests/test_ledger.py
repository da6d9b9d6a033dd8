"""The fidelity ledger: its entry schema and verdict rule, the generated page, and the data adapter's subset."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path

import pytest

from dd_bench.errors import UserError
from dd_bench.results.ledger import check_entry, compare, load_ledger, render_markdown, verdict

ROOT = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"ledger_{name}", ROOT / "scripts" / "ledger" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(ours=(30.1, 29.8, 30.5, 29.9, 30.2), official=(30.0, 30.4, 29.6, 30.3, 30.1)) -> dict:
    return {
        "format": "dd-bench-ledger", "version": 1, "pair": "mtt-cifar10-ipc1", "method": "mtt", "dataset": "cifar10",
        "ipc": 1, "status": "measured",
        "official": {"repository": "GeorgeCazenavette/mtt-distillation", "commit": "0" * 40,
                     "command": "python distill.py ...", "wall_seconds": 100.0,
                     "adaptations": ["data: ImageFolder subset", "buffer.py: a copying .cpu()", "wandb: no-op"]},
        "ddbench": {"command": "dd-bench run ...", "git_sha": "1" * 40, "wall_seconds": 90.0},
        "budget": {"iterations": 300, "syn_steps": 20, "experts": 2, "expert_epochs": 4, "eval_epochs": 300},
        "data": {"train_subset": {"per_class": 200, "seed": 0, "indices_sha256": "ab" * 32}, "test": "full"},
        "scoring": {"evaluator": "dd-bench", "protocol": "mtt+custom", "model": "convnet"},
        "accuracies": {"ddbench": list(ours), "official": list(official)},
        **compare(list(ours), list(official)), "wall_time_ratio": 0.9, "reproduce": "python scripts/ledger/... ",
    }


def test_the_verdict_rule():
    assert verdict(1.0, 0.5) == "agree" and verdict(-1.5, 0.75) == "agree"
    assert verdict(2.0, 0.5) == "disagree" and verdict(-3.0, 1.4) == "disagree"
    assert verdict(1.0, 0.9) == "inconclusive"  # small gap, too noisy to say
    assert verdict(2.0, 1.2) == "inconclusive"  # large gap, within 2 SE


def test_an_entry_carries_every_field_and_its_verdict_follows_from_its_numbers():
    good = entry()
    assert check_entry(copy.deepcopy(good))["verdict"] == "agree"
    for path in ("official.commit", "budget", "data.train_subset", "accuracies.official", "wall_time_ratio",
                 "official.adaptations", "reproduce"):
        bad = copy.deepcopy(good)
        *parents, leaf = path.split(".")
        node = bad
        for p in parents:
            node = node[p]
        del node[leaf]
        with pytest.raises(UserError, match=f"missing field '{path}'"):
            check_entry(bad)
    forged = {**copy.deepcopy(good), "verdict": "disagree"}
    with pytest.raises(UserError, match="verdict 'disagree' does not follow from the numbers .'agree'."):
        check_entry(forged)
    with pytest.raises(UserError, match="difference"):
        check_entry({**copy.deepcopy(good), "difference": 5.0})
    few = entry(ours=(30.0, 31.0, 29.0), official=(30.0, 30.5, 29.5))
    with pytest.raises(UserError, match="at least 5 evaluation networks"):
        check_entry(few)
    not_run = {"format": "dd-bench-ledger", "version": 1, "pair": "datm-cifar10-ipc10", "method": "datm",
               "dataset": "cifar10", "ipc": 10, "status": "not run", "reason": "the budget ran out",
               "official": {"repository": "GzyAftermath/DATM"}}
    assert check_entry(not_run)["status"] == "not run"


def test_the_page_is_what_the_generator_writes_from_the_committed_entries(tmp_path):
    assert (ROOT / "docs" / "ledger.md").read_text() == _script("render").page(ROOT / "results" / "ledger")
    built = _script("render").built_pairs()
    assert {"mtt-cifar10-ipc1", "datm-cifar10-ipc10", "rded-cifar10-ipc10", "sre2l-cifar10-ipc10"} <= set(built)
    committed = load_ledger(ROOT / "results" / "ledger")
    waiting = render_markdown(committed, built=built).split("not yet measured", 1)[1]
    assert "`rded-cifar10-ipc10` (LINs-lab/RDED)" in waiting
    assert all(f"`{e['pair']}`" not in waiting for e in committed)  # a measured pair is a row, not a promise
    (tmp_path / "a.json").write_text(json.dumps(entry()))
    page = render_markdown(load_ledger(tmp_path))
    assert "| mtt-cifar10-ipc1 | mtt | cifar10, IPC 1 |" in page and "| agree |" in page and "0.90x" in page
    assert "Speed: 1 of 1 like-for-like timed pair(s) within the target" in page and "slower:" not in page
    slow = {**entry(), "pair": "dm-fmnist-ipc1", "wall_time_ratio": 1.18}
    apart = {**entry(), "pair": "mtt-experts-cifar10", "wall_time_ratio": 0.36,
             "wall_time_not_comparable": "the official side also tests"}
    speed = render_markdown([entry(), slow, apart])
    assert "Speed: 1 of 2 like-for-like timed pair(s) within the target" in speed
    assert "slower: dm-fmnist-ipc1 1.18x" in speed and "mtt-experts-cifar10 0.36x" not in speed
    assert "counted neither way: mtt-experts-cifar10 (the official side also tests)" in speed
    assert "No pair has been measured yet" in render_markdown([])


def test_the_data_adapter_writes_the_same_class_balanced_subset_for_the_same_seed(digits, tmp_path):
    data = _script("data")
    a = data.write_subset(digits, per_class=3, seed=7, out=tmp_path / "a")
    b = data.write_subset(digits, per_class=3, seed=7, out=tmp_path / "b")
    c = data.subset_indices(digits, per_class=3, seed=8)
    assert a["indices_sha256"] == b["indices_sha256"] and a["indices"] == b["indices"]
    assert data.indices_sha256(c) != a["indices_sha256"]
    labels = [int(digits.train_labels[i]) for i in a["indices"]]
    assert labels == sorted(labels) and all(labels.count(k) == 3 for k in range(10))
    folders = sorted(p.name for p in (tmp_path / "a" / "train").iterdir())
    assert len(folders) == 10 and folders[0].startswith("000_")
    assert sum(1 for _ in (tmp_path / "a" / "train").rglob("*.png")) == 30
    assert json.loads((tmp_path / "a" / "subset.json").read_text())["indices_sha256"] == a["indices_sha256"]


def test_the_report_shows_the_ledger_as_a_panel_when_entries_exist(tmp_path):
    from dd_bench.results.report import ledger_panel

    assert ledger_panel(tmp_path) == "" and ledger_panel(None) == ""
    (tmp_path / "a.json").write_text(json.dumps(entry()))
    panel = ledger_panel(tmp_path)
    assert "fidelity ledger" in panel and "mtt-cifar10-ipc1" in panel and "agree" in panel


def _with_shim(tmp_path, parts, code: str, **extra_env: str) -> str:
    """Run ``code`` in a fresh interpreter with the harness's sitecustomize first on PYTHONPATH; its stdout."""
    import os
    import subprocess
    import sys

    shim = _script("shims").write_shim(tmp_path / "shim", parts)
    env = {**os.environ, "PYTHONPATH": str(shim), "LEDGER_SEED": "3", **extra_env}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_shim_seeds_and_restores_what_old_torch_computed(tmp_path):
    import torch

    code = ("import json, torch\n"
            "x = torch.tensor([5., 1., 2., 3.]); x[:] = x[0]\n"  # DiffAugment's Siamese write
            "y = torch.arange(24.).reshape(2, 3, 4).permute(0, 2, 1)\n"  # non-contiguous: view refuses it
            "z = y.view(y.size(0), -1)\n"
            "print(json.dumps([x.tolist(), torch.equal(z, y.reshape(2, -1)), torch.rand(1).item()]))")
    x, same, draw = json.loads(_with_shim(tmp_path, ("setitem_overlap", "view_fallback"), code))
    assert x == [5.0, 5.0, 5.0, 5.0] and same
    assert draw == pytest.approx(torch.rand(1, generator=torch.Generator().manual_seed(3)).item())  # LEDGER_SEED=3


def test_the_epoch_timer_shim_times_each_mode_of_the_official_epoch_and_changes_no_value(tmp_path):
    import os
    import subprocess
    import sys

    official = tmp_path / "official"  # buffer.py's layout: the script beside its utils.py, `from utils import epoch`
    official.mkdir()
    (official / "utils.py").write_text("import time\ndef epoch(mode, n):\n    time.sleep(0.05)\n"
                                       "    return mode, n * 2\n")
    (official / "buffer.py").write_text("from utils import epoch\nprint(epoch('train', 1), epoch('train', 2), "
                                        "epoch('test', 3))\n")
    shim = _script("shims").write_shim(tmp_path / "shim", ("epoch_timer",))
    times = tmp_path / "epoch_times.json"
    env = {**os.environ, "PYTHONPATH": str(shim), "LEDGER_EPOCH_TIMES": str(times)}
    done = subprocess.run([sys.executable, str(official / "buffer.py")], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('train', 2) ('train', 4) ('test', 6)"
    got = json.loads(times.read_text())
    assert got["train"]["calls"] == 2 and got["test"]["calls"] == 1
    assert 0.1 <= got["train"]["seconds"] < 2 and 0.05 <= got["test"]["seconds"] < 1


def test_the_copying_cpu_shim_snapshots_cpu_parameters(tmp_path):
    code = ("import torch\n"
            "p = torch.zeros(2); snap = p.detach().cpu(); p.add_(1)\n"
            "print(snap.tolist())")
    assert _with_shim(tmp_path, ("copying_cpu",), code) == "[0.0, 0.0]"
    assert _with_shim(tmp_path, (), code) == "[1.0, 1.0]"  # the trap: without the shim the snapshot aliases


def test_official_timing_comes_from_the_progress_lines(tmp_path):
    harness = _script("harness")
    log = tmp_path / "official.log"
    log.write_text("[2026-12-07 10:00:00] iter = 00000, loss = 1\nEvaluate ...\n"
                   "[2026-12-07 10:00:20] iter = 00010, loss = 1\n[2026-12-07 10:01:40] iter = 00050, loss = 1\n")
    assert harness.seconds_per_iteration(log) == pytest.approx(2.0)
    log.write_text("[2026-12-07 10:00:00] iter = 00000, loss = 1\n")
    with pytest.raises(SystemExit, match="fewer than two"):
        harness.seconds_per_iteration(log)


def test_a_finished_step_is_not_run_again(tmp_path):
    import sys

    harness = _script("harness")
    cmd = [sys.executable, "-c", "import pathlib; p = pathlib.Path('n'); p.write_text(p.read_text() + 'x' "
                                 "if p.exists() else 'x')"]
    first = harness.run_step(tmp_path, "count", cmd, cwd=tmp_path)
    second = harness.run_step(tmp_path, "count", cmd, cwd=tmp_path)
    assert (tmp_path / "n").read_text() == "x" and first["command"] == second["command"]


def test_the_cifar_shim_reads_an_image_folder_tree(tmp_path):
    from PIL import Image

    for split, n in (("train", 2), ("test", 1)):
        for name in ("airplane", "automobile"):
            (tmp_path / "tree" / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (10 * i, 0, 0)).save(tmp_path / "tree" / split / name / f"{i}.png")
    code = ("import json, torchvision.datasets as d, torchvision.transforms as t\n"
            f"train = d.CIFAR10({str(tmp_path / 'tree')!r}, train=True, download=True, transform=t.ToTensor())\n"
            f"test = d.CIFAR10({str(tmp_path / 'tree')!r}, train=False, download=True)\n"
            "print(json.dumps([len(train), len(test), train.classes, list(train[3][0].shape), train[3][1]]))")
    n_train, n_test, classes, shape, label = json.loads(_with_shim(tmp_path, ("cifar_imagefolder",), code))
    assert (n_train, n_test, classes, shape, label) == (4, 2, ["airplane", "automobile"], [3, 32, 32], 1)


def test_the_wandb_shim_keeps_the_config_logs_scalars_and_drops_the_rest(tmp_path):
    harness = _script("harness")
    log = tmp_path / "wandb.jsonl"
    code = ("import argparse, json, os, numpy, torch, wandb\n"
            "os.environ['LEDGER_WANDB_LOG'] = " + repr(str(log)) + "\n"
            "wandb.init(sync_tensorboard=False, project='p', config=argparse.Namespace(ipc=10, zca=True))\n"
            "wandb.log({'Progress': 3}, step=3)\n"
            "wandb.log({'Synthetic_LR': torch.tensor(0.5).detach().cpu()}, step=3)\n"
            "wandb.log({'Grand_Loss': torch.tensor(2.0), 'Start_Epoch': numpy.int64(1)})\n"
            "wandb.log({'Pixels': wandb.Histogram(torch.zeros(3)), 'Grid': wandb.Image(torch.zeros(3))}, step=3)\n"
            "wandb.watch(None); wandb.finish()\n"
            "print(json.dumps([dict(wandb.config._items), wandb.run.name, wandb.__doc__]))")
    items, run_name, doc = json.loads(_with_shim(tmp_path, ("wandb_noop",), code))
    assert items == {"ipc": 10, "zca": True} and run_name == "ledger" and "no-op" in doc
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert rows[2] == {"step": None, "Grand_Loss": 2.0, "Start_Epoch": 1}
    assert rows[3] == {"step": 3, "Pixels": "Histogram", "Grid": "Image"}
    assert harness.wandb_logged(log, "Synthetic_LR", step=3) == 0.5
    with pytest.raises(SystemExit, match="no 'Synthetic_LR' at step 4"):
        harness.wandb_logged(log, "Synthetic_LR", step=4)


def test_the_capture_shim_saves_the_set_after_exactly_n_updates_and_changes_nothing(tmp_path):
    import torch

    capture = tmp_path / "capture"
    # distill.py's loop shape: Progress logged first in iteration it, the update last.
    code = ("import json, torch, wandb\n"
            "def main():\n"
            "    image_syn, syn_lr = torch.zeros(2, 3), torch.tensor(0.01)\n"
            "    label_syn = torch.tensor([0, 1])\n"
            "    for it in range(0, 4):\n"
            "        wandb.log({'Progress': it}, step=it)\n"
            "        wandb.log({'Synthetic_LR': syn_lr.detach().cpu()}, step=it)\n"
            "        image_syn = image_syn + 1\n"
            "        syn_lr = syn_lr * 2\n"
            "    return image_syn\n"
            "print(json.dumps(main().tolist()))")
    out = _with_shim(tmp_path, ("wandb_noop", "set_capture"), code, LEDGER_CAPTURE_STEP="2",
                     LEDGER_CAPTURE_DIR=str(capture), LEDGER_WANDB_LOG=str(tmp_path / "wandb.jsonl"))
    assert json.loads(out) == [[4.0] * 3] * 2  # the run itself is unchanged
    assert torch.equal(torch.load(capture / "image_syn.pt"), torch.full((2, 3), 2.0))  # after exactly 2 updates
    assert torch.load(capture / "syn_lr.pt").item() == pytest.approx(0.04)
    assert (capture / "step.txt").read_text() == "2"
    assert torch.equal(torch.load(capture / "label_syn.pt"), torch.tensor([0, 1]))
    assert _script("harness").wandb_logged(tmp_path / "wandb.jsonl", "Synthetic_LR", step=2) == pytest.approx(0.04)


def test_the_cuda_shim_copies_on_a_machine_without_cuda(tmp_path):
    code = ("import torch\n"
            "x = torch.zeros(2); y = x.cuda(); y.add_(1)\n"
            "print(torch.cuda.is_available() or (x.tolist(), y.device.type) == ([0.0, 0.0], 'cpu'))")
    assert _with_shim(tmp_path, ("cuda_copy",), code) == "True"


def _mtt():
    """scripts/ledger/mtt.py, imported by name as pair.py imports it (its dataclasses need a registered module)."""
    import importlib
    import sys

    if str(ROOT / "scripts" / "ledger") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts" / "ledger"))
    return importlib.import_module("mtt")


def test_each_mtt_budget_value_reaches_both_sides_unchanged(compose_cfg):
    mtt = _mtt()
    for pair in [*mtt.PAIRS.values(), *map(mtt.smoke, mtt.PAIRS.values())]:
        assert pair.nets >= 5 and (pair.kind == "experts" or pair.eval_epochs in (300, 1))
        if pair.kind == "experts":
            assert pair.family.experts >= 5  # one accuracy per expert: check_entry's minimum
            continue
        # every start epoch the sampler can draw reaches its target on the shared trajectories
        assert pair.max_start_epoch - 1 + pair.expert_epochs <= pair.family.expert_train_epochs
        official = {flag: float(v) for flag, v in pair.official_flags().items()}
        cfg = compose_cfg("task=run", "method=mtt", "dataset=cifar10", "dataset.zca=true",
                          *[f"{k}={v}" for k, v in pair.ddbench_overrides().items()],
                          "method.expert_buffers=/b/CIFAR10/ConvNet/replay_buffer_*.pt")
        budget = pair.budget()
        for field, flag, key in mtt.BUDGET_KEYS:
            composed = cfg.ipc if key == "ipc" else cfg.method[key.split(".")[1]]
            assert official[flag] == composed == getattr(pair, field), (pair.name, field)
            assert field == "ipc" or budget[field] == composed
        assert cfg.method.expert_buffers.endswith("replay_buffer_*.pt") and cfg.dataset.zca


def test_the_mtt_learning_rates_are_the_presets_and_reductions_name_the_preset_values(compose_cfg):
    mtt = _mtt()
    for ipc in (1, 10):
        pair = mtt.PAIRS[f"mtt-cifar10-ipc{ipc}"]
        preset = compose_cfg("task=run", f"experiment=mtt_cifar10_ipc{ipc}").method
        assert (pair.lr_img, pair.lr_lr, pair.lr_teacher) == (preset.lr_img, preset.lr_lr, preset.lr_teacher)
        assert pair.expert_epochs == preset.expert_epochs and pair.ipc == ipc
        for field, value in pair.reduced:
            assert preset[field] == value and getattr(pair, field, None) in (None, *range(value))
        unreduced = {f for f, _, _ in mtt.BUDGET_KEYS} - {f for f, _ in pair.reduced} - {"ipc"}
        assert all(getattr(pair, f) == preset[f] for f in unreduced), unreduced


def test_a_shared_step_folder_refuses_another_budget(tmp_path):
    harness = _script("harness")
    harness.stamped_dir(tmp_path / "f", {"experts": 10})
    harness.stamped_dir(tmp_path / "f", {"experts": 10})
    with pytest.raises(SystemExit, match="another budget"):
        harness.stamped_dir(tmp_path / "f", {"experts": 5})


def test_the_test_split_is_written_with_the_training_folders(digits, tmp_path):
    harness, data = _script("harness"), _script("data")
    data.write_subset(digits, per_class=2, seed=0, out=tmp_path)
    info = harness.write_test_split(digits, out=tmp_path, per_class=3, seed=1)
    assert info == {"test": "3 per class (seed 1; a smoke run only)", "test_images": 30}
    train = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == train
    assert sum(1 for _ in (tmp_path / "test").rglob("*.png")) == 30


def test_the_official_logs_are_read_back(tmp_path):
    mtt = _mtt()
    log = tmp_path / "distill.log"
    log.write_text("model_train = ConvNet, model_eval = ConvNet, iteration = 0\nEvaluate 1 random ConvNet, mean = "
                   "0.1500 std = 0.0000\nmodel_train = ConvNet, model_eval = ConvNet, iteration = 200\nEvaluate 1 "
                   "random ConvNet, mean = 0.4200 std = 0.0000\n")
    assert mtt.in_loop_accuracies(log) == pytest.approx({0: 15.0, 200: 42.0})
    log.write_text("".join(f"Itr: {e}\tEpoch: {t}\tTrain Acc: 0.5\tTest Acc: 0.{e}{t}\n" for e in range(2)
                           for t in range(3)))
    first, second = mtt.buffer_log_test_accuracies(log)
    assert first == pytest.approx([0.0, 1.0, 2.0]) and second == pytest.approx([10.0, 11.0, 12.0])


def test_the_official_set_is_the_captured_one_and_must_equal_what_distill_saved(tmp_path):
    import torch

    mtt = _mtt()
    logged, log, capture = tmp_path / "logged", tmp_path / "wandb.jsonl", tmp_path / "capture"
    logged.mkdir()
    capture.mkdir()
    (tmp_path / "official-distill.done.json").write_text("{}")
    stage = functools.partial(mtt.stage_official_set, tmp_path, logged, log, iteration=200, capture=capture)
    assert stage() is None
    assert not (tmp_path / "official-distill.done.json").exists()  # the next run retries the step
    images, lr = torch.randn(10, 3, 32, 32), torch.tensor(0.0123)
    torch.save(images, capture / "image_syn.pt")
    torch.save(torch.arange(10), capture / "label_syn.pt")
    torch.save(lr, capture / "syn_lr.pt")
    (capture / "step.txt").write_text("100")  # a capture of another iteration is not this one's
    assert stage() is None
    (capture / "step.txt").write_text("200")
    log.write_text(json.dumps({"step": 200, "Progress": 200}) + "\n"
                   + json.dumps({"step": 200, "Synthetic_LR": lr.item()}) + "\n")
    staged = stage()  # distill.py saved nothing at 200: the capture alone
    assert staged["saved_by_distill"] is None and staged["learned_lr"] == lr.item()
    files = sorted(p.name for p in Path(staged["dir"]).iterdir())
    assert files == ["images_best.pt", "labels_best.pt", "synthetic_lr_best.pt"]
    assert torch.equal(torch.load(Path(staged["dir"]) / "images_best.pt"), images)
    assert torch.load(Path(staged["dir"]) / "synthetic_lr_best.pt").item() == pytest.approx(0.0123)
    torch.save(images.clone(), logged / "images_200.pt")
    assert stage()["saved_by_distill"] == str(logged / "images_200.pt")
    nan = images.clone()
    nan[0, 0, 0, 0] = float("nan")
    torch.save(nan, capture / "image_syn.pt")
    torch.save(nan.clone(), logged / "images_200.pt")
    assert stage()["saved_by_distill"]  # NaN equals NaN: a diverged run is still the same run
    torch.save(images + 1, logged / "images_200.pt")
    with pytest.raises(SystemExit, match="differs from"):
        stage()
    log.write_text(json.dumps({"step": 200, "Synthetic_LR": 0.5}) + "\n")
    with pytest.raises(SystemExit, match="is not the Synthetic_LR distill.py logged at iteration 200"):
        stage()


def test_an_official_distill_run_that_leaves_no_capture_stops_with_a_message(tmp_path, monkeypatch):
    mtt = _mtt()
    pair = mtt.PAIRS["mtt-cifar10-ipc10"]
    folder = tmp_path / pair.family.name / pair.name
    stale = folder / "official-run" / "logged_files" / "CIFAR10" / pair.name / "images_100.pt"
    stale.parent.mkdir(parents=True)
    stale.write_text("an earlier run's file")
    seen = []

    def fake_step(where, name, command, **kwargs):
        seen.append((name, kwargs["env"]["LEDGER_CAPTURE_STEP"], stale.exists()))
        return {"log": str(where / f"{name}.log"), "wall_seconds": 1.0}

    monkeypatch.setattr(mtt, "prepare_family", lambda family, **kw: {"tree": tmp_path / "data",
                                                                     "buffers": tmp_path / "buffers"})
    monkeypatch.setattr(mtt, "run_step", fake_step)
    with pytest.raises(SystemExit, match="left no capture of iteration 100"):
        mtt.run_distill_pair(pair, official=tmp_path, data=tmp_path, work=tmp_path, out=tmp_path)
    assert seen == [("official-distill", "100", False)]  # an earlier run's saved set was removed first


def test_the_timed_official_buffer_run_reports_its_training_epochs_apart(tmp_path, monkeypatch):
    mtt = _mtt()
    family = mtt.FAMILY
    shared_log = tmp_path / "buffer.log"
    shared_log.write_text("Itr: 0\tEpoch: 3\tTrain Acc: 0.5\tTest Acc: 0.30\n")
    timed_log = tmp_path / "timed.log"
    timed_log.write_text("Itr: 0\tEpoch: 3\tTrain Acc: 0.5\tTest Acc: 0.28\n")
    seen = {}

    def fake_step(where, name, command, **kwargs):
        seen.update(name=name, command=command, env=kwargs["env"])
        calls = family.experts * family.expert_train_epochs
        Path(kwargs["env"]["LEDGER_EPOCH_TIMES"]).write_text(json.dumps(
            {"train": {"calls": calls, "seconds": 228.0}, "test": {"calls": calls, "seconds": 407.0}}))
        return {"command": " ".join(command), "wall_seconds": 653.0, "log": str(timed_log)}

    monkeypatch.setattr(mtt, "run_step", fake_step)
    fam = {"buffer": {"command": "python buffer.py --buffer_path /shared/buffers --zca", "log": str(shared_log),
                      "environment": {"LEDGER_SEED": "0"}}}
    timed = mtt._time_official_training(fam, folder=tmp_path, family=family)
    assert seen["name"] == "official-buffer-timed"
    assert seen["command"][seen["command"].index("--buffer_path") + 1] == str(tmp_path / "official-timed" / "buffers")
    assert seen["env"]["LEDGER_SEED"] == "0" and "_EpochTimer" in (Path(seen["env"]["PYTHONPATH"]) /
                                                                   "sitecustomize.py").read_text()
    assert (timed["train_epoch_seconds"], timed["test_epoch_seconds"], timed["wall_seconds"]) == (228.0, 407.0, 653.0)
    assert timed["mean_final_test_accuracy_logged"] == pytest.approx({"timed_run": 28.0, "shared_step": 30.0})
    Path(seen["env"]["LEDGER_EPOCH_TIMES"]).unlink()

    def short_step(where, name, command, **kwargs):  # a run that timed fewer epochs than the recipe has
        Path(kwargs["env"]["LEDGER_EPOCH_TIMES"]).write_text(json.dumps({"train": {"calls": 3, "seconds": 1.0}}))
        return {"command": "", "wall_seconds": 1.0, "log": str(timed_log)}

    monkeypatch.setattr(mtt, "run_step", short_step)
    with pytest.raises(SystemExit, match="3 training epochs timed, expected 40"):
        mtt._time_official_training(fam, folder=tmp_path, family=family)


def test_an_experts_entry_passes_the_schema_and_renders():
    experts = {**entry(), "pair": "mtt-experts-cifar10", "ipc": None, "kind": "experts",
               "per_epoch": {"epochs": [0, 1], "mean_ddbench": [10.0, 30.0], "mean_official": [10.0, 30.1]}}
    assert check_entry(copy.deepcopy(experts))["verdict"] == "agree"
    page = render_markdown([experts])
    assert "| mtt-experts-cifar10 | mtt | cifar10, experts |" in page and "IPC None" not in page


def _evaluators():
    _mtt()  # puts scripts/ledger on sys.path
    import importlib

    return importlib.import_module("evaluators")


def test_an_evaluator_pair_hands_one_budget_to_both_evaluators_and_writes_a_valid_entry(tmp_path, monkeypatch):
    """Steps stubbed: the commands each evaluator gets, and the entry from their accuracies (kind evaluators)."""
    import types

    ev = _evaluators()
    pair = ev.PAIRS["eval-mtt-fmnist-dc-ipc1"]
    assert (ev.COMMITTED_DC_SET / "meta.json").is_file()  # the committed DC set it scores
    commands = {}

    def fake_step(work, name, command, *, cwd=None, env=None):
        commands[name] = command
        if name == "official-evaluate":
            out = Path(command[command.index("--out") + 1])
            out.write_text(json.dumps({"accuracies": [70.0, 70.4, 69.8, 70.2, 70.1, 69.9, 70.3, 70.0, 70.2, 69.9],
                                       "scoring_seconds": 100.0}))
        return {"wall_seconds": 1.0, "log": str(work / f"{name}.log")}

    record = types.SimpleNamespace(accuracies=[70.1, 70.2, 69.9, 70.0, 70.3, 69.8, 70.1, 70.2, 70.0, 70.0],
                                   eval_seconds=90.0, git_sha="1" * 40, set_hash="s", record_hash="r")
    monkeypatch.setattr(ev, "run_step", fake_step)
    monkeypatch.setattr(ev, "git_commit", lambda path: "0" * 40)
    monkeypatch.setattr(ev, "only_record", lambda results: record)
    path = ev.run(pair, official=tmp_path, data=tmp_path / "data", work=tmp_path / "w", out=tmp_path)
    ours, theirs = commands["ddbench-evaluate"], commands["official-evaluate"]
    assert f"eval.epochs={pair.eval_epochs}" in ours and f"seeds={pair.nets}" in ours and "eval=mtt" in ours
    assert theirs[theirs.index("--epoch_eval_train") + 1] == str(pair.eval_epochs)
    assert theirs[theirs.index("--nets") + 1] == str(pair.nets) and pair.nets >= 5
    assert "format=pt" in commands["export"]
    saved = check_entry(json.loads(path.read_text()))
    assert saved["kind"] == "evaluators" and saved["wall_time_ratio"] == pytest.approx(0.9)
    assert "| eval-mtt-fmnist-dc-ipc1 | evaluator: dc set | fashion_mnist, IPC 1, evaluators alone |" in \
        render_markdown([saved])
