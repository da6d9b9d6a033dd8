"""The C heap setting (dd_bench/tracking/allocator.py) side by side: glibc's defaults vs dd-bench's, on a CPU.

Each round runs two fresh processes in turn, one with ``DD_BENCH_MALLOC=system`` (glibc's mmap and trim
thresholds) and one with the default (both raised to 1 GiB by ``tune_allocator``); each trains --experts ConvNet
experts one after another for --epochs epochs on a CIFAR-10-shaped random dataset (--images x 3 x 32 x 32, DSA,
batch 256: the MTT expert recipe, whose 32 MiB activations glibc maps and unmaps at every step), then passes
--test-images through the trained network in batches of 256, as an evaluation does. A fresh process per run because
the setting is process-wide and the heap keeps its history. Printed per round: wall, user and kernel seconds and
peak RSS of each child; then the median ratio default/system of the wall time (below 1: dd-bench's setting is
faster) and of the peak memory. The cost does not depend on pixel values.

Usage: python scripts/bench_allocator.py [--rounds 3] [--experts 1] [--epochs 2] [--images 2048]
       [--test-images 2048] [--out results/bench_allocator_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD_FLAG = "--child"


def child(args: argparse.Namespace) -> None:
    from dd_bench.tracking.allocator import tune_allocator

    state = tune_allocator()  # first: before torch allocates anything
    import torch

    from dd_bench.experts import ExpertRecipe, expert_flat_model, init_expert_state, train_expert_epochs
    from scripts.bench_experts import random_cifar_like

    real = random_cifar_like(args.images, torch.device("cpu"))
    recipe = ExpertRecipe(model="convnet", epochs=args.epochs)
    flat = expert_flat_model(real, recipe)
    start = time.perf_counter()
    states = [init_expert_state(real, recipe, i, flat=flat) for i in range(args.experts)]
    train_expert_epochs(states, real=real, recipe=recipe, flat=flat, batched=False, epochs=args.epochs)
    trained = time.perf_counter()
    images = real.train_images[: args.test_images].float() / 255
    with torch.no_grad():
        for i in range(0, len(images), 256):  # the first expert's final weights, in the batches a test pass uses
            flat.forward(states[0].theta, images[i:i + 256])
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"allocator": state, "train_seconds": trained - start, "test_seconds": done - trained,
                      "seconds": done - start, "user_seconds": usage.ru_utime, "sys_seconds": usage.ru_stime,
                      "peak_rss_bytes": usage.ru_maxrss * 1024, "torch_threads": torch.get_num_threads()}))


def run_child(argv: list[str], setting: str) -> dict:
    # Without any malloc setting of the caller's, which tune_allocator would honour in both children alike.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    env["DD_BENCH_MALLOC"] = setting
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, *argv], env=env, check=True,
                         capture_output=True, text=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--experts", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--images", type=int, default=2048, help="training images per expert epoch")
    parser.add_argument("--test-images", type=int, default=2048, help="images in the test pass after training")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from dd_bench.results import collect_provenance
    from dd_bench.results.bench_report import write_report

    work = ["--experts", str(args.experts), "--epochs", str(args.epochs), "--images", str(args.images),
            "--test-images", str(args.test_images)]
    rounds = []
    for r in range(args.rounds):
        pair = {"system": run_child(work, "system"), "tuned": run_child(work, "tuned")}
        rounds.append(pair)
        for name, res in pair.items():
            print(f"round {r + 1} {name:6s}: {res['seconds']:6.1f} s (train {res['train_seconds']:.1f}, test "
                  f"{res['test_seconds']:.1f}; user {res['user_seconds']:.1f}, kernel {res['sys_seconds']:.1f}), "
                  f"peak RSS {res['peak_rss_bytes'] / 2**30:.2f} GiB")
    wall = statistics.median(p["tuned"]["seconds"] / p["system"]["seconds"] for p in rounds)
    memory = statistics.median(p["tuned"]["peak_rss_bytes"] / p["system"]["peak_rss_bytes"] for p in rounds)
    print(f"median ratio dd-bench's setting / glibc's defaults: wall {wall:.2f}x, peak RSS {memory:.2f}x "
          f"({rounds[0]['tuned']['allocator']})")
    # The parent never tunes its own heap; each child's setting is in its round (rounds[i][setting]["allocator"]).
    provenance = {**collect_provenance("cpu"), "allocator": "per child process: see rounds[*].*.allocator"}
    report = {"benchmark": "bench_allocator", "provenance": provenance,
              "command": "python scripts/bench_allocator.py " + " ".join(
                  ["--rounds", str(args.rounds), *work]),
              "rounds": rounds, "median_wall_ratio_tuned_over_system": wall,
              "median_peak_rss_ratio_tuned_over_system": memory}
    write_report(report, args.out)


if __name__ == "__main__":
    main()
