"""(method, dataset, ipc) presets, applied automatically and named in every record.

A preset file ``conf/preset/<method>/<dataset>.yaml`` maps ``ipc<N>`` (or ``any``) to method option values.
Precedence: the method's config file < the preset < options the user set on the command line. Paper presets
that also pick the dataset and ipc live under ``conf/experiment/`` and replace the automatic preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def preset_file(method: str, dataset: str, conf_dir: Path = CONF_DIR) -> Path:
    return conf_dir / "preset" / method / f"{dataset}.yaml"


def find_preset(method: str, dataset: str, ipc: int, conf_dir: Path = CONF_DIR) -> tuple[dict[str, Any], str] | None:
    """(values, name) of the preset for this triple, or None. The name is ``<method>/<dataset>/ipc<N>``."""
    path = preset_file(method, dataset, conf_dir)
    if not path.is_file():
        return None
    table = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in (f"ipc{ipc}", "any"):
        if key in table:
            return dict(table[key] or {}), f"{method}/{dataset}/{key}"
    return None


def methods_with_preset(dataset: str, methods: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    return [m for m in methods if preset_file(m, dataset, conf_dir).is_file()]


def method_file_values(method: str, conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """Every option of ``method``: its Config defaults, overridden by ``conf/method/<method>.yaml``'s values
    (what Hydra composes for ``method=<method>``, without Hydra)."""
    import dataclasses

    from dd_bench.methods import METHODS

    values = dataclasses.asdict(METHODS.get(method).Config())
    path = conf_dir / "method" / f"{method}.yaml"
    if path.is_file():
        written = OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}
        written.pop("defaults", None)
        written.pop("name", None)
        values.update(written)
    return values


def apply_preset(method_values: dict[str, Any], preset: dict[str, Any], user_keys: set[str]) -> dict[str, Any]:
    """Preset values override the method file, except options the user set explicitly."""
    unknown = sorted(set(preset) - set(method_values))
    if unknown:
        raise ValueError(f"preset sets unknown option(s) {unknown}; available: {', '.join(sorted(method_values))}")
    return {k: (v if k in user_keys or k not in preset else preset[k]) for k, v in method_values.items()}
