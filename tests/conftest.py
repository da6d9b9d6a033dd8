"""Shared fixtures: the digits set, an isolated cache, composition of the real conf/ with tiny overrides, and a small
BN network for the BN-statistics tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Reference rows and decoded data are cached under a per-session temp dir, never in ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DD_BENCH_CACHE", str(tmp_path_factory.mktemp("dd_bench_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def digits():
    from dd_bench.data import load_dataset

    return load_dataset("digits", progress=False)


@pytest.fixture
def compose_cfg(tmp_path: Path):
    """compose_cfg(*overrides) -> the real config (conf/config.yaml; ``task=`` picks the task) with results under
    tmp_path and progress bars off, composed exactly as the command line composes it."""
    from hydra.core.global_hydra import GlobalHydra

    from dd_bench.app.compose import compose_config

    def compose_(*overrides: str):
        GlobalHydra.instance().clear()
        return compose_config("demo", [f"results={tmp_path / 'runs'}", "progress=false", *overrides])

    yield compose_
    GlobalHydra.instance().clear()


def preset_options(method: str, dataset: str = "digits") -> dict:
    """The method's options as ``dd-bench run method=<method> dataset=<dataset>`` composes them (preset applied)."""
    from hydra.core.global_hydra import GlobalHydra

    from dd_bench.app.compose import compose_config
    from dd_bench.app.tasks import job_config

    GlobalHydra.instance().clear()
    options = job_config(compose_config("run", [f"method={method}", f"dataset={dataset}"]))["method"]
    options.pop("name")
    return options


class BNNet(nn.Module):
    """A one-BN-layer network on 1 x 8 x 8 inputs (10 classes): for BN-statistics and relabelling tests."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))
