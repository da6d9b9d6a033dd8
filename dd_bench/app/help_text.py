"""``dd-bench --help`` and ``dd-bench TASK --help``, printed before Hydra composes anything.

Building help through Hydra imports every method (the config schemas and the registry resolvers), which imports
torch and takes seconds. This module reads only text: the help template ``conf/hydra/help/dd_bench.yaml``, the
config files under ``conf/`` (groups, defaults, presets, experiments) and the generated options manifest
(:mod:`dd_bench.app.help_manifest`). It imports nothing heavier than PyYAML; ``tests/test_help.py`` checks that.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import yaml

from dd_bench.errors import UserError

WIDTH = 118  # the longest line help prints (the README's code width)
KEY_COLUMN = 30  # where a key's doc starts
GROUPS = ("method", "dataset", "eval", "logger")

# The keys each task reads (dd_bench/app/tasks.py), in the order help lists them. tests/test_help.py checks that every
# key here exists and that every key of the schema is listed under some task.
_DISTILL = ["method", "dataset", "ipc", "seed", "experiment", "out", "validation", "image_store", "jpeg_quality"]
_EVALUATE = ["eval", "models", "seeds", "references", "label_source", "label_sources", "scores"]
_COMMON = ["results", "device", "progress", "rerun", "logger"]
TASK_KEYS: dict[str, list[str]] = {
    "demo": ["demo.dataset", "demo.ipcs", "demo.models", "demo.seeds", "demo.protocol", "demo.kd_protocol",
             "demo.kd_models", "demo.methods", "demo.references", "demo.full_data", "demo.full_data_seeds",
             "results", "device", "progress", "rerun", "logger"],
    "distill": [*_DISTILL, *_COMMON, "preset"],
    "evaluate": ["synset", *_EVALUATE, "dataset", *_COMMON],
    "run": [*_DISTILL, *_EVALUATE, *_COMMON, "preset"],
    "relabel": ["synset", "eval", "dataset", "device", "progress"],
    "leaderboard": ["results", "wandb_project", "logger"],
    "report": ["results", "out", "dataset"],
    "export": ["synset", "format", "out", "results", "materialise", "dataset", "device", "progress"],
    "import": ["format", "path", "dataset", "space", "classes", "entry", "name", "out", "device"],
}
# Keys that only experiment files set, recorded with the run; never typed on the command line.
RECORDED_ONLY = ("task", "verified", "published")
# What to type first, per task (the global help's "try first" is the demo).
TASK_TRY = {
    "demo": "dd-bench",
    "distill": "dd-bench distill method=dm",
    "evaluate": "dd-bench evaluate synset=runs/synsets/SET eval=quick seeds=1   (SET: a folder `distill` wrote)",
    "run": "dd-bench run method=dm eval=quick seeds=1",
    "relabel": "dd-bench relabel synset=runs/synsets/SET eval=kd-quick",
    "leaderboard": "dd-bench leaderboard results=runs",
    "report": "dd-bench report results=runs",
    "export": "dd-bench export synset=runs/synsets/SET format=npz out=exported",
    "import": "dd-bench import format=npz path=exported dataset=digits out=imported",
}
# Docs where the schema's comment does not say it in one line, or where a task gives a key its own meaning.
DOCS = {
    "models": "evaluation networks, a list: models=[convnet,resnet18] (any registered model, or timm.NAME)",
    "demo.dataset": "the demo's data set",
    "demo.models": "evaluation networks of the demo",
    "demo.seeds": "evaluation networks per model",
    "demo.protocol": "the protocol of the non-kd methods (quick: 300 passes, never ranked)",
    "demo.kd_models": "evaluation networks of the kd-family methods",
    "demo.references": "reference rows beside the methods",
    "path": "the file or folder to import",
    "space": "what the imported values are (dd-bench's own exports carry theirs)",
    "entry": "which [images, labels] pair of a DC res_*.pt (-1: the last)",
    "name": "the name the set is shown under (default imported_FORMAT)",
    "export:format": "the format to write",
    "import:format": "the format to read",
    "export:out": "the folder to write",
    "import:out": "the set folder to write",
    "report:out": "the page's folder (default <results>/report)",
    "export:results": "more records to put in the datasheet (beside the set's own folder)",
    "export:dataset": "only for dataset.root: a ZCA set needs its data to undo the whitening",
    "report:dataset": "only for dataset.cache_dir",
    "method": "the distillation method",
    "dataset": "the data (digits is embedded; others need dataset.root=DIR or dataset.download=true)",
    "eval": "the evaluation protocol (see below)",
    "logger": "none | wandb (logger.project=, logger.entity=, logger.mode=offline|online|disabled)",
    "experiment": "a paper's complete preset (see Experiments below)",
}


def load_manifest(*, path: Path | None = None) -> dict[str, Any]:
    from dd_bench.app.help_manifest import MANIFEST_PATH  # the module's top is light: its heavy imports are lazy

    return json.loads((path or MANIFEST_PATH).read_text(encoding="utf-8"))


def _fmt(value: Any) -> str:
    """A value as it is typed on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def _wrap(text: str, *, indent: int, width: int = WIDTH) -> str:
    """One logical line wrapped at spaces (never inside a name with hyphens), continuation lines at ``indent``."""
    return textwrap.fill(text, width=width, subsequent_indent=" " * indent, break_long_words=False,
                         break_on_hyphens=False)


def _row(key: str, doc: str) -> str:
    head = f"  {key}"
    if len(head) >= KEY_COLUMN - 1:
        return head + "\n" + _wrap(" " * KEY_COLUMN + doc, indent=KEY_COLUMN) if doc else head
    return _wrap(head.ljust(KEY_COLUMN) + doc, indent=KEY_COLUMN) if doc else head


def _options(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def experiments_by_method(*, conf_dir: Path) -> dict[str, dict[str, list[int]]]:
    """{method prefix: {dataset: [ipc, ...]}} from the names conf/experiment/METHOD_DATASET_ipcN.yaml."""
    datasets = sorted(_options(conf_dir, "dataset"), key=len, reverse=True)  # cifar100 before cifar10
    pattern = re.compile(rf"^(.+?)_({'|'.join(map(re.escape, datasets))})_ipc(\d+)$")
    grouped: dict[str, dict[str, list[int]]] = {}
    for name in _options(conf_dir, "experiment"):
        match = pattern.match(name)
        prefix, dataset, ipc = match.groups() if match else (name, "", "0")
        grouped.setdefault(prefix, {}).setdefault(dataset, []).append(int(ipc))
    return {p: {d: sorted(i) for d, i in sorted(by.items())} for p, by in sorted(grouped.items())}


def _config_groups(*, conf_dir: Path) -> str:
    """$APP_CONFIG_GROUPS: every group under conf/ with its options; experiments and presets summarised."""
    experiments = experiments_by_method(conf_dir=conf_dir)
    count = sum(len(i) for by in experiments.values() for i in by.values())
    presets = sorted(p.relative_to(conf_dir / "preset").with_suffix("").as_posix()
                     for p in (conf_dir / "preset").glob("*/*.yaml"))
    rows = {group: ", ".join(_options(conf_dir, group)) for group in ("dataset", "eval", "logger", "method")}
    rows["experiment"] = (f"{count} paper presets named METHOD_DATASET_ipcN (e.g. dm_cifar10_ipc10) for "
                          f"{', '.join(experiments)}; all of them: dd-bench run --help")
    rows["hydra/launcher"] = ", ".join(_options(conf_dir, "hydra/launcher"))
    example = "dm/digits" if "dm/digits" in presets else (presets or ["METHOD/DATASET"])[0]
    rows["preset"] = (f"applied by itself from conf/preset/METHOD/DATASET.yaml ({len(presets)} of them, e.g. "
                      f"{example}); preset=none runs without")
    column = 2 + max(len(g) for g in rows) + 2
    return "\n".join(_wrap(f"  {group}:".ljust(column) + text, indent=column) for group, text in sorted(rows.items()))


def _template(conf_dir: Path) -> dict[str, str]:
    return yaml.safe_load((conf_dir / "hydra" / "help" / "dd_bench.yaml").read_text(encoding="utf-8"))


def global_help(*, conf_dir: Path, manifest: dict[str, Any]) -> str:
    """The text of ``dd-bench --help``: the template with its placeholders filled, every line wrapped."""
    help_conf = _template(conf_dir)
    text = help_conf["template"].replace("${hydra.help.header}", help_conf["header"])
    text = text.replace("${hydra.help.footer}", help_conf["footer"].rstrip("\n"))
    lines = []
    for line in text.splitlines():
        if line.strip() == "$APP_CONFIG_GROUPS":
            lines.append(_config_groups(conf_dir=conf_dir))
            continue
        match = re.search(r"\$\{dd_bench\.list:(\w+)\}", line)
        if match:
            names = manifest["registries"][match.group(1)]
            line = line[:match.start()] + ", ".join(names) + line[match.end():]
            # Continue under the list when it starts near the left, else under the row's text.
            indent = match.start() if match.start() <= 20 else len(line) - len(line.lstrip()) + 2
            lines.append(_wrap(line, indent=indent))
        else:
            lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


def _overrides(words: list[str]) -> dict[str, str]:
    """key=value words (flags, deletions and sweeps' extra values aside) as {key: value}."""
    found = {}
    for word in words:
        key, sep, value = word.lstrip("+").partition("=")
        if sep and not word.startswith(("-", "~")):
            found[key] = value
    return found


def _untasked(doc: str, *, tasks: list[str]) -> str:
    """A doc without the "evaluate / run: " it opens with in the schema (help already shows it under its task)."""
    match = re.match(r"^([a-z]+(?: / [a-z]+)*): ", doc)
    return doc[match.end():] if match and set(match.group(1).split(" / ")) <= set(tasks) else doc


def _choose(kind: str, value: str, names: list[str]) -> str | None:
    """The one option a help override names; None for a sweep over several; a one-line error for an unknown."""
    if "," in value:
        return None
    if value not in names:
        raise UserError(f"Unknown {kind} '{value}'; available: {', '.join(names)}")
    return value


def _yaml(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def _preset(*, method: str | None, dataset: str | None, experiment: dict[str, Any] | None,
            conf_dir: Path) -> str | None:
    """The (method, dataset) preset Hydra would apply: none under an experiment (it is complete) or a sweep."""
    if experiment is not None or not method or not dataset:
        return None
    return f"{method}/{dataset}" if (conf_dir / "preset" / method / f"{dataset}.yaml").is_file() else None


def _group_values(*, group: str, name: str, defaults: dict[str, Any], layers: list[dict[str, Any]],
                  conf_dir: Path) -> dict[str, Any]:
    """A group's values as Hydra composes them: the schema's defaults, the option's file, then each later layer
    (preset, experiment) that sets keys of the group."""
    values = dict(defaults)
    values.update({k: v for k, v in _yaml(conf_dir / group / f"{name}.yaml").items() if k in values})
    for layer in layers:
        values.update({k: v for k, v in (layer.get(group) or {}).items() if k in values})
    return values


def _method_section(*, name: str, source: str, layers: list[dict[str, Any]], conf_dir: Path,
                    manifest: dict[str, Any]) -> list[str]:
    entry = manifest["methods"][name]
    values = _group_values(group="method", name=name, defaults={k: o["default"] for k, o in entry["options"].items()},
                           layers=layers, conf_dir=conf_dir)
    lines = [f"== method={name}: its options (method.KEY=VALUE), with {source} ==",
             _wrap(f"  {entry['doc']}", indent=2)]
    lines += [_row(f"method.{key}={_fmt(values[key])}", option["doc"]) for key, option in entry["options"].items()]
    if not entry["options"]:
        lines.append("  (no options)")
    return lines


def _eval_section(*, name: str, manifest: dict[str, Any]) -> list[str]:
    entry = manifest["protocols"][name]
    values = "  ".join(f"eval.{k}={_fmt(v)}" for k, v in entry["values"].items())
    lines = [f"== eval={name}: the protocol ({'ranked' if entry['ranked'] else 'never ranked'}) ==",
             _wrap(f"  {entry['doc']}", indent=2), _wrap(f"  {values}", indent=2),
             _wrap(f"  Setting any eval.KEY (or eval.batched) scores under an unranked {name}+custom protocol.",
                   indent=2)]
    quick = entry["cpu_protocol"]  # the CPU demo protocol of the same recipe
    if name != quick and quick in manifest["protocols"]:
        length = manifest["protocols"][quick]["length"]
        lines.append(f"  On a CPU, try eval={quick} first ({length}; eval.epochs=N for fewer).")
    return lines


def _experiment_section(*, conf_dir: Path) -> list[str]:
    lines = ["== Experiments (experiment=METHOD_DATASET_ipcN: a paper's complete preset; dataset.root= as needed) =="]
    for prefix, by_dataset in experiments_by_method(conf_dir=conf_dir).items():
        text = "; ".join(f"{d} ipc {','.join(map(str, ipcs))}" for d, ipcs in by_dataset.items())
        lines.append(_row(prefix, text))
    return lines


def task_help(*, task: str, words: list[str], conf_dir: Path, manifest: dict[str, Any]) -> str:
    """The text of ``dd-bench TASK --help``: what the task does, its keys with their defaults and docs, and the
    options of the method and protocol it would use (the ones ``words`` name, else the defaults)."""
    config = yaml.safe_load((conf_dir / "config.yaml").read_text(encoding="utf-8"))
    defaults = {k: v for d in config["defaults"] if isinstance(d, dict) for k, v in d.items() if k in GROUPS}
    asked = _overrides(words)
    experiment = None
    if asked.get("experiment"):
        name = _choose("experiment", asked["experiment"], _options(conf_dir, "experiment"))
        if name is not None:
            experiment = yaml.safe_load((conf_dir / "experiment" / f"{name}.yaml").read_text(encoding="utf-8"))
            for d in experiment.get("defaults", []):
                for key, value in (d.items() if isinstance(d, dict) else ()):
                    defaults[key.removeprefix("override /")] = value
    chosen = {**defaults, **{g: asked[g] for g in GROUPS if g in asked}}
    registry = {"method": "methods", "dataset": "datasets", "eval": "protocols", "logger": None}
    for group in GROUPS:
        names = manifest["registries"][registry[group]] if registry[group] else _options(conf_dir, group)
        chosen[group] = _choose(group, chosen[group], names)

    preset = None if asked.get("preset") == "none" else _preset(
        method=chosen["method"], dataset=chosen["dataset"], experiment=experiment, conf_dir=conf_dir)
    layers = [layer for layer in (_yaml(conf_dir / "preset" / f"{preset}.yaml") if preset else None, experiment)
              if layer]
    source = (f"experiment {experiment['experiment']}" if experiment else f"preset {preset}" if preset
              else "the method's defaults")
    usage = "dd-bench [demo]" if task == "demo" else f"dd-bench {task}"
    lines = [_wrap(f"{usage}: {_task_description(task=task, conf_dir=conf_dir)}", indent=2), "",
             f"usage: {usage} [key=value ...] [-m] [--cfg job]    (dd-bench --help: every task and registry)",
             f"try first: {TASK_TRY[task]}", "", "== Keys (key=default: what it does) =="]
    lines += _key_rows(task=task, chosen=chosen, preset=preset, layers=layers, config=config, conf_dir=conf_dir,
                       manifest=manifest)
    if "method" in TASK_KEYS[task] and chosen["method"]:
        lines += ["", *_method_section(name=chosen["method"], source=source, layers=layers, conf_dir=conf_dir,
                                       manifest=manifest)]
    if "eval" in TASK_KEYS[task] and chosen["eval"]:
        lines += ["", *_eval_section(name=chosen["eval"], manifest=manifest)]
    if "experiment" in TASK_KEYS[task]:
        lines += ["", *_experiment_section(conf_dir=conf_dir)]
    examples = [line for line in _template(conf_dir)["template"].splitlines()
                if line.strip().startswith(f"dd-bench {task} ")]
    if examples:
        lines += ["", "== Examples ==", *examples]
    return "\n".join(lines).rstrip() + "\n"


def _task_description(*, task: str, conf_dir: Path) -> str:
    """What a task does: the opening comment of conf/<task>.yaml (the demo's file opens with the config's own)."""
    if task == "demo":
        return "the quick benchmark on the embedded digits set: every method with a digits preset, one board"
    opening = []
    for line in (conf_dir / f"{task}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        opening.append(line.lstrip("# "))
    return re.sub(r"^`dd-bench \w+`:\s*", "", " ".join(opening))


def _key_rows(*, task: str, chosen: dict[str, str | None], preset: str | None, layers: list[dict[str, Any]],
              config: dict[str, Any], conf_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """One row per key the task reads: key=its default (after the preset and experiment), then its doc."""
    registry = {"method": "methods", "dataset": "datasets", "eval": "protocols", "logger": None}
    lines = []
    for key in TASK_KEYS[task]:
        if key in GROUPS:
            value = chosen[key] or ""
            options = manifest["registries"][registry[key]] if registry[key] else _options(conf_dir, key)
            extra = f": {', '.join(options)}" if key in ("method", "dataset", "eval") else ""
            lines.append(_row(f"{key}={value}", DOCS[key] + extra))
            if key == "dataset" and value:
                options = manifest["group_keys"]["dataset"]
                values = _group_values(group="dataset", name=value, layers=layers, conf_dir=conf_dir,
                                       defaults={k: o["default"] for k, o in options.items()})
                lines += [_row(f"dataset.{k}={_fmt(values[k])}", o["doc"]) for k, o in options.items()]
            continue
        demo = key.startswith("demo.")
        entry = (manifest["demo_keys"] if demo else manifest["keys"])[key.removeprefix("demo.")]
        if demo:
            value = config["demo"].get(key.removeprefix("demo."), entry["default"])
        elif key == "preset":
            value = preset
        else:  # the primary config's value, under the experiment's (and a preset's validation split)
            value = config.get(key, entry["default"])
            for layer in layers:
                value = layer.get(key, value)
        doc = DOCS.get(f"{task}:{key}") or DOCS.get(key) or _untasked(entry["doc"], tasks=manifest["tasks"])
        choices = manifest["choices"].get(f"{task}.{key}") or manifest["choices"].get(key)
        if choices and not all(c in doc for c in choices):
            doc += f" ({' | '.join(choices)})"
        lines.append(_row(f"{key}={_fmt(value)}", doc))
    return lines


def help_text(*, task: str | None, words: list[str], conf_dir: Path, manifest: dict[str, Any] | None = None) -> str:
    """``dd-bench [TASK] --help`` (``words``: the rest of the command line, without the help flag and the task)."""
    manifest = manifest or load_manifest()
    if task is None:
        return global_help(conf_dir=conf_dir, manifest=manifest)
    if task not in manifest["tasks"]:
        raise UserError(f"Unknown task '{task}'; available: {', '.join(manifest['tasks'])} (or none: the demo)")
    return task_help(task=task, words=words, conf_dir=conf_dir, manifest=manifest)
