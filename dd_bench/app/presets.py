"""(method, dataset) presets: Hydra specialising configs, ``conf/preset/<method>/<dataset>.yaml``.

The primary config's defaults list holds ``optional preset: ${method}/${dataset}``, so Hydra applies the preset
while it composes: ``--cfg job``, ``.hydra/config.yaml``, the set's meta.json, every record and wandb show the
values that ran. Precedence: the method's config file < the preset < a paper experiment (which turns presets off,
``override /preset: none``) < the command line. ``preset=none`` applies none; ``preset=<method>/<dataset>`` picks
one by hand. Each preset file names itself in the top-level ``preset`` key, which the records carry.
"""

from __future__ import annotations

from pathlib import Path

from dd_bench.resources import CONF_DIR


def preset_file(method: str, dataset: str, conf_dir: Path = CONF_DIR) -> Path:
    return conf_dir / "preset" / method / f"{dataset}.yaml"


def methods_with_preset(dataset: str, methods: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    return [m for m in methods if preset_file(m, dataset, conf_dir).is_file()]
