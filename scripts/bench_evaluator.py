"""Evaluator and DSA speed, measured side by side in one run (ratios, not absolute targets).

1. Evaluating S seeds of ConvNet on a CIFAR-10-shaped IPC 10 set (100 x 3 x 32 x 32, 10 classes) under the
   `mtt` protocol: the batched (vmap) path vs one network at a time. Each path trains for --passes passes
   after a warm-up; seconds per pass are extrapolated to the protocol's 1001 passes.
   Targets (issue 2): >= 3x on a GPU, not slower on the CPU; the official evaluate_synset takes about 8 s per
   network (42 s for 5) on one H100, and the target is 5 networks in under 6 s there.
2. S networks trained by a plain re-implementation of the official ``evaluate_synset`` loop (kept in this
   script: a DataLoader over a TensorDataset with shuffle, DSA per batch, CE, SGD 0.9 / 5e-4, the per-batch
   accuracy bookkeeping through numpy, the lr x0.1 with a fresh SGD after pass epochs // 2 + 1) vs dd-bench's
   one-at-a-time path, network by network alternating the two (drift cancels). Target (issue 7): dd-bench at most
   1.0x the plain loop's time on the CPU.
3. DSA on a 256-image 32x32 batch vs one ConvNet training step (forward + backward + SGD) on that batch.
   Target: DSA < 10% of the step.

Usage: python scripts/bench_evaluator.py [--device auto] [--seeds 5] [--passes 20] [--only-official]
                                         [--out results/bench.json]
Synthetic random tensors stand in for the images: the cost does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dd_bench.augment import DSA
from dd_bench.eval.mtt import train_networks
from dd_bench.eval.protocol import custom_protocol, get_protocol
from dd_bench.models import create_model
from dd_bench.pipeline.device import resolve_device
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report
from dd_bench.tracking.provenance import PeakMemory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_evaluation(*, device: torch.device, seeds: int, passes: int, batched: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(100, 3, 32, 32, generator=g).to(device)  # CIFAR-10-shaped IPC 10
    labels = torch.arange(10).repeat_interleave(10).to(device)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=32)
    kw = dict(model="convnet", images=images, targets=labels, num_classes=10, lr=0.01, seeds=list(range(seeds)),
              augment=dsa, batched=batched, progress=False)
    train_networks(protocol=custom_protocol("mtt", epochs=2), **kw)  # warm-up: kernels, allocator, vmap tracing
    tracker = PeakMemory(device)
    _sync(device)
    start = time.perf_counter()
    with tracker:
        train_networks(protocol=custom_protocol("mtt", epochs=passes - 1), **kw)
        _sync(device)
    per_pass = (time.perf_counter() - start) / passes
    full = get_protocol("mtt").passes
    return {"path": "batched (vmap)" if batched else "sequential", "seeds": seeds, "passes_timed": passes,
            "seconds_per_pass": per_pass, "extrapolated_seconds_1001_passes": per_pass * full,
            "peak_memory": tracker.as_dict()}


def official_plain_loop(*, images: torch.Tensor, labels: torch.Tensor, dsa: DSA, passes: int, seed: int) -> None:
    """One network the way DC/MTT's ``evaluate_synset`` trains it (utils.py ``epoch('train', ...)``), written
    plainly."""
    import numpy as np
    from torch.utils.data import DataLoader, TensorDataset

    device = images.device
    net = create_model("convnet", num_classes=10, in_channels=3, image_size=(32, 32)).to(device)
    lr, epochs = 0.01, passes - 1
    optimizer = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=0.0005)
    criterion = torch.nn.CrossEntropyLoss().to(device)
    loader = DataLoader(TensorDataset(images, labels), batch_size=256, shuffle=True, num_workers=0)
    g = torch.Generator(device=device).manual_seed(seed)
    for ep in range(epochs + 1):
        net.train()
        loss_avg, acc_avg, num_exp = 0.0, 0, 0
        for img, lab in loader:
            img = dsa(img, generator=g)
            output = net(img)
            loss = criterion(output, lab)
            acc_avg += int(np.sum(np.equal(np.argmax(output.cpu().data.numpy(), axis=-1), lab.cpu().data.numpy())))
            loss_avg += loss.item() * lab.shape[0]
            num_exp += lab.shape[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if ep == epochs // 2 + 1:
            lr *= 0.1
            optimizer = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=0.0005)


def time_official_vs_ours(*, device: torch.device, seeds: int, passes: int) -> dict:
    """Network by network, alternating plain and ours in ABBA order (plain first for even networks, ours first for
    odd ones), so machine drift and whichever-runs-first effects cancel out of the ratio; the median of the
    per-network ratios is reported beside the ratio of the sums (one slow outlier moves the sum, not the median)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randn(100, 3, 32, 32, generator=g).to(device)
    labels = torch.arange(10).repeat_interleave(10).to(device)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=32)
    plain, ours = [], []
    for s in range(seeds):
        order = (("plain", plain), ("ours", ours))
        for name, times in (order if s % 2 == 0 else order[::-1]):
            _sync(device)
            start = time.perf_counter()
            if name == "plain":
                official_plain_loop(images=images, labels=labels, dsa=dsa, passes=passes, seed=s)
            else:
                train_networks(model="convnet", images=images, targets=labels, num_classes=10, lr=0.01, seeds=[s],
                               augment=dsa, batched=False, progress=False,
                               protocol=custom_protocol("mtt", epochs=passes - 1))
            _sync(device)
            times.append(time.perf_counter() - start)
    pair_ratios = sorted(o / p for o, p in zip(ours, plain, strict=True))
    mid = len(pair_ratios) // 2
    median = pair_ratios[mid] if len(pair_ratios) % 2 else (pair_ratios[mid - 1] + pair_ratios[mid]) / 2
    return {"networks": seeds, "passes": passes, "plain_seconds": plain, "ours_seconds": ours,
            "ours_vs_plain": sum(ours) / sum(plain), "median_pair_ratio": median}


def time_dsa_vs_step(*, device: torch.device, repeats: int) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(256, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (256,), device=device)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=32)
    net = create_model("convnet", num_classes=10, in_channels=3, image_size=(32, 32)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def augment() -> None:
        dsa(x, generator=g)

    timings = {}
    for name, fn in (("dsa", augment), ("train_step", step)):
        for _ in range(3):
            fn()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        _sync(device)
        timings[name] = (time.perf_counter() - start) / repeats
    return {"dsa_seconds": timings["dsa"], "train_step_seconds": timings["train_step"],
            "dsa_fraction_of_step": timings["dsa"] / timings["train_step"], "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=20, help="timed passes per path (after a 3-pass warm-up)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats of the DSA / train-step comparison")
    parser.add_argument("--only-official", action="store_true",
                        help="time only the plain-loop comparison (part 2), e.g. with more --seeds for a tighter ratio")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    device = resolve_device(args.device)
    report = {"benchmark": "bench_evaluator", "provenance": collect_provenance(device),
              "torch_threads": torch.get_num_threads(), "command": "python scripts/bench_evaluator.py "
              f"--device {args.device} --seeds {args.seeds} --passes {args.passes} --repeats {args.repeats}"}
    print(f"device: {report['provenance']['device']} ({report['provenance']['device_name']}), "
          f"torch {torch.__version__}, {report['torch_threads']} threads")

    if args.only_official:
        report["command"] += " --only-official"
        official = time_official_vs_ours(device=device, seeds=args.seeds, passes=args.passes)
        report["official_vs_ours"] = official
        print(f"plain {sum(official['plain_seconds']):.2f} s, dd-bench {sum(official['ours_seconds']):.2f} s over "
              f"{official['networks']} networks -> {official['ours_vs_plain']:.3f}x, median per network "
              f"{official['median_pair_ratio']:.3f}x (target <= 1.0x on the CPU)")
        write_report(report, args.out)
        return
    batched = time_evaluation(device=device, seeds=args.seeds, passes=args.passes, batched=True)
    sequential = time_evaluation(device=device, seeds=args.seeds, passes=args.passes, batched=False)
    speedup = sequential["seconds_per_pass"] / batched["seconds_per_pass"]
    report["evaluation"] = {"batched": batched, "sequential": sequential, "batched_speedup": speedup}
    for r in (batched, sequential):
        print(f"  {r['path']:15s} {r['seeds']} seeds: {1000 * r['seconds_per_pass']:8.1f} ms/pass -> "
              f"{r['extrapolated_seconds_1001_passes']:7.1f} s for 1001 passes; peak {r['peak_memory']}")
    target = ">= 3x" if device.type == "cuda" else ">= 1x (not slower)"
    print(f"batched vs sequential: {speedup:.2f}x (target on {device.type}: {target}); the evaluator's default "
          f"(batched=None) uses {'vmap' if device.type == 'cuda' else 'the sequential path'} here")

    official = time_official_vs_ours(device=device, seeds=args.seeds, passes=args.passes)
    report["official_vs_ours"] = official
    print(f"official evaluate_synset loop (plain, in this script) vs dd-bench, {official['networks']} networks x "
          f"{official['passes']} passes, alternating: plain {sum(official['plain_seconds']):.2f} s, dd-bench "
          f"{sum(official['ours_seconds']):.2f} s -> {official['ours_vs_plain']:.3f}x the plain time, median per "
          f"network {official['median_pair_ratio']:.3f}x (target <= 1.0x on the CPU)")

    dsa = time_dsa_vs_step(device=device, repeats=args.repeats)
    report["dsa_vs_step"] = dsa
    print(f"DSA on 256x3x32x32: {1000 * dsa['dsa_seconds']:.2f} ms; ConvNet train step: "
          f"{1000 * dsa['train_step_seconds']:.2f} ms; DSA = {100 * dsa['dsa_fraction_of_step']:.1f}% of a step "
          f"(target < 10%)")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
