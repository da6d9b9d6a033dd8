"""The layers of dd_bench/ (issue 23 items 3 and 6): every module sits in one layer and imports only from its own
layer and the layers below (LAYERS, written once below), with no circles; the paths modules had before they moved
into a layer's folder still import, and name the same objects. Imports are read with ``ast`` (nothing is imported),
those inside functions too."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

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


# Top to bottom: a module may import from its own layer and from the layers below it, never from one above. Each
# layer lists module prefixes (a package covers its modules); the old top-level paths (MOVED) are the app's.
LAYERS = [
    ("app", ["dd_bench.app", "dd_bench.api", *(old for old in MOVED if old.count(".") == 1)]),
    ("pipeline", ["dd_bench.pipeline", "dd_bench.exchange"]),  # distil, evaluate, record; sets in and out
    ("results", ["dd_bench.results"]),  # records, the leaderboard (IOR asks the label sources), report, wandb
    ("methods", ["dd_bench.methods"]),
    ("eval", ["dd_bench.eval"]),  # the evaluator and its protocols
    ("labels", ["dd_bench.labels"]),  # the label sources
    ("projector", ["dd_bench.projector"]),  # HeLlO's projector, on a teacher's backbone
    ("teachers", ["dd_bench.teachers", "dd_bench.experts"]),
    ("train", ["dd_bench.train"]),  # the one training loop
    ("domain", ["dd_bench.synset", "dd_bench.data", "dd_bench.models", "dd_bench.augment"]),
    ("base", ["dd_bench.io", "dd_bench.tracking", "dd_bench.registry", "dd_bench.errors", "dd_bench.seeding",
              "dd_bench.resources"]),
]
ROOT = "dd_bench"  # __version__ and the lazy score: in the base layer, importable from anywhere
# The one import that points up: ``dd_bench.score``, imported when first used so that ``import dd_bench`` stays light.
ALLOWED_UP = {("dd_bench", "dd_bench.api")}
PACKAGE = Path(__file__).resolve().parents[1] / "dd_bench"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, int]]:
    """(module imported, line) of every import in ``name``, at the top and inside functions alike: ``from a import b``
    names the module ``a.b`` when there is one, else ``a``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the importing package
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # an attribute of a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node.lineno))
    return found


def _layer(name: str) -> int | None:
    if name == ROOT:
        return len(LAYERS) - 1
    matches = [(len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
               if name == p or name.startswith(p + ".")]
    return max(matches)[1] if matches else None


def test_every_module_is_in_a_layer():
    assert [name for name in MODULES if _layer(name) is None] == []


def test_imports_point_down():
    upward = []
    for name in MODULES:
        for target, line in _imports(name):
            if _layer(target) < _layer(name) and (name, target) not in ALLOWED_UP:
                upward.append(f"{MODULES[name].relative_to(PACKAGE.parent)}:{line}: {name} "
                              f"({LAYERS[_layer(name)][0]}) imports {target} ({LAYERS[_layer(target)][0]})")
    assert upward == [], "imports from a layer above:\n" + "\n".join(upward)


def test_imports_go_round_in_no_circle():
    # Importing a.b.c runs the packages a.b above it too, so they count as imported (the importer's own excepted).
    graph = {}
    for name in MODULES:
        graph[name] = set()
        for target, _ in _imports(name):
            parts = target.split(".")
            graph[name] |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} - {ROOT}
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".") and t != name}
    assert [sorted(c) for c in _strongly_connected(graph) if len(c) > 1] == []


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            out.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_help_and_the_set_format_import_neither_torch_nor_a_method():
    code = ("import sys, dd_bench.app.cli, dd_bench.app.help_text; assert 'torch' not in sys.modules;"
            "import dd_bench.synset, dd_bench.synset.image_store;"
            "above = ('dd_bench.methods', 'dd_bench.eval', 'dd_bench.labels');"
            "assert not [m for m in sys.modules if m.startswith(above)]")
    subprocess.run([sys.executable, "-c", code], check=True)
