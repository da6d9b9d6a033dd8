"""CLI and configs: conf/ matches the registries, tasks run in-process, bad input fails clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dd_bench.cli import main, run
from dd_bench.data import DATASETS
from dd_bench.eval import PROTOCOLS
from dd_bench.methods import METHODS
from dd_bench.presets import apply_preset, find_preset
from dd_bench.results import load_records

CONF = Path(__file__).resolve().parent.parent / "conf"


def _stems(group: str) -> set[str]:
    return {p.stem for p in (CONF / group).glob("*.yaml")}


def test_config_files_match_the_registries():
    assert _stems("method") == set(METHODS.list())
    assert _stems("dataset") == set(DATASETS.list())
    assert _stems("eval") == set(PROTOCOLS.list())
    assert _stems("logger") == {"none", "wandb"}


@pytest.mark.parametrize("group,option", [(g, o) for g in ("method", "dataset", "eval", "logger")
                                          for o in sorted(_stems(g))])
def test_every_option_composes(compose_cfg, group, option):
    cfg = compose_cfg(f"{group}={option}")
    assert cfg[group].name == option


def test_every_experiment_composes(compose_cfg):
    for stem in sorted(_stems("experiment")):
        cfg = compose_cfg(f"experiment={stem}")
        assert cfg.experiment == stem and cfg.method.name in METHODS


def test_presets_apply_and_the_user_wins():
    values, name = find_preset("dm", "digits", 1)
    assert name == "dm/digits/ipc1" and "iterations" in values
    merged = apply_preset({"iterations": 20000, "lr_img": 1.0}, {"iterations": 100}, user_keys=set())
    assert merged == {"iterations": 100, "lr_img": 1.0}
    assert apply_preset({"iterations": 20000}, {"iterations": 100}, user_keys={"iterations"}) == {"iterations": 20000}
    with pytest.raises(ValueError, match="unknown option"):
        apply_preset({"iterations": 1}, {"iters": 2}, set())
    assert find_preset("dm", "cifar10", 1) is None


def test_distill_evaluate_leaderboard(compose_cfg, tmp_path):
    out = tmp_path / "set"
    run(compose_cfg("task=distill", "method=dm", "method.iterations=3", "method.batch_real=16", f"out={out}"))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["method"] == "dm" and meta["preset"] == "dm/digits/ipc1" and (out / "preview.png").is_file()
    assert meta["config"]["iterations"] == 100  # the preset (compose has no command line to win over it)
    run(compose_cfg("task=evaluate", f"synset={out}", "eval=quick", "eval.epochs=4", "models=[mlp]",
                    "seeds=2"))
    records = load_records(tmp_path / "runs")
    kinds = sorted((r.kind, r.method) for r in records)
    assert ("evaluation", "dm") in kinds and ("reference", "random_subset") in kinds
    evaluation = next(r for r in records if r.kind == "evaluation")
    assert evaluation.protocol == "quick+custom" and not evaluation.ranked and len(evaluation.seeds) == 2
    assert evaluation.synset_sha256 == meta["tensors_sha256"] and evaluation.preset == "dm/digits/ipc1"
    result = run(compose_cfg("task=leaderboard"))
    assert Path(result["csv"]).is_file() and "dm" in Path(result["markdown"]).read_text()


def test_main_job_end_to_end_on_a_tiny_setting(tmp_path, capsys):
    code = main([f"results={tmp_path}", "progress=false", "demo.ipcs=[1]", "demo.models=[mlp]", "demo.seeds=2",
                 "demo.methods=[random,dm]", "hydra.run.dir=" + str(tmp_path / "hydra")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "dm" in out and "random_subset (reference)" in out and "full data (reference)" in out
    assert (tmp_path / "leaderboard.md").is_file() and (tmp_path / "leaderboard.csv").is_file()
    assert (tmp_path / "synsets" / "dm-digits-ipc1-s0" / "preview.png").is_file()
    assert {r.method for r in load_records(tmp_path)} == {"dm", "random", "random_subset", "full_data"}


def test_help_lists_registries(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("dm", "digits", "convnet", "mtt", "quick", "leaderboard"):
        assert word in out


def _fails(args: list[str], tmp_path: Path, capsys) -> str:
    code = main([*args, f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code != 0, text
    assert "Traceback" not in text
    return text


@pytest.mark.parametrize("args,expected", [
    (["distill", "dataset=nope"], "Available options in 'dataset'"),
    (["distill", "method=nope"], "Available options in 'method'"),
    (["evaluate", "eval=nope"], "Available options in 'eval'"),
    (["distill", "nope=1"], "nope"),
    (["distill", "method.nope=1"], "Key 'nope' not in"),
    (["distill", "ipc=abc"], "ipc"),
    (["run", "models=[nope]"], "Unknown model 'nope'; available: alexnet"),
    (["distill", "ipc=500"], "larger than the smallest class"),
    (["distill", "dataset=cifar10", "dataset.root=/nonexistent/cifar"], "dataset.root="),
    (["frobnicate"], "Unknown task 'frobnicate'; available: demo, distill"),
    (["evaluate"], "evaluate needs synset=DIR"),
])
def test_bad_input_fails_clearly(args, expected, tmp_path, capsys):
    assert expected in _fails(args, tmp_path, capsys)


def test_corrupted_synset_fails_clearly(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["distill", "method=random", f"out={out}", f"results={tmp_path}", "progress=false",
                 "hydra.run.dir=" + str(tmp_path / "hydra")]) == 0
    tensors = out / "synset.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-3] + b"xyz")
    assert "corrupted" in _fails(["evaluate", f"synset={out}"], tmp_path, capsys)


def test_command_line_options_beat_the_preset(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["distill", "method=dm", "method.iterations=2", "method.batch_real=8", f"out={out}",
                 f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["iterations"] == 2 and meta["config"]["batch_real"] == 8
    assert meta["preset"] == "dm/digits/ipc1"


def test_published_numbers_use_registered_names():
    import pandas as pd

    from dd_bench.models import MODELS

    published = pd.read_csv(Path(__file__).resolve().parent.parent / "baselines" / "published.csv")
    assert set(published["model"]) <= set(MODELS.list())
    assert set(published["dataset"]) <= set(DATASETS.list())


def test_wandb_logger_receives_records(compose_cfg, tmp_path, monkeypatch):
    """logger=wandb: a fake wandb module records what dd-bench sends (no network, no real wandb needed)."""
    import sys
    import types

    calls = {}

    class FakeRun:
        def __init__(self):
            self.summary = {}

        def log(self, data):
            calls["log"] = data

        def finish(self):
            calls["finished"] = True

    def init(**kwargs):
        calls["init"] = kwargs
        calls["run"] = FakeRun()
        return calls["run"]

    fake = types.SimpleNamespace(init=init, Table=lambda columns, data: {"columns": columns, "data": data})
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = tmp_path / "set"
    run(compose_cfg("task=run", "method=random", f"out={out}", "eval=quick", "eval.epochs=2", "models=[mlp]",
                    "seeds=2", "logger=wandb", "logger.mode=disabled"))
    assert calls["init"]["mode"] == "disabled" and calls["init"]["config"]["task"] == "run" and calls["finished"]
    assert "mlp/evaluation/random/acc_mean" in calls["run"].summary
    assert len(calls["log"]["records"]["data"]) == 2  # the evaluation and its random-subset reference


def test_wandb_missing_fails_before_work(compose_cfg, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ValueError, match="pip install 'dd-bench\\[wandb\\]'"):
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


def test_multirun_sweep_writes_one_record_per_job(tmp_path):
    code = main(["run", "-m", "method=random,herding", "eval=quick", "eval.epochs=2", "models=[mlp]", "seeds=2",
                 f"results={tmp_path}", "progress=false", "references=[]",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert code == 0
    assert sorted(r.method for r in load_records(tmp_path)) == ["herding", "random"]
