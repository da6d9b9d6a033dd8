"""Compose a job's config in-process, exactly as ``dd-bench TASK overrides...`` would (the demo and tests use it)."""

from __future__ import annotations

from omegaconf import DictConfig

from dd_bench.app.config_schema import TASK_CONFIGS, register_schemas
from dd_bench.resources import CONF_DIR


def compose_config(task: str, overrides: list[str]) -> DictConfig:
    """The composed config of ``task`` with ``overrides``; works inside a running Hydra app and outside one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    name = TASK_CONFIGS[task]
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def quote(value: object) -> str:
    """A Hydra override value that survives any characters (paths with spaces, '=', ',')."""
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"
