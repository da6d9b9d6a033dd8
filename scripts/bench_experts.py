"""Expert-training throughput (expert-epochs per second): several experts at once (vmap) vs one at a time.

Both paths train the same --experts experts (ConvNet by default, DSA on every batch, batch 256, SGD or GSAM)
for --epochs epochs on a CIFAR-10-shaped random dataset (--images x 3 x 32 x 32, 10 classes), side by side in
one run, after a 1-step warm-up per path. The cost does not depend on pixel values.
The default 512 images keep a CPU run near two minutes (a 2-core CPU does about 1.5 s per 256-image ConvNet
step per expert sequentially, and vmap's grouped-convolution backward is about 4x slower there).
Target: >= 3x on a GPU. Anchor: the official buffer.py takes about 3 s per CIFAR-10 epoch (50,000 images) per
expert on one H100, i.e. about 0.33 expert-epochs/s; use --images 50000 there for the same scale.

Usage: python scripts/bench_experts.py [--device auto] [--experts 5] [--epochs 1] [--images 512]
       [--optimizer sgd|gsam] [--out results/bench_experts.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.experts import ExpertRecipe, expert_flat_model, init_expert_state, train_expert_epochs
from dd_bench.pipeline.device import resolve_device
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report
from dd_bench.tracking.provenance import PeakMemory


def random_cifar_like(n: int, device: torch.device) -> RealData:
    g = torch.Generator().manual_seed(0)
    return RealData(
        name=f"random-cifar10-shaped-{n}",
        train_images=torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
        train_labels=torch.arange(n) % 10,
        test_images=torch.zeros(10, 3, 32, 32, dtype=torch.uint8),
        test_labels=torch.arange(10),
        class_names=[str(c) for c in range(10)],
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2023, 0.1994, 0.2010),
        dsa_strategy="color_crop_cutout_flip_scale_rotate",
    ).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_path(real: RealData, recipe: ExpertRecipe, *, experts: int, epochs: int, batched: bool) -> dict:
    flat = expert_flat_model(real, recipe)
    warm = [init_expert_state(real, recipe, i, flat=flat) for i in range(experts)]
    train_expert_epochs(warm, real=real, recipe=recipe, flat=flat, batched=batched, max_steps=1)  # kernels, vmap
    states = [init_expert_state(real, recipe, i, flat=flat) for i in range(experts)]
    tracker = PeakMemory(real.device)
    _sync(real.device)
    start = time.perf_counter()
    with tracker:
        train_expert_epochs(states, real=real, recipe=recipe, flat=flat, batched=batched, epochs=epochs)
        _sync(real.device)
    seconds = time.perf_counter() - start
    return {"path": "batched (vmap)" if batched else "sequential", "experts": experts, "epochs": epochs,
            "seconds": seconds, "expert_epochs_per_second": experts * epochs / seconds,
            "seconds_per_expert_epoch": seconds / (experts * epochs),
            "seconds_per_expert_epoch_at_50000_images": seconds / (experts * epochs) * 50000 / len(real.train_labels),
            "peak_memory": tracker.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--experts", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--images", type=int, default=512, help="training images (50000 = CIFAR-10 scale)")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "gsam"])
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    real = random_cifar_like(args.images, device)
    recipe = ExpertRecipe(model=args.model, epochs=args.epochs, optimizer=args.optimizer)
    report = {"benchmark": "bench_experts", "provenance": collect_provenance(device),
              "torch_threads": torch.get_num_threads(), "recipe": recipe.to_dict(), "images": args.images,
              "command": f"python scripts/bench_experts.py --device {args.device} --experts {args.experts} "
                         f"--epochs {args.epochs} --images {args.images} --model {args.model} "
                         f"--optimizer {args.optimizer}"}
    print(f"device: {report['provenance']['device']} ({report['provenance']['device_name']}), torch "
          f"{torch.__version__}, {report['torch_threads']} threads; {args.experts} x {args.model} experts, "
          f"{args.optimizer}, {args.images} images of 3x32x32, {args.epochs} epoch(s)")

    results = {}
    for batched in (True, False):
        r = time_path(real, recipe, experts=args.experts, epochs=args.epochs, batched=batched)
        results["batched" if batched else "sequential"] = r
        print(f"  {r['path']:15s} {r['expert_epochs_per_second']:7.3f} expert-epochs/s "
              f"({r['seconds_per_expert_epoch']:.2f} s per expert-epoch; "
              f"{r['seconds_per_expert_epoch_at_50000_images']:.1f} s at 50,000 images); peak {r['peak_memory']}")
    speedup = results["batched"]["expert_epochs_per_second"] / results["sequential"]["expert_epochs_per_second"]
    report.update(results, batched_speedup=speedup)
    target = ">= 3x" if device.type == "cuda" else "none (get_experts trains one at a time on the CPU)"
    print(f"batched vs sequential: {speedup:.2f}x (target on {device.type}: {target}); official buffer.py anchor: "
          f"~3 s per expert-epoch at 50,000 images on one H100")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
