"""The two exact trajectory-matching gradients side by side at the presets' shapes, and what ``grad_mode=auto`` picks.

For each preset (its IPC, syn_steps N, batch_syn, data shape and student) this measures, in one run on one device:
* the unrolled graph's saved bytes as ``auto`` estimates them (a 1- and 2-image probe, times N) and as they are
  (``SavedTensorMeter`` over a real unrolled iteration), so the estimate is checked where unrolled fits;
* seconds per iteration of ``unrolled`` and ``recompute`` (the same student, batches and DSA draws), their ratio;
* the mode the rule picks (dd_bench/methods/tm/grad_mode.py) and whether it is the faster one measured.
A preset whose unrolled graph exceeds the rule's memory budget is not run unrolled ("does not fit"); ``--estimate``
presets are only estimated. ``--max-steps`` caps N on a slow device, and ``PRESET:N`` measures a preset's batch at N
steps (a smaller graph of the same shape): both recorded, and the rule is judged at the N that ran.

Usage: python scripts/bench_grad_mode.py [--device auto] [--presets mtt_cifar10_ipc1 ...] [--estimate ...]
       [--max-steps N] [--repeats 2] [--out results/bench_grad_mode_cpu.json]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from dd_bench.augment import DSA
from dd_bench.experts import FlatModel
from dd_bench.methods.tm.grad_mode import (
    CPU_UNROLLED_MAX_BYTES,
    MEMORY_FRACTION,
    choose_grad_mode,
    device_memory_bytes,
    dsa_family_augments,
    unrolled_graph_bytes,
)
from dd_bench.methods.tm.gradient import InnerStep, matching_gradient
from dd_bench.methods.tm.labels import HardTargets
from dd_bench.models import create_model
from dd_bench.pipeline.device import resolve_device
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report
from dd_bench.tracking.autograd_memory import SavedTensorMeter

ROOT = Path(__file__).resolve().parents[1]
# (channels, height=width, classes) of the data sets the MTT presets use
SHAPES = {"cifar10": (3, 32, 10), "cifar100": (3, 32, 100), "tiny_imagenet": (3, 64, 200)}
MEASURED = ["mtt_cifar10_ipc1", "mtt_cifar10_ipc10", "mtt_cifar10_ipc50"]
ESTIMATED = ["mtt_cifar100_ipc1", "mtt_cifar100_ipc10", "mtt_cifar100_ipc50", "mtt_tiny_imagenet_ipc1",
             "mtt_tiny_imagenet_ipc10", "mtt_tiny_imagenet_ipc50"]


def preset_shape(name: str) -> dict:
    cfg = OmegaConf.load(ROOT / "conf" / "experiment" / f"{name}.yaml")
    dataset = name.split("_", 1)[1].rsplit("_ipc", 1)[0]  # mtt_<dataset>_ipc<k>
    channels, size, classes = SHAPES[dataset]
    n = classes * int(cfg.ipc)
    return {"preset": name, "dataset": dataset, "ipc": int(cfg.ipc), "images": n,
            "batch_syn": int(cfg.method.get("batch_syn", 0) or n), "syn_steps": int(cfg.method.syn_steps),
            "model": str(cfg.method.get("expert_model", "convnet")), "channels": channels, "size": size,
            "classes": classes}


def student(shape: dict, device: torch.device) -> tuple[FlatModel, torch.Tensor]:
    module = create_model(shape["model"], num_classes=shape["classes"], in_channels=shape["channels"],
                          image_size=(shape["size"], shape["size"]), width=128)
    flat = FlatModel(module).to(device)
    return flat, flat.flatten(module).to(device)


def estimate(shape: dict, device: torch.device, steps: int) -> int:
    flat, theta = student(shape, device)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=shape["size"])
    g = torch.Generator(device=device).manual_seed(0)
    return unrolled_graph_bytes(forward=flat.forward, theta=theta, image_shape=(shape["channels"], shape["size"],
                                shape["size"]), num_classes=shape["classes"], batch=min(shape["batch_syn"],
                                shape["images"]), steps=steps, augments=dsa_family_augments(dsa, g))


def measure(shape: dict, device: torch.device, steps: int, repeats: int, modes: list[str]) -> dict:
    g = torch.Generator().manual_seed(0)
    flat, theta0 = student(shape, device)
    theta_target = theta0 + 0.01 * torch.randn(theta0.shape, generator=g).to(device)
    n, batch, size = shape["images"], min(shape["batch_syn"], shape["images"]), shape["size"]
    images0 = torch.randn(n, shape["channels"], size, size, generator=g).to(device)
    labels = torch.arange(shape["classes"], device=device).repeat_interleave(shape["ipc"])
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=size)
    g_aug = torch.Generator(device=device).manual_seed(1)
    plan, chunks = [], []
    for _ in range(steps):  # MTT's chunks of a fresh permutation, as TrajectoryMatching._plan draws them
        if not chunks:
            chunks = list(torch.split(torch.randperm(n, generator=g), batch))
        idx = chunks.pop(0).to(device)
        plan.append(InnerStep(idx, dsa.sample_params(len(idx), generator=g_aug)))
    out = {}
    for mode in modes:
        def run(mode: str = mode) -> float:
            images = images0.clone().requires_grad_(True)
            alpha = torch.tensor(0.01, device=device, requires_grad=True)
            return matching_gradient(mode, forward=flat.forward, theta0=theta0, theta_target=theta_target,
                                     images=images, alpha=alpha, targets_of=HardTargets(labels), plan=plan,
                                     augment=dsa)
        with SavedTensorMeter() as meter:  # also the warm-up
            run()
        start = time.perf_counter()
        for _ in range(repeats):
            loss = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out[mode] = {"seconds_per_iteration": (time.perf_counter() - start) / repeats, "loss": loss,
                     "saved_bytes": meter.peak_bytes}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--presets", nargs="+", default=MEASURED)
    parser.add_argument("--estimate", nargs="*", default=ESTIMATED)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    memory = device_memory_bytes(device)
    report = {"benchmark": "bench_grad_mode", "load_average_before": os.getloadavg(),
              "provenance": collect_provenance(device),
              "torch_threads": torch.get_num_threads(), "device_memory_bytes": memory,
              "rule": {"memory_fraction": MEMORY_FRACTION, "cpu_unrolled_max_bytes": CPU_UNROLLED_MAX_BYTES},
              "command": "python scripts/bench_grad_mode.py " + " ".join(
                  [f"--device {args.device}", "--presets", *args.presets, "--estimate", *args.estimate,
                   *([f"--max-steps {args.max_steps}"] if args.max_steps else []), f"--repeats {args.repeats}"]),
              "settings": []}
    print(f"device: {device} ({report['provenance']['device_name']}), memory {memory / 2**30:.1f} GiB, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for entry in [*args.presets, *[f"{e}:est" for e in args.estimate]]:
        name, _, steps_arg = entry.partition(":")
        shape = preset_shape(name)
        full = estimate(shape, device, shape["syn_steps"])
        picked = choose_grad_mode(unrolled_bytes=full, device_memory_bytes=memory, device_type=device.type)
        row = {**shape, "entry": entry, "estimated_unrolled_bytes": full, "auto_picks": picked}
        line = (f"{entry:24s} N {shape['syn_steps']:3d} batch {row['batch_syn']:5d}: unrolled graph "
                f"{full / 2**30:7.2f} GiB (estimate) -> auto picks {picked}")
        if steps_arg != "est":
            steps = int(steps_arg) if steps_arg else min(shape["syn_steps"], args.max_steps or shape["syn_steps"])
            run_est = estimate(shape, device, steps)
            fits = run_est <= MEMORY_FRACTION * memory
            modes = ["unrolled", "recompute"] if fits else ["recompute"]
            m = measure(shape, device, steps, args.repeats, modes)
            row.update(measured_steps=steps, estimated_bytes_at_measured_steps=run_est, **m)
            if fits:
                u, r = m["unrolled"]["seconds_per_iteration"], m["recompute"]["seconds_per_iteration"]
                row["recompute_time_vs_unrolled"] = r / u
                row["estimate_vs_measured"] = run_est / m["unrolled"]["saved_bytes"]
                faster = "unrolled" if u <= r else "recompute"
                # the rule is judged at the measured N (it sees the measured graph's size there)
                at_steps = choose_grad_mode(unrolled_bytes=run_est, device_memory_bytes=memory,
                                            device_type=device.type)
                row.update(faster=faster, auto_at_measured_steps=at_steps, auto_is_faster=at_steps == faster)
                line += (f"\n    at N {steps}: unrolled {u:.2f} s/it, recompute {r:.2f} s/it (recompute/unrolled "
                         f"{r / u:.2f}); graph {m['unrolled']['saved_bytes'] / 2**30:.2f} GiB measured, estimate "
                         f"x{row['estimate_vs_measured']:.3f}; auto picks {at_steps}, faster: {faster}")
            else:
                line += (f"\n    at N {steps}: unrolled does not fit ({run_est / 2**30:.1f} GiB > "
                         f"{MEMORY_FRACTION:.0%} of memory); recompute {m['recompute']['seconds_per_iteration']:.2f}"
                         " s/it")
        report["settings"].append(row)
        report["load_average_after"] = os.getloadavg()  # what else ran: timings under load are indicative only
        print(line, flush=True)
        write_report(report, args.out)  # after every setting: a stopped run keeps what it measured


if __name__ == "__main__":
    main()
