"""Trajectory-matching iteration cost: seconds per iteration and peak memory, measured side by side in one run.

Modes, all on the same ConvNet student, batches and DSA parameters:
* ``plain``: a plain unrolled implementation kept here as the reference (MTT's structure: per-layer parameter
  tensors concatenated into one flat vector every step, the student called through a module, the whole graph
  kept and back-propagated at the end);
* ``exact``: dd-bench's unrolled gradient (dd_bench/methods/tm/gradient.py, ``grad_mode=unrolled``);
* ``tesla``: dd-bench's constant-memory gradient (``grad_mode=tesla``, an approximation);
* ``recompute``: dd-bench's exact gradient with ``tesla``'s memory (``grad_mode=recompute``, a reverse sweep).

Settings (issue 3): CIFAR-10-shaped IPC 10 (syn_steps 30, batch_syn 100) and IPC 50 (syn_steps 30, batch_syn 500).
Anchor: a plain unrolled implementation on one H100 takes 0.33 s/it and 8.6 GiB at IPC 10, 0.78 s and 42 GiB at
IPC 50. Targets: exact <= half the plain time at no more memory; tesla within 1.35x of exact.
On a CPU use ``--syn-steps 3 --ipcs 10`` (one full-size iteration takes minutes there); ratios are what count.

Usage: python scripts/bench_tm.py [--device auto] [--ipcs 10 50] [--syn-steps 30] [--repeats 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dd_bench.augment import DSA
from dd_bench.experts import FlatModel
from dd_bench.methods.tm.gradient import InnerStep, matching_gradient
from dd_bench.methods.tm.labels import HardTargets
from dd_bench.models import create_model
from dd_bench.pipeline.device import resolve_device
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report
from dd_bench.tracking.autograd_memory import SavedTensorMeter
from dd_bench.tracking.provenance import PeakMemory


def plain_unrolled(*, module: torch.nn.Module, theta0: torch.Tensor, theta_target: torch.Tensor,
                   images: torch.Tensor, alpha: torch.Tensor, labels: torch.Tensor, plan: list[InnerStep],
                   augment: DSA) -> float:
    """The reference: MTT-style unrolling with per-layer tensors re-flattened at every step."""
    shapes = [p.shape for p in module.parameters()]
    names = [n for n, _ in module.named_parameters()]
    params = [theta0.detach().clone().requires_grad_(True)]
    for step in plan:
        chunks = torch.split(params[-1], [s.numel() for s in shapes])
        layer = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        x = augment.apply(images[step.indices], step.augment_params)
        out = torch.func.functional_call(module, layer, (x,))
        loss = F.cross_entropy(out, labels[step.indices])
        (g,) = torch.autograd.grad(loss, params[-1], create_graph=True)
        params.append(torch.cat([(params[-1] - alpha * g).reshape(-1)]))
    distance = ((params[-1] - theta_target) ** 2).sum() / ((params[0].detach() - theta_target) ** 2).sum()
    distance.backward()
    return float(distance.detach())


def bench_setting(*, device: torch.device, ipc: int, syn_steps: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(0)
    n = 10 * ipc
    batch = min(n, 100 if ipc <= 10 else 500)
    module = create_model("convnet", num_classes=10, in_channels=3, image_size=(32, 32)).to(device)
    flat = FlatModel(module).to(device)
    theta0 = flat.flatten(module).to(device)
    theta_target = theta0 + 0.01 * torch.randn(theta0.shape, generator=g).to(device)
    images0 = torch.randn(n, 3, 32, 32, generator=g).to(device)
    labels = torch.arange(10, device=device).repeat_interleave(ipc)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=32)
    g_aug = torch.Generator(device=device).manual_seed(1)
    plan = []
    for _ in range(syn_steps):
        idx = torch.randperm(n, generator=g)[:batch].to(device)
        plan.append(InnerStep(idx, dsa.sample_params(len(idx), generator=g_aug)))

    def run(mode: str) -> float:
        images = images0.clone().requires_grad_(True)
        alpha = torch.tensor(0.01, device=device, requires_grad=True)
        if mode == "plain":
            return plain_unrolled(module=module, theta0=theta0, theta_target=theta_target, images=images,
                                  alpha=alpha, labels=labels, plan=plan, augment=dsa)
        return matching_gradient("unrolled" if mode == "exact" else mode, forward=flat.forward, theta0=theta0,
                                 theta_target=theta_target, images=images, alpha=alpha,
                                 targets_of=HardTargets(labels), plan=plan, augment=dsa)

    results = {}
    for mode in ("plain", "exact", "tesla", "recompute"):
        with SavedTensorMeter() as meter:  # also the warm-up
            run(mode)
        # TESLA also keeps the N student parameter vectors (float32) outside autograd.
        stored = syn_steps * flat.num_params * 4 if mode in ("tesla", "recompute") else 0
        tracker = PeakMemory(device)
        with tracker:
            start = time.perf_counter()
            for _ in range(repeats):
                loss = run(mode)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = (time.perf_counter() - start) / repeats
        results[mode] = {"seconds_per_iteration": seconds, "peak_memory": tracker.as_dict(), "loss": loss,
                         "activation_bytes": meter.peak_bytes + stored, "stored_parameter_bytes": stored}
    results["ratios"] = {
        "exact_activations_vs_plain": results["exact"]["activation_bytes"] / results["plain"]["activation_bytes"],
        "tesla_activations_vs_exact": results["tesla"]["activation_bytes"] / results["exact"]["activation_bytes"],
        "recompute_time_vs_exact": results["recompute"]["seconds_per_iteration"]
        / results["exact"]["seconds_per_iteration"],
        "recompute_activations_vs_exact": results["recompute"]["activation_bytes"]
        / results["exact"]["activation_bytes"],
        "exact_time_vs_plain": results["exact"]["seconds_per_iteration"] / results["plain"]["seconds_per_iteration"],
        "tesla_time_vs_exact": results["tesla"]["seconds_per_iteration"] / results["exact"]["seconds_per_iteration"],
    }
    return {"ipc": ipc, "images": n, "batch_syn": batch, "syn_steps": syn_steps, "repeats": repeats, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ipcs", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--syn-steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    report = {"benchmark": "bench_tm", "provenance": collect_provenance(device),
              "torch_threads": torch.get_num_threads(),
              "command": f"python scripts/bench_tm.py --device {args.device} --ipcs {' '.join(map(str, args.ipcs))} "
                         f"--syn-steps {args.syn_steps} --repeats {args.repeats}", "settings": []}
    print(f"device: {report['provenance']['device']} ({report['provenance']['device_name']}), "
          f"torch {torch.__version__}")
    for ipc in args.ipcs:
        r = bench_setting(device=device, ipc=ipc, syn_steps=args.syn_steps, repeats=args.repeats)
        report["settings"].append(r)
        print(f"IPC {ipc} (syn_steps {r['syn_steps']}, batch_syn {r['batch_syn']}):")
        for mode in ("plain", "exact", "tesla", "recompute"):
            m = r[mode]
            peak = m["peak_memory"]["bytes"]
            print(f"  {mode:6s} {m['seconds_per_iteration']:8.3f} s/it   saved-for-backward (+stored params) "
                  f"{m['activation_bytes'] / 2**30:.3f} GiB   device peak "
                  f"{'n/a' if peak is None else f'{peak / 2**30:.2f} GiB'} ({m['peak_memory']['kind']})")
        print(f"  exact / plain time: {r['ratios']['exact_time_vs_plain']:.2f} (target <= 0.5); tesla / exact time: "
              f"{r['ratios']['tesla_time_vs_exact']:.2f} (target <= 1.35); recompute (exact) / exact time: "
              f"{r['ratios']['recompute_time_vs_exact']:.2f} at {r['ratios']['recompute_activations_vs_exact']:.2f}x "
              f"the saved bytes")
    if device.type != "cuda":
        print("note: the CPU device peak is the process RSS since start; compare the saved-for-backward bytes")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
