"""Files that ship with dd-bench: the Hydra configs, the published table and the recorded reference rows.

In a source checkout (and an editable install) they sit at the top level, where users look for them (``conf/``,
``baselines/``); a wheel carries them inside the package (setup.py maps ``dd_bench.conf`` -> ``conf/`` and
``dd_bench.baselines`` -> ``baselines/``). The packaged copy wins when it exists.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    packaged = _PACKAGE / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


CONF_DIR = _shipped("conf")
BASELINES_DIR = _shipped("baselines")
PUBLISHED_CSV = BASELINES_DIR / "published.csv"
RECORDED_REFERENCES_DIR = BASELINES_DIR / "references"  # run records of reference rows, with their provenance
# The fidelity ledger's entries (results/ledger/*.json): in a source checkout only (a wheel ships none).
LEDGER_DIR = _PACKAGE.parent / "results" / "ledger"
