"""The layers of dd_bench/ (issue 23 items 3 and 6): the paths modules had before they moved into a layer's folder
still import, and name the same objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

# Old import path -> where its names live now (CHANGELOG, "Moved"). The top-level ones are short re-exporting modules;
# the method ones are the moved modules themselves (dd_bench/methods/__init__.py).
MOVED = {
    "dd_bench.cli": "dd_bench.app.cli",
    "dd_bench.tasks": ("dd_bench.app.tasks", "dd_bench.app.job", "dd_bench.pipeline.plan", "dd_bench.data.validation"),
    "dd_bench.demo": "dd_bench.app.demo",
    "dd_bench.exchange_tasks": "dd_bench.app.exchange_tasks",
    "dd_bench.compose": "dd_bench.app.compose",
    "dd_bench.config_schema": "dd_bench.app.config_schema",
    "dd_bench.presets": "dd_bench.app.presets",
    "dd_bench.input_checks": "dd_bench.app.input_checks",
    "dd_bench.help_text": "dd_bench.app.help_text",
    "dd_bench.help_manifest": "dd_bench.app.help_manifest",
    "dd_bench.sweep_board": "dd_bench.app.sweep_board",
    "dd_bench.workflow": ("dd_bench.pipeline", "dd_bench.labels", "dd_bench.labels.relabel"),
    "dd_bench.robust_scoring": "dd_bench.pipeline.robust",
    "dd_bench.cvdd_priors": "dd_bench.pipeline.cvdd_priors",
    "dd_bench.synset_labels": "dd_bench.synset.labels_section",
    "dd_bench.image_store": "dd_bench.synset.image_store",
    "dd_bench.autograd_memory": "dd_bench.tracking.autograd_memory",
    "dd_bench.results.provenance": "dd_bench.tracking.provenance",
    "dd_bench.exchange.class_map": "dd_bench.data.class_map",
}
MOVED_METHODS = {
    "trajectory_matching": "tm.trajectory_matching", "tm_methods": "tm.variants", "tm_gradient": "tm.gradient",
    "tm_grad_mode": "tm.grad_mode", "tm_labels": "tm.labels", "tm_schedule": "tm.schedule",
    "tm_selection": "tm.selection", "dm": "matching.dm", "gradient_matching": "matching.gradient_matching",
    **{m: f"decoupled.{m}" for m in ("sre2l", "rded", "cvdd", "nrrdd", "infer", "hello", "recovery", "bn_statistics",
                                     "cam", "committee")},
    **{m: f"coreset.{m}" for m in ("random_real", "herding", "kcenter", "feature_space")},
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_names_the_same_objects(old):
    shim = importlib.import_module(old)
    homes = [importlib.import_module(m) for m in ((MOVED[old],) if isinstance(MOVED[old], str) else MOVED[old])]
    assert shim.__all__
    for name in shim.__all__:
        home = next((m for m in homes if hasattr(m, name)), None)
        assert home is not None and getattr(shim, name) is getattr(home, name), f"{old}.{name}"


@pytest.mark.parametrize("old", sorted(MOVED_METHODS))
def test_an_old_method_path_is_the_moved_module(old):
    moved = importlib.import_module(f"dd_bench.methods.{MOVED_METHODS[old]}")
    assert importlib.import_module(f"dd_bench.methods.{old}") is moved


def test_the_old_cli_module_runs_as_before():
    out = subprocess.run([sys.executable, "-m", "dd_bench.cli", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("dd-bench:")
