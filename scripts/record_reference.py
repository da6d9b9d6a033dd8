"""Record a reference row (e.g. the demo's full-data ceiling) as a run record with its provenance, to ship it.

The demo shows the full-data row from ``baselines/references/`` instead of training on all of digits each time
(about 50 s per model on 2 CPU cores, a third of the demo). The record is matched exactly: by its reference hash
(data fingerprint, full protocol, model, seeds), so a changed protocol or data set finds no recorded row and the
demo says so (``demo.full_data=compute`` trains it).

Usage: python scripts/record_reference.py --dataset digits --protocol quick --models convnet mlp --seeds 1 \
    --out baselines/references
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from dd_bench.data import load_dataset
from dd_bench.eval import get_protocol
from dd_bench.io import atomic_write_json
from dd_bench.pipeline.device import resolve_device
from dd_bench.pipeline.references import reference_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--protocol", default="quick")
    parser.add_argument("--models", nargs="+", default=["convnet", "mlp"])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--kind", default="full_data", choices=["full_data"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("baselines/references"))
    args = parser.parse_args()
    command = "python scripts/record_reference.py " + shlex.join(sys.argv[1:])
    real = load_dataset(args.dataset, progress=False).to(resolve_device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        records = reference_records(real=real, protocol=get_protocol(args.protocol), models=args.models,
                                    seeds=list(range(args.seeds)), ipcs=[], results_dir=Path(tmp),
                                    kinds=(args.kind,), progress=False, cache_dir=Path(tmp) / "cache")
    for rec in records:
        rec.extra["recorded_reference"] = (f"recorded {time.strftime('%Y-%m-%d')} on {rec.device}, git "
                                           f"{(rec.git_sha or 'unknown')[:10]}, by `{command}`")
        rec.extra["command"] = command
        path = args.out / f"{args.dataset}-{args.protocol}-{args.kind}-{rec.model}.json"
        atomic_write_json(path, rec.to_dict(), indent=2)
        print(f"{path}: {rec.acc_mean:.2f} +- {rec.acc_std:.2f} ({len(rec.seeds)} seed(s), {rec.eval_seconds:.1f} s)")


if __name__ == "__main__":
    main()
