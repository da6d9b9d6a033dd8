"""Write ``docs/ledger.md`` from ``results/ledger/*.json`` (each entry checked: every field present, the verdict and
the difference recomputed from the accuracies). The only way the ledger page changes.

    python scripts/ledger/render.py [--ledger results/ledger] [--out docs/ledger.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dd_bench.io import atomic_write_text
from dd_bench.results.ledger import load_ledger, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def built_pairs() -> dict[str, str]:
    """Every pair ``pair.py`` can run: name -> the official repository (from each pair module's registry)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pair

    return pair.registered()


def page(ledger: Path) -> str:
    return render_markdown(load_ledger(ledger), built=built_pairs())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, default=ROOT / "results" / "ledger")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ledger.md")
    args = parser.parse_args()
    atomic_write_text(args.out, page(args.ledger))
    print(f"wrote {args.out} ({len(load_ledger(args.ledger))} pair(s))")


if __name__ == "__main__":
    main()
