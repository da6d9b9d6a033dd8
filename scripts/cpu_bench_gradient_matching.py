"""DC's outer iteration: dd-bench's ``method=dc`` against a plain re-implementation of ``main.py``'s loop, side by side.

The cost of gradient matching is the per-class gradient of the real batch (``batch_real`` images per class through
the network, backward) plus the synthetic side's double backward. The plain loop below is written from the
algorithm of VICO-UoE/DatasetCondensation ``main.py`` L136-206 (not copied): numpy's global RNG for the real
batches, a python loop over classes, ``torch.autograd.grad`` on the real and synthetic losses, the layer-wise
distance, one SGD step on the images, the inner loop on the synthetic set. Both sides use dd-bench's ConvNet, the
same shapes and the same IPC, so the ratio measures the loop and nothing else. Runs alternate (A, B, A, B, ...)
so drift on the machine hits both; the median of each is reported.

    python scripts/cpu_bench_gradient_matching.py --out results/cpu_bench_gradient_matching.json

Defaults: a CIFAR-10-shaped problem (10 classes, 3x32x32, random pixels), ConvNet, batch_real 256, IPC 1 and 10
(IPC 10: outer 10, inner 50 as get_loops), 3 iterations per timing, 3 repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dd_bench.data import RealData
from dd_bench.methods import create_method
from dd_bench.methods.matching.gradient_matching import loops_for, match_distance
from dd_bench.models import create_model
from dd_bench.tracking.provenance import collect_provenance


def fake_real(num_classes: int, per_class: int, size: int, channels: int) -> RealData:
    g = torch.Generator().manual_seed(0)
    n = num_classes * per_class
    images = (torch.rand(n, channels, size, size, generator=g) * 255).to(torch.uint8)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    test = (torch.rand(10, channels, size, size, generator=g) * 255).to(torch.uint8)
    return RealData(name="bench", train_images=images, train_labels=labels, test_images=test,
                    test_labels=labels[:10], class_names=[str(c) for c in range(num_classes)],
                    mean=(0.5,) * channels, std=(0.25,) * channels, dsa_strategy="color_crop_cutout_flip_scale_rotate")


def plain_iterations(real: RealData, *, ipc: int, iterations: int, batch_real: int) -> None:
    """main.py's loop, plainly: fresh ConvNet, outer loops of per-class matching, an SGD step, the inner loop."""
    k, outer, inner = real.num_classes, *loops_for(ipc)
    x_all = real.to_model_space(real.train_images)
    indices = [np.flatnonzero(real.train_labels.numpy() == c) for c in range(k)]
    image_syn = torch.randn(k * ipc, real.channels, *real.image_size, requires_grad=True)
    label_syn = torch.arange(k).repeat_interleave(ipc)
    opt_img = torch.optim.SGD([image_syn], lr=0.1, momentum=0.5)
    for _ in range(iterations):
        net = create_model("convnet", num_classes=k, in_channels=real.channels, image_size=real.image_size)
        params = list(net.parameters())
        opt_net = torch.optim.SGD(params, lr=0.01)
        for ol in range(outer):
            loss = torch.tensor(0.0)
            for c in range(k):
                img_real = x_all[np.random.permutation(indices[c])[:batch_real]]
                lab_real = torch.full((len(img_real),), c)
                gw_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(net(img_real), lab_real), params)]
                img_syn = image_syn[c * ipc:(c + 1) * ipc]
                gw_syn = torch.autograd.grad(F.cross_entropy(net(img_syn), label_syn[c * ipc:(c + 1) * ipc]),
                                             params, create_graph=True)
                loss = loss + match_distance(gw_syn, gw_real, "ours")
            opt_img.zero_grad()
            loss.backward()
            opt_img.step()
            if ol == outer - 1:
                break
            data = image_syn.detach()
            for _ in range(inner):
                order = torch.randperm(len(data))
                for start in range(0, len(order), 256):
                    b = order[start:start + 256]
                    step_loss = F.cross_entropy(net(data[b]), label_syn[b])
                    opt_net.zero_grad()
                    step_loss.backward()
                    opt_net.step()


def ours(real: RealData, *, ipc: int, iterations: int, batch_real: int) -> None:
    create_method("dc", iterations=iterations, batch_real=batch_real).distill(real, ipc=ipc, seed=0, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ipcs", default="1,10")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-real", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    np.random.seed(0)
    real = fake_real(10, max(args.batch_real, 50), 32, 3)
    rows = []
    for ipc in (int(i) for i in args.ipcs.split(",")):
        times: dict[str, list[float]] = {"dd-bench": [], "plain main.py loop": []}
        for _ in range(args.repeats):
            for name, run in (("dd-bench", ours), ("plain main.py loop", plain_iterations)):
                start = time.perf_counter()
                run(real, ipc=ipc, iterations=args.iterations, batch_real=args.batch_real)
                times[name].append((time.perf_counter() - start) / args.iterations)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["dd-bench"] / med["plain main.py loop"]
        rows.append({"ipc": ipc, "loops": list(loops_for(ipc)), "seconds_per_iteration": med, "all": times,
                     "ratio_ddbench_over_plain": ratio})
        print(f"ipc {ipc:>3} (outer, inner {loops_for(ipc)}): dd-bench {med['dd-bench']:.3f} s/it, plain "
              f"{med['plain main.py loop']:.3f} s/it, ratio {ratio:.2f}x", flush=True)
    if args.out:
        record = {"benchmark": "gradient matching outer iteration (DC), CPU", "rows": rows,
                  "shape": f"10 classes, 3x32x32, ConvNet, batch_real {args.batch_real:d}",
                  "iterations_per_timing": args.iterations, "repeats": args.repeats,
                  "command": "python scripts/cpu_bench_gradient_matching.py " + " ".join(
                      f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
                  "provenance": collect_provenance("cpu")}
        args.out.write_text(json.dumps(record, indent=1, default=str) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
