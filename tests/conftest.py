"""Shared fixtures: the digits set, an isolated cache, and composition of the real conf/ with tiny overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    """compose_cfg(*overrides) -> the real config with results under tmp_path and progress bars off."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from dd_bench.config_schema import register_schemas

    register_schemas()

    def compose_(*overrides: str):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config",
                           overrides=[f"results={tmp_path / 'runs'}", "progress=false", *overrides])

    yield compose_
    GlobalHydra.instance().clear()
