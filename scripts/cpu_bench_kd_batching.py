"""Where the kd protocols should batch evaluation seeds on the CPU: kd-quick on digits random subsets of growing
size, the seeds trained together (one vmapped step, ``batched=True``) vs one after another (``batched=False``),
side by side in one run, alternating the two paths. Prints the time ratio per pass size (images x H x W) and
where :data:`dd_bench.eval.kd.KD_CPU_BATCHED_UP_TO` puts the switch. CPU only (hence no GPU record): on CUDA
the evaluator batches every seed group it can, which ``scripts/bench_evaluator.py`` measures.

The kd step on a few tiny images is dominated by its small ops (crop, mix, label source, AdamW over every tensor),
which one batched step pays once for all seeds; on larger sets the grouped convolutions of the vmapped step cost
more than S separate ones on the CPU. Both paths draw the same random numbers, so they train the same networks up
to floating-point reassociation.

Usage: python scripts/cpu_bench_kd_batching.py [--ipcs 1 2 3 5 10] [--seeds 3] [--epochs 200] [--repeats 2]
       [--out results/cpu_bench_kd_batching.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from dd_bench.data import load_dataset
from dd_bench.eval import evaluate, get_protocol
from dd_bench.eval.kd import KD_CPU_BATCHED_UP_TO
from dd_bench.methods import create_method
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report


def timed_evaluation(synset, *, real, protocol, seeds: int, batched: bool) -> float:
    start = time.perf_counter()
    evaluate(synset, real=real, protocol=protocol, models=["convnet"], seeds=list(range(seeds)), batched=batched,
             progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ipcs", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=200, help="kd-quick's 200; fewer for a smoke run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    real = load_dataset("digits", progress=False)
    protocol = dataclasses.replace(get_protocol("kd-quick"), epochs=args.epochs)
    report = {"benchmark": "cpu_bench_kd_batching", "provenance": collect_provenance(real.device),
              "torch_threads": torch.get_num_threads(), "threshold_pixels": KD_CPU_BATCHED_UP_TO,
              "command": f"python scripts/cpu_bench_kd_batching.py --ipcs {' '.join(map(str, args.ipcs))} --seeds "
                         f"{args.seeds} --epochs {args.epochs} --repeats {args.repeats}", "rows": []}
    print(f"kd-quick ({args.epochs} epochs), ConvNet, {args.seeds} seeds, digits random subsets, "
          f"{report['torch_threads']} threads; switch at {KD_CPU_BATCHED_UP_TO} pixels a pass")
    for ipc in args.ipcs:
        synset = create_method("random").distill(real, ipc=ipc, seed=0, progress=False)
        pixels = len(synset.images) * real.image_size[0] * real.image_size[1]
        timed_evaluation(synset, real=real, protocol=dataclasses.replace(protocol, epochs=2), seeds=args.seeds,
                         batched=True)  # warm-up
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for batched in (True, False):
                times[batched].append(timed_evaluation(synset, real=real, protocol=protocol, seeds=args.seeds,
                                                       batched=batched))
        row = {"ipc": ipc, "pass_pixels": pixels, "batched_seconds": times[True], "sequential_seconds": times[False],
               "batched_vs_sequential_time": sum(times[True]) / sum(times[False]),
               "default_path": "batched" if pixels <= KD_CPU_BATCHED_UP_TO else "sequential"}
        report["rows"].append(row)
        print(f"ipc {ipc:3d} ({pixels:6d} px): batched {sum(times[True]) / args.repeats:6.2f} s, sequential "
              f"{sum(times[False]) / args.repeats:6.2f} s -> {row['batched_vs_sequential_time']:.2f}x the time "
              f"(default: {row['default_path']})")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
