"""Command line: ``dd-bench [TASK] [Hydra overrides and flags...]``.

The task word picks the primary config (``conf/<task>.yaml``; none: the demo, ``conf/config.yaml``) and is
removed before Hydra parses the rest, so every Hydra convention works as in any Hydra app: ``--hydra-help``,
``--info``, ``--cfg job|hydra|all``, ``-m`` anywhere, and shell completion (``eval "$(dd-bench -sc install=bash)"``;
the task word is stripped from the completed line too). A :class:`~dd_bench.errors.UserError` prints one line and
exits with status 2; any other exception is a bug and keeps its traceback.

``--help`` / ``-h`` (alone or after a task word) never reach Hydra: :mod:`dd_bench.app.help_text` prints them from the
config files and the options manifest, because composing through Hydra imports every method, and so torch. This
module therefore imports nothing heavy at its top; the config schemas and the tasks are imported when a command runs.
A multirun ends with one board of its jobs' records (:mod:`dd_bench.app.sweep_board`, a Hydra callback).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import traceback
import warnings
from typing import TYPE_CHECKING, Any

from dd_bench.errors import REPORT_BUGS, UserError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from dd_bench.app.tasks import run  # for type checkers: at run time the module __getattr__ below imports it lazily

__all__ = ["main", "run", "split_task"]
HELP_FLAGS = ("--help", "-h")

# conf/hydra/launcher/<name>.yaml lists every key of the plugin's schema of the same name; Hydra 1.3 also validates it
# against that schema and warns that it will stop doing so (our file stays complete either way). Installed at import:
# a joblib worker imports this module (it holds the task function) before it composes its job's config.
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")


def __getattr__(name: str) -> Any:
    # ``from dd_bench.app.cli import run`` keeps working without importing the tasks (torch) at import time.
    if name == "run":
        from dd_bench.app.tasks import run

        return run
    raise AttributeError(f"module 'dd_bench.app.cli' has no attribute '{name}'")

# Hydra flags that take a value (the next word is not the task); --info takes one only from its own choices.
_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                "-cd", "--experimental-rerun"}
_INFO_FLAGS = {"--info", "-i"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# hydra/launcher=NAME -> (the plugin module it needs, the extra that installs it)
_LAUNCHER_EXTRAS = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
                    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
                    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm")}


def split_task(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the task word or None, argv without it). The task word is the first bare word (no ``=``, not a flag or a
    flag's value, not a ``~key`` deletion); it may stand anywhere (``dd-bench -m run method=dm,random``)."""
    skip_next = False
    for i, arg in enumerate(argv):
        if skip_next:
            skip_next = False
            continue
        if arg in _VALUE_FLAGS:
            skip_next = True
            continue
        if arg in _INFO_FLAGS:
            skip_next = i + 1 < len(argv) and argv[i + 1] in _INFO_CHOICES
            continue
        if arg.startswith("-") or "=" in arg or arg.startswith(("~", "+")):
            continue
        return arg, argv[:i] + argv[i + 1:]
    return None, list(argv)


def _completion_task(argv: list[str]) -> str | None:
    """For ``-sc query=bash``: take the task word out of COMP_LINE (Hydra completes the rest) and return it."""
    if not any(a.startswith("query=") for a in argv) or "COMP_LINE" not in os.environ:
        return None
    from dd_bench.app.config_schema import TASKS

    line = os.environ["COMP_LINE"]
    words = line.split()
    task, rest = split_task(words[1:])
    if task not in TASKS:
        return None
    os.environ["COMP_LINE"] = " ".join(words[:1] + rest) + (" " if line.endswith(" ") else "")
    return task


def _missing_launcher(argv: list[str]) -> str | None:
    for arg in argv:
        if arg.startswith("hydra/launcher="):
            name = arg.split("=", 1)[1]
            module, extra = _LAUNCHER_EXTRAS.get(name, (None, None))
            if module is not None and importlib.util.find_spec(module) is None:
                return f"hydra/launcher={name} needs its plugin: pip install 'dd-bench[{extra}]'"
    return None


def _entry(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job. Its return value (what the job produced, kept small: a launcher pickles it back) is read by
    the sweep board's callback at the job's end."""
    from dd_bench.app.sweep_board import job_summary
    from dd_bench.app.tasks import run
    from dd_bench.tracking.allocator import tune_allocator

    try:
        tune_allocator()  # again in each job: a launcher's worker process starts with glibc's defaults
        return job_summary(result=run(cfg), results=cfg.results)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:  # noqa: BLE001 - a bug: keep the traceback and say where it belongs
        traceback.print_exc()
        print(f"\n{REPORT_BUGS}", file=sys.stderr)
        raise SystemExit(1) from None


def override_type_error(overrides: list[str]) -> str | None:
    """One line for the common mistakes Hydra reports in several (a list key given one value, a word where an integer
    goes), read from the schema's types so it stays in sync; None when there is none."""
    import dataclasses
    import typing

    from dd_bench.app.config_schema import DDBenchSchema, DemoSchema

    kinds: dict[str, str] = {}
    for prefix, schema in (("", DDBenchSchema), ("demo.", DemoSchema)):
        for f in dataclasses.fields(schema):
            hint = str(typing.get_type_hints(schema)[f.name])
            kinds[prefix + f.name] = "list" if hint.startswith(("list", "typing.Optional[list")) else \
                "int" if hint == "<class 'int'>" else ""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or key not in kinds or value in ("null", ""):
            continue
        if kinds[key] == "list" and not value.startswith("["):
            return f"{key}={value}: {key} is a list; write {key}=[{value}]"
        if kinds[key] == "int" and not value.lstrip("-").isdigit() and "," not in value and "(" not in value:
            return f"{key}={value}: {key} is an integer (e.g. {key}={getattr(DDBenchSchema, key, 1) or 1})"
    return None


def _method_name(values: dict[str, str]) -> str | None:
    """The method an override list composes: ``method=``, else the experiment's, else dm; None for a sweep over
    methods or an unknown name (Hydra checks those)."""
    import yaml

    from dd_bench.resources import CONF_DIR

    name = values.get("method")
    if name is None and values.get("experiment"):
        path = CONF_DIR / "experiment" / f"{values['experiment']}.yaml"
        raw = yaml.safe_load(path.read_text()) if path.is_file() else {}
        name = next((d["override /method"] for d in raw.get("defaults", []) if isinstance(d, dict)
                     and "override /method" in d), None)
    name = name or "dm"
    from dd_bench.methods import METHODS

    return name if "," not in name and name in METHODS else None


def _assignments(overrides: list[str]) -> dict[str, str]:
    return dict(o.split("=", 1) for o in overrides if "=" in o and not o.startswith(("+", "~")))


def method_option_error(overrides: list[str]) -> str | None:
    """A ``method.<key>=`` override naming no option of the method (``method=``, else the experiment's, else dm):
    one line with a did-you-mean and the method's options, instead of Hydra's advice to append ``+key``."""
    import difflib

    keys = [o.partition("=")[0] for o in overrides if o.startswith("method.") and "=" in o]
    if not keys:
        return None
    name = _method_name(_assignments(overrides))
    if name is None:
        return None
    from dd_bench.methods import METHODS

    options = sorted(f.name for f in dataclasses.fields(METHODS.get(name).Config))
    for key in keys:
        option = key.split(".", 2)[1]
        if option not in options and option != "name":
            close = difflib.get_close_matches(option, options, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return f"{key}: method '{name}' has no option '{option}'{hint}; its options: {', '.join(options)}"
    return None


def enum_choice_error(overrides: list[str]) -> str | None:
    """``key=value`` where the key's schema field is an enum and the value none of its members (``method.init=bogus``,
    ``eval.augment=flip``, ``logger.mode=loud``): one line naming the valid values, instead of Hydra's four. Read
    from the schemas Hydra validates against, so the two agree; a sweep's values are checked one by one, and
    interpolations, sweep functions and null are left to Hydra."""
    import enum
    import types
    import typing

    from dd_bench.app.config_schema import DatasetSchema, DDBenchSchema, EvalSchema, LoggerSchema

    values = _assignments(overrides)
    for key, value in values.items():
        group, _, field = key.rpartition(".")
        if group == "method":
            name = _method_name(values)
            if name is None:
                continue
            from dd_bench.methods import METHODS

            schema: type | None = METHODS.get(name).Config
        else:
            schema = {"": DDBenchSchema, "dataset": DatasetSchema, "eval": EvalSchema,
                      "logger": LoggerSchema}.get(group)
        if schema is None or not dataclasses.is_dataclass(schema):
            continue
        kind = typing.get_type_hints(schema).get(field)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
            kind = next((k for k in typing.get_args(kind) if k is not type(None)), None)
        if not (isinstance(kind, type) and issubclass(kind, enum.Enum)) or any(c in value for c in "$()[]"):
            continue
        choices = [str(m.value) for m in kind]
        for one in value.split(","):
            if one not in choices and one not in ("null", ""):
                return f"{key}={value}: Unknown {field} '{one}'; available: {', '.join(choices)}"
    return None


def print_help(argv: list[str]) -> int:
    """``dd-bench [TASK] --help``: printed from conf/ and the options manifest, without Hydra or torch."""
    from dd_bench.app.help_text import help_text
    from dd_bench.resources import CONF_DIR

    task, rest = split_task([a for a in argv if a not in HELP_FLAGS])
    try:
        print(help_text(task=task, words=rest, conf_dir=CONF_DIR), end="")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in HELP_FLAGS for a in argv):
        return print_help(argv)
    import hydra

    from dd_bench.app.config_schema import TASK_CONFIGS, TASKS, register_schemas
    from dd_bench.resources import CONF_DIR

    task, rest = split_task(argv)
    if task is None:
        task = _completion_task(rest) or "demo"
    if task not in TASKS:
        print(f"error: Unknown task '{task}'; available: {', '.join(TASKS)} (or none: the demo)", file=sys.stderr)
        return 2
    from dd_bench.app.input_checks import group_choice_error  # eval=nope: one line, not Hydra's search path

    problem = (override_type_error(rest) or group_choice_error(rest, conf_dir=CONF_DIR) or method_option_error(rest)
               or enum_choice_error(rest)
               or _missing_launcher(rest))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from dd_bench.tracking.allocator import tune_allocator

    try:
        tune_allocator()  # before any work: what it changes is described in dd_bench/tracking/allocator.py
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    register_schemas()
    saved_argv = sys.argv
    sys.argv = [saved_argv[0] if saved_argv else "dd-bench", *rest]
    try:
        # An absolute path: Hydra would resolve a relative one as a Python package when run as an installed script.
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=TASK_CONFIGS[task])(_entry)()
    except SystemExit as e:  # Hydra exits 1 on a config error, 0 after --help/--cfg; ours exits 2 on bad input
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print("interrupted: finished sets, records and the last checkpoint are kept on disk; rerun the same "
              "command to resume", file=sys.stderr)
        return 130
    finally:
        sys.argv = saved_argv
    return 0


if __name__ == "__main__":
    sys.exit(main())
