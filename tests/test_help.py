"""`dd-bench --help` is fast and points the way: no torch imported, a try-first line, a wrapped summary instead of the
4,000-character experiment line, `dd-bench TASK --help` showing that task's keys with the defaults the composed
config has, and the options manifest it reads in step with the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dd_bench.app.cli import main
from dd_bench.app.config_schema import _registry_list
from dd_bench.app.help_manifest import MANIFEST_PATH, build_manifest, manifest_text
from dd_bench.app.help_text import GROUPS, RECORDED_ONLY, TASK_KEYS, WIDTH, _fmt, load_manifest
from dd_bench.registry import REGISTRIES, registry_names

CONF = Path(__file__).resolve().parent.parent / "conf"
HEAVY = ("torch", "torchvision", "numpy", "pandas", "hydra", "omegaconf")


def _help(capsys, *args: str) -> str:
    assert main([*args]) == 0
    return capsys.readouterr().out


def test_the_manifest_is_in_step_with_the_code():
    assert MANIFEST_PATH.read_text(encoding="utf-8") == manifest_text(build_manifest()), (
        "dd_bench/app/help_manifest.json is stale: regenerate it with `python -m dd_bench.app.help_manifest`")


@pytest.mark.parametrize("name", list(REGISTRIES))
def test_every_registry_is_where_its_home_says_help_shows_it(name):
    """The manifest holds each registry's names in the Registries section or as its keys' choices (none for a
    registry users never name), and the help template's resolver lists any registry."""
    manifest = json.loads(MANIFEST_PATH.read_text())
    names = registry_names(name)
    shown = REGISTRIES[name].shown
    assert (manifest["registries"].get(name) == names) == ("registry" in shown)
    assert all(manifest["choices"][key] == names for key in shown if key != "registry")
    assert _registry_list(name) == ", ".join(names)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["run", "--help"], ["export", "--help"],
                                  ["run", "method=mtt", "eval=kd", "--help"]])
def test_printing_help_imports_no_torch(args):
    """The console entry point answers --help before Hydra and the registries: nothing heavy is imported."""
    code = ("import sys\nfrom dd_bench.app.cli import main\ncode = main(sys.argv[1:])\n"
            f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
            "print('HEAVY', heavy, file=sys.stderr)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr.splitlines()[-1]
    assert done.stdout.strip()


def test_global_help_points_the_way(capsys):
    out = _help(capsys, "--help")
    assert "try first: `dd-bench`" in out
    assert "dd-bench TASK --help" in out and "--hydra-help" in out
    manifest = load_manifest()
    for task in manifest["tasks"]:
        assert task in out or task == "demo"
    for names in manifest["registries"].values():
        for name in names:
            assert name in out, name
    assert "== Config (" not in out and "seeds: 5" not in out  # no dump of the demo's config (hours on a CPU)
    assert all(len(line) <= WIDTH for line in out.splitlines()), max(out.splitlines(), key=len)
    experiments = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
    assert f"{len(experiments)} paper presets" in out
    assert sum(name in out for name in experiments) <= 2  # summarised by method, not listed one by one
    assert len(out.splitlines()) < 80


@pytest.mark.parametrize("task", sorted(TASK_KEYS))
def test_task_help_shows_that_tasks_keys(capsys, task):
    out = _help(capsys, task, "--help")
    keys = {row.split("=", 1)[0] for row in re.findall(r"^  (\S+=\S*)", out, flags=re.M)}
    assert set(TASK_KEYS[task]) <= keys, set(TASK_KEYS[task]) - keys
    assert all(len(line) <= WIDTH for line in out.splitlines()), max(out.splitlines(), key=len)
    assert "try first:" in out
    if task == "export":
        assert {"synset", "format", "out"} <= keys and "ipc" not in keys and "method" not in keys
        assert "imagefolder | npz | pt | hf" in out


def _shown(out: str) -> dict[str, str]:
    """{key: value} of every ``  key=value`` row."""
    return dict(row.split("=", 1) for row in re.findall(r"^  (\S+=\S*)", out, flags=re.M))


@pytest.mark.parametrize("task,extra", [("run", []), ("run", ["method=mtt", "eval=quick"]),
                                        ("run", ["experiment=dm_cifar10_ipc10"]), ("distill", ["method=dc"]),
                                        ("evaluate", ["eval=kd-quick"]), ("export", []), ("demo", [])])
def test_help_shows_the_defaults_the_composed_config_has(compose_cfg, capsys, task, extra):
    """Each default help prints is the value `dd-bench TASK [extra]` composes (preset or experiment applied)."""
    shown = _shown(_help(capsys, task, *extra, "--help"))
    assert shown
    cfg = compose_cfg(f"task={task}", *extra)
    for key, value in shown.items():
        if key in ("results", "progress") or key.startswith("eval."):
            continue  # compose_cfg moves results and silences bars; eval.* rows show the protocol's own values
        node = OmegaConf.select(cfg, key)
        if key in GROUPS:
            node = node.name
        plain = OmegaConf.to_container(node, enum_to_str=True) if OmegaConf.is_config(node) else node
        plain = plain.value if hasattr(plain, "value") else plain
        assert value == _fmt(plain), (key, value, plain)


def test_method_and_protocol_sections_follow_the_command_line(capsys):
    out = _help(capsys, "run", "--help")
    assert "method=dm: its options" in out and "preset dm/digits" in out
    assert "method.iterations=100" in out  # the digits preset, not the class default (20000)
    assert "eval=mtt: the protocol (ranked)" in out and "eval.epochs=1000" in out and "try eval=quick" in out
    out = _help(capsys, "run", "method=random", "eval=quick", "--help")
    assert "method=random" in out and "(no options)" in out and "eval.epochs=299" in out
    out = _help(capsys, "run", "experiment=mtt_cifar10_ipc10", "--help")
    assert "with experiment mtt_cifar10_ipc10" in out and "ipc=10" in out and "dataset=cifar10" in out
    out = _help(capsys, "run", "-m", "method=dm,random", "--help")  # a sweep names no single method
    assert "its options" not in out


@pytest.mark.parametrize("args,expected", [
    (["nope", "--help"], "Unknown task 'nope'; available: demo, distill"),
    (["run", "method=dmm", "--help"], "Unknown method 'dmm'; available: cvdd,"),
    (["run", "eval=slow", "--help"], "Unknown eval 'slow'; available: dc,"),
    (["run", "experiment=nope", "--help"], "Unknown experiment 'nope'; available:"),
])
def test_bad_input_to_help_is_one_line(capsys, args, expected):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_task_keys_cover_the_schema():
    """Every key a task lists exists; every key of the schema is listed under some task (a new key gets a place)."""
    manifest = json.loads(MANIFEST_PATH.read_text())
    known = {*manifest["keys"], *(f"demo.{k}" for k in manifest["demo_keys"])}
    listed = {k for keys in TASK_KEYS.values() for k in keys}
    assert listed <= known, listed - known
    assert known - listed - set(RECORDED_ONLY) == set()
    assert sorted(TASK_KEYS) == sorted(manifest["tasks"])


def test_hydra_help_and_cfg_still_go_to_hydra(capsys):
    assert main(["--hydra-help"]) == 0
    assert "Hydra" in capsys.readouterr().out
    assert main(["run", "method=dm", "--cfg", "job"]) == 0
    assert "batch_real: 64" in capsys.readouterr().out
