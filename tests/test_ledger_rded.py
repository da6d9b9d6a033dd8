"""The RDED pair of the fidelity ledger (scripts/ledger/rded.py) and what the decoupled pairs share
(scripts/ledger/teacher.py): the teacher's state dict in each repository's names, the normalisation fold, one budget
table for both sides, the official run folder, the cross-check's reading and the entry, all without running anything."""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# What LINs-lab/RDED@3f6453d scripts/cifar10_10ipc_conv3_to_conv3_cr5.sh passes (the flags the budget table covers).
OFFICIAL_SCRIPT = {"--factor": 1, "--num-crop": 5, "--mipc": 300, "--ipc": 10, "--re-epochs": 300}


def _ledger(name: str):
    """A scripts/ledger module, imported by name as pair.py imports it (they import harness and teacher by name)."""
    if str(ROOT / "scripts" / "ledger") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts" / "ledger"))
    return importlib.import_module(name)


def _tiny_convnet_bn(depth: int = 2):
    from dd_bench.models import create_model

    torch.manual_seed(0)
    net = create_model("convnet_bn", num_classes=10, in_channels=3, image_size=(8, 8), width=4, depth=depth).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
    return net


def test_the_teacher_state_round_trips_through_rdeds_and_sre2ls_names():
    t = _ledger("teacher")
    state = _tiny_convnet_bn().state_dict()
    rded = t.to_rded_state(state)
    # RDED's ConvNet (synthesize/models.py): ModuleDict layers {conv, norm, act, pool} of ModuleLists, classifier
    assert sorted(rded) == sorted(
        [f"layers.conv.{d}.{p}" for d in range(2) for p in ("weight", "bias")]
        + [f"layers.norm.{d}.{p}" for d in range(2) for p in ("weight", "bias", "running_mean", "running_var",
                                                              "num_batches_tracked")]
        + ["classifier.weight", "classifier.bias"])
    back = t.from_rded_state(rded)
    assert list(back) == list(state) and all(torch.equal(back[k], state[k]) for k in state)
    sre2l = t.to_sre2l_state(state)
    assert set(sre2l) == {f"module.{k}" for k in state}  # nn.DataParallel's names: what the scripts load into
    wrapped = torch.nn.DataParallel(_tiny_convnet_bn())
    wrapped.load_state_dict(sre2l)  # strict
    with pytest.raises(SystemExit, match="no parameter of dd-bench's convnet_bn"):
        t.to_rded_state({"features.2.weight": torch.zeros(1)})  # a ReLU holds nothing
    with pytest.raises(SystemExit, match="no parameter of RDED's ConvNet"):
        t.from_rded_state({"layers.act.0.weight": torch.zeros(1)})


def test_the_fold_computes_the_same_function_of_the_pixels_away_from_the_padded_border():
    t = _ledger("teacher")
    from dd_bench.data.catalog import CIFAR_MEAN, CIFAR_STD

    net = _tiny_convnet_bn()
    folded = t.fold_input_normalisation(net.state_dict(), mean_from=CIFAR_MEAN, std_from=CIFAR_STD,
                                        mean_to=t.IMAGENET_MEAN, std_to=t.IMAGENET_STD)
    other = _tiny_convnet_bn()
    other.load_state_dict(folded)
    pixels = torch.rand(3, 3, 8, 8)
    space = lambda m, s: (pixels - torch.tensor(m).view(1, 3, 1, 1)) / torch.tensor(s).view(1, 3, 1, 1)  # noqa: E731
    ours, theirs = net.features[0](space(CIFAR_MEAN, CIFAR_STD)), other.features[0](space(t.IMAGENET_MEAN,
                                                                                          t.IMAGENET_STD))
    assert torch.allclose(ours[..., 1:-1, 1:-1], theirs[..., 1:-1, 1:-1], atol=1e-5)
    assert not torch.allclose(ours, theirs, atol=1e-5)  # the zero padding is another pixel value in each space
    assert all(torch.equal(folded[k], v) for k, v in net.state_dict().items() if not k.startswith("features.0."))


def test_each_rded_budget_value_reaches_both_sides_unchanged(compose_cfg):
    rded, t = _ledger("rded"), _ledger("teacher")
    for pair in [*rded.PAIRS.values(), *map(rded.smoke, rded.PAIRS.values())]:
        assert pair.nets >= 5 and pair.mipc == pair.family.per_class  # both sides draw from the same pool
        assert pair.eval_epochs > 5  # RDED validates only after 80% of --re-epochs: at least the last epoch
        assert pair.ipc in (1, 10, 50)  # the IPCs argument.py sizes batches for
        flags = pair.official_flags()
        official = {flags[i]: flags[i + 1] for i in range(0, len(flags), 2)}
        assert {k: official[k] for k in ("--subset", "--arch-name", "--stud-name")} == {
            "--subset": "cifar10", "--arch-name": "conv3", "--stud-name": "conv3"}
        cfg = compose_cfg("task=run", f"experiment={rded.EXPERIMENT}", f"method.teacher={t.ARCH_RECIPE}",
                          "method.teacher_weights=/t/conv3.safetensors", "models=[convnet_bn]",
                          *pair.ddbench_overrides(), f"seeds={pair.nets}", "references=[]")
        for field, flag, key in rded.BUDGET_KEYS:
            composed = {"ipc": cfg.ipc, "eval.epochs": cfg.eval.epochs}.get(key) or cfg.method[key.split(".")[1]]
            assert int(official[flag]) == composed == getattr(pair, field), (pair.name, field)
        assert cfg.eval.name == "kd-rded" and list(cfg.models) == ["convnet_bn"] and cfg.seeds == pair.nets
        assert cfg.method.teacher == t.ARCH_RECIPE and cfg.image_store == "jpeg" and cfg.jpeg_quality == 75
        assert pair.exp_name() == (f"cifar10_conv3_f{pair.factor}_mipc{pair.mipc}_ipc{pair.ipc}_cr{pair.num_crop}")


def test_the_rded_values_are_the_official_scripts_but_the_reduced_ones():
    rded = _ledger("rded")
    pair = rded.PAIRS["rded-cifar10-ipc10"]
    reduced = dict(pair.reduced)
    assert reduced == {"eval_epochs": 300} and pair.eval_epochs <= 300
    for field, flag, _ in rded.BUDGET_KEYS:
        assert reduced.get(field, getattr(pair, field)) == OFFICIAL_SCRIPT[flag], field


def test_the_conv3_recipe_names_rdeds_observer_architecture():
    t = _ledger("teacher")
    from dd_bench.teachers import get_recipe

    arch = get_recipe(t.ARCH_RECIPE)
    assert (arch.model, dict(arch.model_kwargs)) == ("convnet_bn", {"width": 128, "depth": 3})
    ledger = t.teacher_recipe(10)
    base = get_recipe("sre2l_cifar")
    assert (ledger.model, ledger.epochs, ledger.lr, ledger.batch_size, ledger.schedule, ledger.augment) == \
        ("convnet_bn", 10, base.lr, base.batch_size, base.schedule, base.augment)
    assert t.FAMILY.teacher_full_train and not t.SMOKE_FAMILY.teacher_full_train


def test_the_official_run_folder_names_rdeds_class_folders_after_the_tree(tmp_path):
    rded = _ledger("rded")
    for split in ("train", "test"):
        for i, name in enumerate(("airplane", "automobile")):
            (tmp_path / "tree" / split / f"{i:03d}_{name}").mkdir(parents=True)
    (tmp_path / "conv3.pth").write_bytes(b"x")
    run = rded.official_run_dir(tmp_path / "run", tree=tmp_path / "tree", teacher_file=tmp_path / "conv3.pth")
    rded.official_run_dir(tmp_path / "run", tree=tmp_path / "tree", teacher_file=tmp_path / "conv3.pth")  # again
    assert (run / "data/cifar10/train/00001").resolve() == (tmp_path / "tree/train/001_automobile").resolve()
    assert (run / "data/cifar10/val/00000").resolve() == (tmp_path / "tree/test/000_airplane").resolve()
    assert (run / "data/pretrain_models/cifar10_conv3.pth").read_bytes() == b"x"
    t = _ledger("teacher")
    assert t.class_names_file(tmp_path / "tree", tmp_path / "c.txt").read_text() == "000_airplane\n001_automobile\n"


def test_the_cross_check_reads_each_networks_last_and_best_test():
    rded = _ledger("rded")
    cross = {"runs": [{"seed": 0, "tests": [[169, 40.0], [179, 43.5], [199, 42.0]]},
                      {"seed": 1, "tests": [[169, 41.0], [199, 44.0]]}]}
    assert rded.validation_scores(cross, epochs=200) == {"final": [42.0, 44.0], "best": [43.5, 44.0]}
    with pytest.raises(SystemExit, match="last at epoch 199, not 299"):
        rded.validation_scores(cross, epochs=300)


def test_the_rded_adaptations_are_named_shim_parts():
    rded, shims = _ledger("rded"), _ledger("shims")
    for name in ("seed", *rded.SHIM):
        assert name in shims.SHIM_PARTS and name in shims.ADAPTATION_NOTES
    assert len(rded.RUN_TIME_NOTES) == 4 and any("fold" in n for n in rded.RUN_TIME_NOTES)


def _family(tmp_path: Path) -> dict:
    tree = tmp_path / "tree"
    for split in ("train", "test"):
        for i, name in enumerate(("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                  "truck")):
            (tree / split / f"{i:03d}_{name}").mkdir(parents=True, exist_ok=True)
    files = {k: tmp_path / "teacher" / f for k, f in (("ddbench", "conv3.safetensors"), ("rded", "c.pth"),
                                                       ("sre2l", "s.pth"))}
    for f in files.values():
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"w")
    return {"folder": tmp_path, "tree": tree, "files": files,
            "subset": {"per_class": 300, "seed": 0, "num_images": 3000, "indices_sha256": "ab" * 32, "test": "full",
                       "test_images": 10000, "data_fingerprint": "f" * 16},
            "teacher": {"recipe": {"model": "convnet_bn"}, "derived_from": "sre2l_cifar", "key": "k",
                        "train_images": 50000, "train_seconds": 1.0, "test_accuracy": {"ddbench_space": 80.0},
                        "fold": {"prediction_agreement": 99.9}, "command": "python teacher.py _teacher",
                        "wall_seconds": 2.0}}


def fake_record(accuracies: list[float], synset: str = "/set") -> types.SimpleNamespace:
    return types.SimpleNamespace(accuracies=accuracies, distill_seconds=40.0, eval_seconds=300.0, git_sha="1" * 40,
                                 set_hash="s", record_hash="r", synset=synset,
                                 extra={"best_during_training": {"accuracies": [a + 1 for a in accuracies]}})


def test_an_rded_pair_hands_its_budget_to_every_step_and_writes_a_valid_entry(tmp_path, monkeypatch):
    """Steps stubbed: the commands each side gets, and the entry from their records (check_entry passes)."""
    rded = _ledger("rded")
    from dd_bench.results.ledger import check_entry, render_markdown

    pair = rded.PAIRS["rded-cifar10-ipc10"]
    commands = {}

    def fake_step(work, name, command, *, cwd=None, env=None):
        commands[name] = (command, cwd, env)
        if name == "cross-check":
            runs = [{"seed": i, "tests": [[169, 30.0], [199, 31.0 + 0.1 * i]], "seconds": 100.0} for i in range(5)]
            Path(command[3]).write_text(json.dumps({"runs": runs, "re_batch_size": 50, "workers": 4,
                                                    "temperature": 20, "adamw_lr": 0.001}))
        if name == "ddbench-distill":  # dd-bench distill writes its set under results=
            results = Path(next(a for a in command if a.startswith("results=")).split("=", 1)[1])
            (results / "synsets" / "ours").mkdir(parents=True)
            (results / "synsets" / "ours" / "meta.json").write_text("{}")
        wall = 40.0 if name == "ddbench-distill" else 50.0
        return {"wall_seconds": wall, "log": str(work / f"{name}.log"), "command": " ".join(map(str, command))}

    records = {"ddbench": fake_record([31.0, 31.4, 30.8, 31.2, 31.1]),
               "official-scored": fake_record([31.2, 30.9, 31.3, 31.0, 31.1])}
    for module in (rded, rded.decoupled):
        monkeypatch.setattr(module, "run_step", fake_step)
        monkeypatch.setattr(module, "only_record", lambda results: records[Path(results).name])
    monkeypatch.setattr(rded, "git_commit", lambda path: "0" * 40)
    monkeypatch.setattr(rded.decoupled, "prepare_family", lambda family, data, work: _family(tmp_path))
    path = rded.run(pair, official=tmp_path / "RDED", data=tmp_path / "data", work=tmp_path / "w", out=tmp_path)

    ours, ours_score = commands["ddbench-distill"][0], commands["ddbench-score"][0]
    assert "distill" in ours and "experiment=rded_cifar10_ipc10" in ours
    assert "method.mipc=300" in ours and "method.num_crop=5" in ours
    assert "models=[convnet_bn]" in ours_score and "seeds=5" in ours_score and "eval.epochs=200" in ours_score
    assert f"method.teacher_weights={tmp_path / 'teacher' / 'conv3.safetensors'}" in ours
    synth, cross = commands["official-distill"][0], commands["cross-check"][0]
    assert synth[synth.index("--mipc") + 1] == cross[cross.index("--mipc") + 1] == "300"
    assert cross[cross.index("--re-epochs") + 1] == "200" and cross[4] == "5"
    assert commands["official-distill"][1] == commands["cross-check"][1]  # one run folder: ./exp is shared
    shim = Path(commands["official-distill"][2]["PYTHONPATH"], "sitecustomize.py").read_text()
    assert "_randn_cpu" in shim and "_cuda_or_copy" in shim and "LEDGER_SEED" in shim  # cuda_on_cpu, cuda_copy
    score = commands["score-official"][0]
    assert "eval=kd-rded" in score and "eval.epochs=200" in score and "models=[convnet_bn]" in score
    same = lambda cmd: [a for a in cmd if not a.startswith(("synset=", "results="))]  # noqa: E731
    assert same(score) == same(ours_score)  # both sets are scored by one command
    assert any(a.startswith("classes=") for a in commands["import-official"][0])
    attach = commands["attach-labels"][0]
    like = attach[attach.index("--like") + 1]
    assert like == str(tmp_path / "w" / pair.family.name / pair.name / "ddbench" / "synsets" / "ours")
    assert attach[2] == "_attach"  # dd-bench's set's labels
    entry = check_entry(json.loads(path.read_text()))
    assert entry["cross_check"]["accuracies_official_evaluator"] == pytest.approx([31.0, 31.1, 31.2, 31.3, 31.4])
    assert entry["wall_time_ratio"] == pytest.approx(40.0 / 50.0) and entry["budget"]["eval_epochs"] == 200
    assert entry["recipe"]["reduced_from_official"] == {"eval_epochs": 300}
    assert "| rded-cifar10-ipc10 | rded | cifar10, IPC 10 |" in render_markdown([entry])


def test_the_teacher_step_writes_one_tensor_set_three_ways(tmp_path, monkeypatch):
    """train_teacher with the data and the trainer stubbed: the three files hold the same teacher, and teacher.json
    its accuracy in each space (the fold keeps the predictions)."""
    t = _ledger("teacher")
    from safetensors.torch import load_file

    import dd_bench.data
    import dd_bench.teachers
    from dd_bench.data.catalog import CIFAR_MEAN, CIFAR_STD
    from dd_bench.models import create_model

    torch.manual_seed(0)
    net = create_model("convnet_bn", num_classes=10, in_channels=3, image_size=(32, 32), width=128, depth=3).eval()
    mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        labels = net((images.float() / 255 - mean) / std).argmax(1)  # the teacher is right on every image
    real = types.SimpleNamespace(train_labels=torch.zeros(7), class_names=[str(i) for i in range(10)],
                                 test_images=images, test_labels=labels,
                                 to_model_space=lambda x: (x.float() / 255 - mean) / std)
    trained = types.SimpleNamespace(module=net, key="k" * 24, extra={"train_seconds": 3.0})
    monkeypatch.setattr(dd_bench.data, "load_dataset", lambda name, root, progress: real)
    monkeypatch.setattr(dd_bench.teachers, "get_teacher", lambda real, recipe, cache_dir, progress: trained)
    info = t.train_teacher(root=tmp_path, tree=tmp_path, epochs=3, out=tmp_path)
    state = net.state_dict()
    ours = load_file(str(tmp_path / "conv3.safetensors"))
    assert all(torch.equal(ours[k], state[k]) for k in state)
    rded = torch.load(tmp_path / "cifar10_conv3.pth", weights_only=True)["model"]
    assert set(rded) == set(t.to_rded_state(state)) and torch.equal(rded["classifier.weight"],
                                                                     state["classifier.weight"])
    sre2l = torch.load(tmp_path / "sre2l_conv3.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(sre2l[f"module.{k}"], state[k]) for k in state)
    assert info["recipe"]["epochs"] == 3 and info["recipe"]["model"] == "convnet_bn" and info["train_images"] == 7
    acc = info["test_accuracy"]
    assert acc["ddbench_space"] == 100.0 and acc["rded_space_folded"] >= 95.0
    assert info["fold"]["prediction_agreement"] >= 95.0
    assert json.loads((tmp_path / "teacher.json").read_text())["key"] == "k" * 24


def test_the_rded_drivers_call_the_checkouts_functions_with_the_flags(tmp_path):
    """SYNTH_DRIVER and VALIDATE_DRIVER on a stand-in checkout (argument.py parses sys.argv at import, as RDED's;
    validation.main.main_worker calls the module's validate; main seeds from args.seed)."""
    import subprocess

    rded = _ledger("rded")
    official = tmp_path / "RDED"
    (official / "synthesize").mkdir(parents=True)
    (official / "validation").mkdir()
    (official / "argument.py").write_text(
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--re-epochs', type=int)\n"
        "args = p.parse_args()\nargs.seed, args.re_batch_size, args.workers, args.temperature, args.adamw_lr = "
        "42, 50, 4, 20, 0.001\n")
    (official / "synthesize" / "main.py").write_text(
        "def main(args):\n    open('synth.txt', 'w').write(str(args.re_epochs))\n")
    (official / "validation" / "main.py").write_text(
        "def validate(model, args, epoch=None):\n    return 10.0 * args.seed + epoch\n"
        "def main(args):\n    for epoch in range(args.re_epochs):\n"
        "        if epoch >= args.re_epochs - 2:\n            validate(None, args, epoch)\n")
    for name, source in (("synth.py", rded.SYNTH_DRIVER), ("validate.py", rded.VALIDATE_DRIVER)):
        (tmp_path / name).write_text(source)
    run = lambda *cmd: subprocess.run([sys.executable, *map(str, cmd)], cwd=tmp_path, capture_output=True,  # noqa: E731
                                      text=True, timeout=60)
    assert run(tmp_path / "synth.py", official, "--re-epochs", "6").returncode == 0
    assert (tmp_path / "synth.txt").read_text() == "6"
    done = run(tmp_path / "validate.py", official, tmp_path / "cross.json", 2, "--re-epochs", "6")
    assert done.returncode == 0, done.stderr
    cross = json.loads((tmp_path / "cross.json").read_text())
    assert [r["tests"] for r in cross["runs"]] == [[[4, 4.0], [5, 5.0]], [[4, 14.0], [5, 15.0]]]
    assert rded.validation_scores(cross, epochs=6) == {"final": [5.0, 15.0], "best": [5.0, 15.0]}
    assert cross["re_batch_size"] == 50 and cross["workers"] == 4
