"""Launcher configs (conf/hydra/launcher/) stay in step with their plugins, and a joblib sweep runs jobs in parallel."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dd_bench.app.cli import main
from dd_bench.results import load_records

LAUNCHERS = Path(__file__).resolve().parent.parent / "conf" / "hydra" / "launcher"
PLUGIN_CONFIGS = {
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher.config", "SlurmQueueConf"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher.config", "LocalQueueConf"),
    "joblib": ("hydra_plugins.hydra_joblib_launcher.config", "JobLibLauncherConf"),
}


@pytest.mark.parametrize("name", sorted(PLUGIN_CONFIGS))
def test_launcher_file_lists_every_plugin_key(name):
    module, cls = PLUGIN_CONFIGS[name]
    schema = getattr(pytest.importorskip(module, reason=f"{name} plugin not installed (pip install 'dd-bench[test]')"),
                     cls)
    ours = yaml.safe_load((LAUNCHERS / f"{name}.yaml").read_text())
    assert set(ours) == {f.name for f in dataclasses.fields(schema)}
    assert ours["_target_"] == next(f.default for f in dataclasses.fields(schema) if f.name == "_target_")


def test_slurm_resources_follow_the_device(compose_cfg):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    from dd_bench.app.compose import compose_config

    GlobalHydra.instance().clear()
    compose_config("run", [])  # registers the resolvers
    for device, gpus, cpus in (("cpu", None, 16), ("cuda", 1, 8)):
        GlobalHydra.instance().clear()
        from hydra import initialize_config_dir

        from dd_bench.resources import CONF_DIR

        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("run", overrides=["hydra/launcher=submitit_slurm", f"device={device}"],
                          return_hydra_config=True)
        assert cfg.hydra.launcher.gpus_per_node == gpus and cfg.hydra.launcher.cpus_per_task == cpus
    GlobalHydra.instance().clear()


def test_a_missing_launcher_plugin_names_the_extra(monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins") else real_find_spec(name, *a))
    assert main(["run", "-m", "hydra/launcher=joblib", "method=random"]) == 2
    assert "pip install 'dd-bench[joblib]'" in capsys.readouterr().err


def test_joblib_sweep_runs_both_jobs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    code = main(["run", "-m", "hydra/launcher=joblib", "method=random,herding", "eval=quick",
                 "eval.epochs=1", "models=[mlp]", "seeds=1", "references=[]", f"results={tmp_path}",
                 "progress=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert code == 0
    assert sorted(r.method for r in load_records(tmp_path)) == ["herding", "random"]
