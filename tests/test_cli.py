"""CLI and configs: conf/ matches the registries, the composed config is what runs, Hydra's flags keep working,
tasks run in-process, bad input fails clearly and bugs keep their traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dd_bench.app.cli import main, run, split_task
from dd_bench.data import DATASETS
from dd_bench.registry import REGISTRIES, get_registry
from dd_bench.results import load_records

CONF = Path(__file__).resolve().parent.parent / "conf"
EXPERIMENTS = sorted((CONF / "experiment").glob("*.yaml"))


def _stems(group: str) -> set[str]:
    return {p.stem for p in (CONF / group).glob("*.yaml")}


GROUPED = [name for name, home in REGISTRIES.items() if home.group]


@pytest.mark.parametrize("name", GROUPED)
def test_config_files_match_the_registries(name):
    assert _stems(REGISTRIES[name].group) == set(get_registry(name).list())


def test_every_config_group_of_components_has_its_registry():
    assert {REGISTRIES[name].group for name in GROUPED} == {"method", "dataset", "eval"}
    assert _stems("logger") == {"none", "wandb"}  # no registry: the logger is chosen in tasks.py


@pytest.mark.parametrize("group,option", [(g, o) for g in ("method", "dataset", "eval", "logger")
                                          for o in sorted(_stems(g))])
def test_every_option_composes(compose_cfg, group, option):
    cfg = compose_cfg(f"{group}={option}")
    assert cfg[group].name == option


def _defaults_override(raw: dict, group: str) -> str:
    for entry in raw["defaults"]:
        if isinstance(entry, dict) and f"override /{group}" in entry:
            return entry[f"override /{group}"]
    raise AssertionError(f"no override /{group}")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_composes_to_its_own_values(compose_cfg, path):
    """The composed config carries the experiment's ipc, models, seeds, dataset, method, protocol and options:
    the primary config's defaults (ipc 1, models [convnet], seeds 5) never overwrite them."""
    raw = yaml.safe_load(path.read_text())
    cfg = compose_cfg("task=run", f"experiment={path.stem}")
    assert cfg.experiment == raw["experiment"] == path.stem
    assert cfg.ipc == raw["ipc"] and list(cfg.models) == raw["models"] and cfg.seeds == raw["seeds"]
    assert cfg.dataset.name == _defaults_override(raw, "dataset")
    assert cfg.method.name == _defaults_override(raw, "method")
    assert cfg.eval.name == _defaults_override(raw, "eval")
    assert cfg.preset is None  # an experiment is complete: no (method, dataset) preset underneath it
    for key, value in (raw.get("method") or {}).items():
        assert cfg.method[key] == value, (path.stem, key)
    for key, value in (raw.get("dataset") or {}).items():
        assert cfg.dataset[key] == value, (path.stem, key)


def test_presets_compose_inside_hydra_and_the_command_line_wins(compose_cfg):
    cfg = compose_cfg("task=run", "method=dm")
    assert cfg.preset == "dm/digits" and cfg.method.iterations == 100 and cfg.method.batch_real == 64
    cfg = compose_cfg("task=run", "method=dm", "method.iterations=7")
    assert cfg.method.iterations == 7 and cfg.method.batch_real == 64
    cfg = compose_cfg("task=run", "method=dm", "preset=none")
    assert cfg.preset is None and cfg.method.iterations == 20000
    cfg = compose_cfg("task=run", "method=dm", "dataset=cifar10")
    assert cfg.preset is None and cfg.method.iterations == 20000  # no dm/cifar10 preset


def test_every_preset_names_itself():
    for path in (CONF / "preset").glob("*/*.yaml"):
        raw = yaml.safe_load(path.read_text())
        assert raw["preset"] == f"{path.parent.name}/{path.stem}", path
        # A preset sets method keys, and a validation split where the method needs one (CV-DD's priors).
        assert {"preset", "method"} <= set(raw) <= {"preset", "method", "validation"}, path


def test_cfg_job_and_the_saved_config_show_what_ran(tmp_path, capsys):
    """--cfg job prints the preset's values; the run's .hydra/config.yaml, meta.json and record agree."""
    assert main(["distill", "method=dm", "method.iterations=2", "--cfg", "job"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["method"]["batch_real"] == 64 and shown["method"]["iterations"] == 2
    assert shown["preset"] == "dm/digits"
    hydra_dir = tmp_path / "hydra"
    assert main(["run", "method=dm", "method.iterations=2", "eval=quick", "eval.epochs=1", "models=[mlp]",
                 "seeds=1", "references=[]", f"results={tmp_path}", "progress=false",
                 f"hydra.run.dir={hydra_dir}"]) == 0
    saved = yaml.safe_load((hydra_dir / ".hydra" / "config.yaml").read_text())
    assert saved["method"] == {**shown["method"], "iterations": 2}
    (record,) = load_records(tmp_path)
    assert record.config["method"] == saved["method"] and record.preset == "dm/digits"
    meta = json.loads(next((tmp_path / "synsets").glob("dm-*/meta.json")).read_text())
    assert meta["config"]["batch_real"] == 64 and meta["config"]["iterations"] == 2
    assert meta["set_hash"] == record.set_hash


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--hydra-help"], ["--info"], ["--info", "defaults"],
                                  ["run", "--cfg", "job"], ["--cfg", "hydra", "evaluate"], ["-sc", "install=bash"]])
def test_hydra_flags_work(args, capsys):
    assert main(args) == 0, capsys.readouterr()
    assert capsys.readouterr().out.strip()


def test_help_lists_registries_and_tasks(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("dm", "digits", "convnet", "mtt", "quick", "leaderboard", "resnet18_cifar", "hydra/launcher"):
        assert word in out


def test_the_task_word_may_stand_anywhere():
    assert split_task(["-m", "run", "method=dm,random"]) == ("run", ["-m", "method=dm,random"])
    assert split_task(["--cfg", "job", "distill"]) == ("distill", ["--cfg", "job"])
    assert split_task(["--info", "defaults", "run"]) == ("run", ["--info", "defaults"])
    assert split_task(["--info", "run"]) == ("run", ["--info"])
    assert split_task(["~preset", "ipc=2"]) == (None, ["~preset", "ipc=2"])


def test_shell_completion_after_the_task_word(monkeypatch, capsys):
    monkeypatch.setenv("COMP_LINE", "dd-bench run method=")
    assert main(["-sc", "query=bash"]) == 0
    out = capsys.readouterr().out.split()
    assert "method=dm" in out and "method=mtt" in out


def test_distill_evaluate_leaderboard(compose_cfg, tmp_path):
    out = tmp_path / "set"
    run(compose_cfg("task=distill", "method=dm", "method.iterations=3", "method.batch_real=16", f"out={out}"))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["method"] == "dm" and meta["preset"] == "dm/digits" and (out / "preview.png").is_file()
    assert meta["config"]["iterations"] == 3 and meta["set_hash"]
    run(compose_cfg("task=evaluate", f"synset={out}", "eval=quick", "eval.epochs=4", "models=[mlp]", "seeds=2"))
    records = load_records(tmp_path / "runs")
    kinds = sorted((r.kind, r.method) for r in records)
    assert ("evaluation", "dm") in kinds and ("reference", "random_subset") in kinds
    evaluation = next(r for r in records if r.kind == "evaluation")
    assert evaluation.protocol == "quick+custom" and not evaluation.ranked and len(evaluation.seeds) == 2
    assert evaluation.synset_sha256 == meta["tensors_sha256"] and evaluation.preset == "dm/digits"
    assert evaluation.set_hash == meta["set_hash"] and evaluation.record_id == evaluation.record_hash[:16]
    result = run(compose_cfg("task=leaderboard"))
    assert Path(result["csv"]).is_file() and "dm" in Path(result["markdown"]).read_text()


def test_main_job_end_to_end_on_a_tiny_setting(tmp_path, capsys):
    code = main([f"results={tmp_path}", "progress=false", "demo.models=[mlp]", "demo.seeds=2",
                 "demo.methods=[random,dm]", "hydra.run.dir=" + str(tmp_path / "hydra")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dm" in out and "random subset (ref)" in out and "demo finished in" in out
    assert "full data (ref)" in out
    assert (tmp_path / "leaderboard.md").is_file() and (tmp_path / "leaderboard.csv").is_file()
    (dm_set,) = (tmp_path / "synsets").glob("dm-digits-ipc1-s0-*")
    assert (dm_set / "preview.png").is_file()
    assert {r.method for r in load_records(tmp_path)} == {"dm", "random", "random_subset", "full_data"}
    (full,) = [r for r in load_records(tmp_path) if r.method == "full_data"]
    assert full.model == "mlp" and "recorded" in full.extra["recorded_reference"]  # shipped, not recomputed
    # The demo's job is exactly `dd-bench run method=dm ...`: its record carries that composed config.
    dm = next(r for r in load_records(tmp_path) if r.method == "dm")
    assert dm.config["task"] == "run" and dm.config["method"]["batch_real"] == 64 and dm.preset == "dm/digits"
    # A second demo reuses every set and record of the first.
    assert main([f"results={tmp_path}", "progress=false", "demo.models=[mlp]", "demo.seeds=2",
                 "demo.methods=[random,dm]", "hydra.run.dir=" + str(tmp_path / "hydra2")]) == 0
    assert "kept" in capsys.readouterr().out


def _fails(args: list[str], tmp_path: Path, capsys) -> str:
    code = main([*args, f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code != 0, text
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("args,expected", [
    (["distill", "dataset=nope"], "dataset=nope: Unknown dataset 'nope'; available: cifar10, cifar100, digits"),
    (["distill", "method=nope"], "method=nope: Unknown method 'nope'; available: cvdd, datm, dc, dm"),
    (["evaluate", "eval=nope"], "eval=nope: Unknown protocol 'nope'; available: dc, kd"),
    (["distill", "nope=1"], "nope"),
    (["distill", "method.nope=1"], "method.nope: method 'dm' has no option 'nope'; its options: batch_real,"),
    (["run", "method.iterashuns=5"], "method 'dm' has no option 'iterashuns' (did you mean iterations?)"),
    (["run", "experiment=dc_fashion_mnist_ipc1", "method.distanse=mse"],
     "method 'dc' has no option 'distanse' (did you mean distance?)"),
    (["distill", "ipc=abc"], "ipc=abc: ipc is an integer (e.g. ipc=1)"),
    (["run", "models=convnet"], "models=convnet: models is a list; write models=[convnet]"),
    (["demo", "demo.ipcs=1"], "demo.ipcs=1: demo.ipcs is a list; write demo.ipcs=[1]"),
    (["run", "seeds=0"], "seeds=0: the number of evaluation networks, an integer >= 1"),
    (["distill", "method.init=bogus"], "error: method.init=bogus: Unknown init 'bogus'; available: real, noise"),
    (["distill", "method=mtt", "method.grad_mode=exact"],
     "Unknown grad_mode 'exact'; available: auto, recompute, unrolled, tesla"),
    (["evaluate", "eval.augment=flip"],
     "Unknown augment 'flip'; available: dsa, dsa_fyi, none, dc_crop_scale_rotate, dc_crop_noise"),
    (["distill", "logger=wandb", "logger.mode=loud"], "Unknown mode 'loud'; available: online, offline, disabled"),
    (["run", "experiment=dc_fashion_mnist_ipc1", "method.distance=ours,foo"],
     "method.distance=ours,foo: Unknown distance 'foo'; available: ours, mse, cos"),
    (["distill", "method.model=nope"], "Unknown model 'nope' for method 'dm'"),
    (["run", "models=[nope]"], "Unknown model 'nope'; available: alexnet"),
    (["distill", "ipc=500"], "larger than the smallest class"),
    (["distill", "device=tpu"], "Unknown device 'tpu'"),
    (["distill", "dataset=cifar10", "dataset.root=/nonexistent/cifar"], "dataset.root="),
    (["frobnicate"], "Unknown task 'frobnicate'; available: demo, distill"),
    (["evaluate"], "evaluate needs synset=DIR"),
    (["run", "-m", "hydra/launcher=nope"], "Could not find 'hydra/launcher/nope'"),
    (["run", "method=rded", "label_source=bogus"],
     "Unknown label source 'bogus'; available: auto, distance, fkd, fkd_int8, fkd_top<k>, fkd_top<k>_renorm, "
     "hard"),
    (["relabel"], "relabel needs synset=DIR"),
    (["distill", "method=rded", "method.teacher=nope"], "Unknown teacher recipe 'nope'; available: cvdd_cifar"),
    (["distill", "method=sre2l", "method.teacher_weights=/nonexistent/t.safetensors"],
     "teacher.weights=/nonexistent/t.safetensors does not exist; expected a convnet_bn state dict for 10 classes"),
])
def test_bad_input_fails_clearly(args, expected, tmp_path, capsys):
    assert expected in _fails(args, tmp_path, capsys)


def test_a_bug_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    import dd_bench.app.tasks

    def broken(cfg, real=None):
        raise KeyError("internal")

    monkeypatch.setattr(dd_bench.app.tasks, "task_distill", broken)
    code = main(["distill", f"results={tmp_path}", "hydra.run.dir=" + str(tmp_path / "hydra")])
    text = "".join(capsys.readouterr())
    assert code == 1 and "Traceback" in text and "KeyError" in text and "this is a bug in dd-bench" in text


def test_corrupted_synset_fails_clearly(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["distill", "method=random", f"out={out}", f"results={tmp_path}", "progress=false",
                 "hydra.run.dir=" + str(tmp_path / "hydra")]) == 0
    tensors = out / "synset.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-3] + b"xyz")
    assert "corrupted" in _fails(["evaluate", f"synset={out}"], tmp_path, capsys)


def test_published_numbers_use_registered_names():
    import pandas as pd

    from dd_bench.models import MODELS

    published = pd.read_csv(Path(__file__).resolve().parent.parent / "baselines" / "published.csv")
    assert set(published["model"]) <= set(MODELS.list())
    assert set(published["dataset"]) <= set(DATASETS.list())


def test_wandb_missing_fails_before_work(compose_cfg, monkeypatch):
    import sys

    from dd_bench.errors import UserError

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(UserError, match="pip install 'dd-bench\\[wandb\\]'"):
        run(compose_cfg("task=distill", "method=random", "logger=wandb"))


def test_validation_split_is_held_out_of_distillation(compose_cfg, tmp_path):
    out = tmp_path / "set"
    run(compose_cfg("task=distill", "method=random", "ipc=3", "validation=0.1", f"out={out}"))
    meta = json.loads((out / "meta.json").read_text())
    held_out = set(meta["provenance"]["validation"]["indices"])
    assert 130 <= len(held_out) <= 150  # about 10% of each of the 1,437 training images (rounded per class)
    from dd_bench.synset import load_synset

    chosen = set(load_synset(out).extras["source_indices"].tolist())
    assert chosen.isdisjoint(held_out)


def test_zca_with_a_validation_split_is_fitted_without_it_and_the_evaluator_uses_that_matrix(compose_cfg, tmp_path):
    from dd_bench.data import load_dataset
    from dd_bench.synset import read_meta

    out = tmp_path / "set"
    result = run(compose_cfg("task=run", "method=dm", "method.iterations=2", "dataset.zca=true", "validation=0.1",
                             f"out={out}", "eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1",
                             "references=[]"))
    meta = read_meta(out)
    full = load_dataset("digits", zca=True, progress=False)
    assert meta["image_space"]["space"] == "zca" and meta["image_space"]["sha256"] != full.zca.sha256
    assert result["evaluated"] == 1  # scored: the evaluator refitted the set's own matrix
    from dd_bench.eval import evaluate, get_protocol
    from dd_bench.synset import SynsetError, load_synset

    with pytest.raises(SynsetError, match="different ZCA matrix"):  # the full-training-set fit is another space
        evaluate(load_synset(out), real=full, protocol=get_protocol("quick"), models=["mlp"], seeds=[0],
                 progress=False)


@pytest.mark.parametrize("task", ["leaderboard", "report", "export", "import"])
def test_read_only_tasks_write_no_hydra_folders(task, tmp_path, monkeypatch, capsys):
    """A read-only task (here failing on a mistyped results= or a missing input) leaves the disk as it was: no
    hydra/ run folder, no .hydra/ config copy, no cli.log, not even the mistyped results directory."""
    monkeypatch.chdir(tmp_path)
    code = main([task, f"results={tmp_path / 'mistyped'}", "progress=false"])
    assert code != 0 and "Traceback" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_progress_bars_only_on_a_terminal_unless_forced(compose_cfg, monkeypatch):
    import sys

    from dd_bench.app.tasks import run

    seen = []
    monkeypatch.setattr("dd_bench.app.tasks.task_leaderboard", lambda cfg: seen.append(cfg.progress) or {})
    for tty, override, expected in ((False, [], False), (True, [], True), (False, ["progress=true"], True),
                                    (True, ["progress=false"], False)):
        monkeypatch.setattr(sys.stderr, "isatty", lambda tty=tty: tty)
        cfg = compose_cfg("task=leaderboard", *override)
        if not override:
            cfg.progress = None  # the default: compose_cfg turns bars off for the tests
        run(cfg)
        assert seen[-1] is expected, (tty, override)
