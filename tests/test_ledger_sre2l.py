"""The SRe2L pair of the fidelity ledger (scripts/ledger/sre2l.py): the class-count rewrite of recover_cifar.py, the
conv3 and CPU shims, one budget table for both sides, the staged official set, the labels attached to an imported set,
and the entry, all without running anything of the official code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_ledger_rded import _family, _ledger, fake_record

ROOT = Path(__file__).resolve().parent.parent

# VILA-Lab/SRe2L@8d00cba SRe2L/*small_dataset: recover_cifar.sh's flags (jitter and first-bn-multiplier: the
# script's argparse defaults) and relabel_cifar.sh's.
RECOVER_SH = {"--batch-size": "100", "--lr": "0.25", "--iteration": "1000", "--r-bn": "0.01", "--jitter": "4",
              "--first-bn-multiplier": "10.0"}
RELABEL_SH = {"--epochs": "400", "--batch-size": "128"}

# The shape of recover_cifar.py's get_images (not its text): the class count in arange, range and min, and an
# unrelated 100 that must stay.
SOURCE = '''\
import numpy as np
def get_images(batch_size):
    save_every = 100
    targets_all = list(np.arange(100))
    out = []
    for kk in range(0, 100, batch_size):
        out.append(targets_all[kk:min(kk + batch_size, 100)])
    return save_every, out
def other():
    return min(3, 100)
'''


def test_the_class_count_rewrite_touches_the_three_literals_of_get_images_only():
    sre2l = _ledger("sre2l")
    scope = {"__name__": "ledger_test"}
    exec(sre2l.class_count_code(SOURCE, "recover_cifar.py", 10), scope)
    save_every, batches = scope["get_images"](4)
    assert save_every == 100 and [len(b) for b in batches] == [4, 4, 2] and batches[-1] == [8, 9]
    assert scope["other"]() == 3  # outside get_images: untouched
    with pytest.raises(SystemExit, match="2 class-count literals"):
        sre2l.class_count_code(SOURCE.replace("min(kk + batch_size, 100)", "kk + batch_size"), "x.py", 10)



def test_the_recover_driver_runs_the_rewritten_script_as_main_from_its_own_folder(tmp_path):
    """RECOVER_DRIVER on a stand-in script (the shape of recover_cifar.py: a sibling utils module, argv, __main__)."""
    sre2l = _ledger("sre2l")
    small = tmp_path / "small"
    small.mkdir()
    (small / "utils.py").write_text("NAME = 'sibling utils'\n")
    (small / "recover.py").write_text(SOURCE + "if __name__ == '__main__':\n    import json, sys\n"
                                      "    from utils import NAME\n    last = [int(v) for v in get_images(6)[1][-1]]\n"
                                      "    print(json.dumps([NAME, sys.argv[1:], last]))\n")
    (tmp_path / "driver.py").write_text(sre2l.RECOVER_DRIVER)
    ledger = str(ROOT / "scripts" / "ledger")
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), ledger, str(small / "recover.py"), "10",
                           "--lr", "0.25"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["sibling utils", ["--lr", "0.25"], [6, 7, 8, 9]]

def test_each_sre2l_budget_value_reaches_both_sides_unchanged(compose_cfg, tmp_path):
    sre2l, t = _ledger("sre2l"), _ledger("teacher")
    for pair in [*sre2l.PAIRS.values(), *map(sre2l.smoke, sre2l.PAIRS.values())]:
        assert pair.nets >= 5
        flags = pair.recover_flags(teacher_file=tmp_path / "t.pth", out=tmp_path / "syn")
        flags.remove("--store-best-images")
        recover = {flags[i]: flags[i + 1] for i in range(0, len(flags), 2)}
        relabel = pair.relabel_flags(teacher_file=tmp_path / "t.pth", syn=tmp_path / "syn", out=tmp_path / "o")
        relabel = {relabel[i]: relabel[i + 1] for i in range(0, len(relabel), 2)}
        assert recover["--ipc-start"] == "0" and recover["--ipc-end"] == relabel["--ipc"] == str(pair.ipc)
        assert recover["--arch-path"] == relabel["--teacher-path"] == str(tmp_path / "t.pth")
        cfg = compose_cfg("task=run", f"experiment={sre2l.EXPERIMENT}", f"method.teacher={t.ARCH_RECIPE}",
                          "method.teacher_weights=/t/conv3.safetensors", "models=[convnet_bn]",
                          *pair.ddbench_overrides(), f"seeds={pair.nets}", "references=[]")
        for field, flag, key in sre2l.BUDGET_KEYS:
            assert float(recover[flag]) == cfg.method[key.split(".")[1]] == getattr(pair, field), (pair.name, field)
        assert cfg.ipc == pair.ipc and cfg.eval.epochs == int(relabel["--epochs"]) == pair.eval_epochs
        assert cfg.eval.name == "kd" and list(cfg.models) == ["convnet_bn"] and cfg.method.teacher_bn_train
        assert cfg.method.crop == "none" and cfg.method.labels == "teacher" and cfg.image_store == "jpeg"


def test_the_sre2l_values_are_the_official_scripts_but_the_reduced_ones(tmp_path):
    sre2l = _ledger("sre2l")
    pair = sre2l.PAIRS["sre2l-cifar10-ipc10"]
    flags = pair.recover_flags(teacher_file=tmp_path, out=tmp_path)
    assert all(flags[flags.index(flag) + 1] == value for flag, value in RECOVER_SH.items())
    assert dict(pair.reduced) == {"eval_epochs": 400} and pair.eval_epochs <= 400
    relabel = pair.relabel_flags(teacher_file=tmp_path, syn=tmp_path, out=tmp_path)
    assert relabel[relabel.index("--batch-size") + 1] == RELABEL_SH["--batch-size"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="cuda_on_cpu changes nothing where CUDA is present")
def test_the_conv3_and_cpu_shims_build_the_conv3_where_the_scripts_build_a_resnet(tmp_path):
    shims, t = _ledger("shims"), _ledger("teacher")
    from dd_bench.models import create_model

    teacher = create_model("convnet_bn", num_classes=10, in_channels=3, image_size=(32, 32), width=128, depth=3)
    torch.save({"state_dict": t.to_sre2l_state(teacher.state_dict())}, tmp_path / "ckpt.pth")
    shim = shims.write_shim(tmp_path / "shim", ("cuda_on_cpu", "cuda_copy", "conv3_model"))
    code = ("import json, torch, torchvision, torch.nn as nn\n"
            "m = torchvision.models.get_model('resnet18', num_classes=100)\n"
            "m.conv1 = nn.Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
            "m.maxpool = nn.Identity()\n"
            "d = nn.DataParallel(m).cuda(); nn.CrossEntropyLoss().cuda()\n"
            f"d.load_state_dict(torch.load({str(tmp_path / 'ckpt.pth')!r})['state_dict'])\n"
            "x = torch.randn((2, 3, 32, 32), requires_grad=True, device='cuda', dtype=torch.float)\n"
            "y = torch.arange(2).to('cuda'); p = torch.randperm(2).cuda()\n"
            "print(json.dumps([type(m).__name__, list(d(x).shape), x.device.type, y.device.type, p.device.type,\n"
            "                  hasattr(m, 'conv1'), sum(t.numel() for t in m.parameters())]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)]), "LEDGER_NUM_CLASSES": "10"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    name, shape, *devices, stem, params = json.loads(done.stdout)
    assert name == "Conv3" and shape == [2, 10] and devices == ["cpu"] * 3 and not stem
    assert params == sum(p.numel() for p in teacher.parameters())  # the conv3, nothing of the dropped stem


def test_the_official_set_is_staged_under_class_names_and_its_logs_read_back(tmp_path):
    sre2l = _ledger("sre2l")
    fam = _family(tmp_path)
    syn = tmp_path / "syn"
    for c in range(10):
        (syn / f"new{c:03d}").mkdir(parents=True)
        (syn / f"new{c:03d}" / f"class{c:03d}_id000.jpg").write_bytes(b"j")
    staged = sre2l.stage_official_set(syn, tree=fam["tree"], out=tmp_path / "staged")
    assert staged["images"] == 10 and (tmp_path / "staged/003_cat/class003_id000.jpg").read_bytes() == b"j"
    (syn / "new009").rename(syn / "new010")
    with pytest.raises(SystemExit, match="one new<class> folder per class"):
        sre2l.stage_official_set(syn, tree=fam["tree"], out=tmp_path / "staged")
    log = tmp_path / "relabel.log"
    log.write_text("Epoch: [0], Acc@1 10.000, Loss 1.0\nTest: Acc@1 12.340, Loss 2.3\nEpoch: [1], Acc@1 11.000, "
                   "Loss 0.9\nTest: Acc@1 15.500, Loss 2.1\ntotal time: 3.0 s\n")
    assert sre2l.relabel_accuracies(log) == [12.34, 15.5]


def test_attaching_the_teacher_keeps_the_imported_images_and_names_dd_benchs_teacher(digits, tmp_path):
    t = _ledger("teacher")
    from dd_bench.exchange.imports import save_imported, synset_from_tensors
    from dd_bench.synset import load_synset

    images = torch.randint(0, 256, (10, digits.channels, *digits.image_size), dtype=torch.uint8)
    save_imported(synset_from_tensors(images, torch.arange(10), real=digits, space="uint8", name="official"),
                  tmp_path / "imported", digits)
    teachers = [{"recipe": "rded_observer_cifar_conv3", "key": "file:conv3.safetensors", "source": "file",
                 "weights": "/t/conv3.safetensors"}]
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "meta.json").write_text(json.dumps({"labels": {"source": "teacher", "teachers": teachers,
                                                                        "bn_train": True, "weights": None}}))
    t.attach_teacher(tmp_path / "imported", tmp_path / "ours", tmp_path / "labelled")
    labelled = load_synset(tmp_path / "labelled")
    assert torch.equal(labelled.images, images) and labelled.method == "official"
    assert labelled.label_source == "teacher" and labelled.label_section.teachers == teachers
    assert labelled.label_section.bn_train is True and labelled.recommended_protocol == "kd"
    (tmp_path / "ours" / "meta.json").write_text(json.dumps({"labels": {"source": "hard"}}))
    with pytest.raises(SystemExit, match="names no teacher"):
        t.attach_teacher(tmp_path / "imported", tmp_path / "ours", tmp_path / "again")


def test_an_sre2l_pair_hands_its_budget_to_every_step_and_writes_a_valid_entry(tmp_path, monkeypatch):
    """Steps stubbed: the commands each side gets, and the entry from their records (check_entry passes)."""
    sre2l = _ledger("sre2l")
    from dd_bench.results.ledger import check_entry

    pair = sre2l.PAIRS["sre2l-cifar10-ipc10"]
    official = tmp_path / "SRe2L"
    (official / sre2l.SMALL).mkdir(parents=True)
    (official / sre2l.SMALL / "recover_cifar.py").write_text("")
    commands = {}

    def fake_step(work, name, command, *, cwd=None, env=None):
        commands[name] = (command, cwd, env)
        if name == "official-recover":
            syn = Path(command[command.index("--syn-data-path") + 1]) / "ledger"
            for c in range(10):
                (syn / f"new{c:03d}").mkdir(parents=True, exist_ok=True)
                (syn / f"new{c:03d}" / "class_id.jpg").write_bytes(b"j")
        log = work / f"{name}.log"
        log.write_text("Test: Acc@1 20.000, Loss 2\n" + f"Test: Acc@1 {33 + int(env['LEDGER_SEED']) / 10}, Loss 2\n"
                       if name.startswith("cross-check") else "")
        if name == "ddbench-distill":  # dd-bench distill writes its set under results=
            results = Path(next(a for a in command if a.startswith("results=")).split("=", 1)[1])
            (results / "synsets" / "ours").mkdir(parents=True)
            (results / "synsets" / "ours" / "meta.json").write_text("{}")
        wall = 40.0 if name == "ddbench-distill" else 100.0
        return {"wall_seconds": wall, "log": str(log), "command": " ".join(map(str, command))}

    records = {"ddbench": fake_record([33.0, 33.4, 32.8, 33.2, 33.1]),
               "official-scored": fake_record([33.2, 32.9, 33.3, 33.0, 33.1])}
    for module in (sre2l, sre2l.decoupled):
        monkeypatch.setattr(module, "run_step", fake_step)
        monkeypatch.setattr(module, "only_record", lambda results: records[Path(results).name])
    monkeypatch.setattr(sre2l, "git_commit", lambda path: "0" * 40)
    monkeypatch.setattr(sre2l.decoupled, "prepare_family", lambda family, data, work: _family(tmp_path))
    path = sre2l.run(pair, official=official, data=tmp_path / "data", work=tmp_path / "w", out=tmp_path)

    recover, _, env = commands["official-recover"]
    assert recover[recover.index("--iteration") + 1] == "1000" and recover[recover.index("--ipc-end") + 1] == "10"
    assert recover[4] == "10" and env["LEDGER_NUM_CLASSES"] == "10" and str(ROOT) in env["PYTHONPATH"]
    ours, ours_score = commands["ddbench-distill"][0], commands["ddbench-score"][0]
    assert "experiment=sre2l_cifar10_ipc10" in ours and "method.iterations=1000" in ours and "ipc=10" in ours
    assert "method.r_bn=0.01" in ours and "eval.epochs=200" in ours_score and "models=[convnet_bn]" in ours_score
    same = lambda cmd: [a for a in cmd if not a.startswith(("synset=", "results="))]  # noqa: E731
    assert same(commands["score-official"][0]) == same(ours_score)  # both sets are scored by one command
    for i in range(5):
        cmd, cwd, env_i = commands[f"cross-check-{i}"]
        assert cmd[1].endswith("relabel_cifar.py") and cmd[cmd.index("--epochs") + 1] == "200"
        assert env_i["LEDGER_SEED"] == str(i) and cwd == commands["official-recover"][1]
        relabel_shim = (Path(env_i["PYTHONPATH"].split(os.pathsep)[0]) / "sitecustomize.py").read_text()
        assert "_datasets.CIFAR100" in relabel_shim and "_c3_factory" in relabel_shim  # test set, conv3
    assert "eval=kd" in commands["score-official"][0]
    entry = check_entry(json.loads(path.read_text()))
    assert entry["cross_check"]["accuracies_official_evaluator"] == pytest.approx([33.0, 33.1, 33.2, 33.3, 33.4])
    assert entry["wall_time_ratio"] == pytest.approx(0.4) and entry["method"] == "sre2l"
    assert any("class count" in a for a in entry["official"]["adaptations"])
