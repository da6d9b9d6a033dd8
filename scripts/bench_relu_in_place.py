"""dd-bench's ConvNet with its ReLU in place (what every path runs) against the same network with ReLU out of place
(what training ran before), alternating in one process; prints the ratios.

    python scripts/bench_relu_in_place.py [--repeats 4] [--out results/bench_relu_in_place_cpu.json]

Two workloads per input shape (Fashion-MNIST 1x28x28, CIFAR-10 3x32x32): the test pass (``no_grad``, batches of
512 over ``--images`` images, what scoring runs) and SGD training steps (forward, cross-entropy, backward, step, on
one batch of ``--train-batch`` images; 10 is an IPC 1 evaluation's whole set, 256 the protocols' batch_train).
Both variants share the initial weights; the script checks that their logits and gradients are equal before timing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.io import atomic_write_json
from dd_bench.models import create_model
from dd_bench.tracking.provenance import collect_provenance

SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}


def out_of_place(net: nn.Module) -> nn.Module:
    twin = copy.deepcopy(net)
    for i, m in enumerate(twin.features):
        if isinstance(m, nn.ReLU):
            twin.features[i] = nn.ReLU(inplace=False)
    return twin


def test_pass(net: nn.Module, x: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(x), batch):
            net(x[s:s + batch])
    return time.perf_counter() - start


def train_steps(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return time.perf_counter() - start


def same_gradients(a: nn.Module, b: nn.Module, x: torch.Tensor, y: torch.Tensor) -> bool:
    grads = []
    for net in (a, b):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        grads.append([p.grad.clone() for p in net.parameters()])
        net.zero_grad(set_to_none=True)
    return all(torch.equal(g, h) for g, h in zip(*grads, strict=True))


def side_by_side(run, net: nn.Module, twin: nn.Module, repeats: int) -> dict:
    new, old = [], []
    for _ in range(repeats):
        new.append(run(net))
        old.append(run(twin))
    ratios = [a / b for a, b in zip(new, old, strict=True)]
    return {"in_place_s": new, "out_of_place_s": old, "ratio_median": statistics.median(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000, help="test-pass images")
    parser.add_argument("--batch", type=int, default=512, help="the protocols' test_batch_size")
    parser.add_argument("--train-batch", type=int, nargs="+", default=[10, 256])
    parser.add_argument("--train-images", type=int, default=5120, help="images per timed training run")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = {}
    for name, (c, h, w) in SHAPES.items():
        torch.manual_seed(0)
        net = create_model("convnet", in_channels=c, num_classes=10, image_size=(h, w))
        assert any(isinstance(m, nn.ReLU) and m.inplace for m in net.modules()), "the ConvNet's ReLU is in place"
        twin = out_of_place(net)
        x = torch.randn(args.images, c, h, w)
        with torch.no_grad():
            assert torch.equal(net.eval()(x[:64]), twin.eval()(x[:64])), "in place must give the same logits"
        row = rows[f"{name}-test-pass"] = {"shape": [c, h, w], "images": args.images, "batch": args.batch,
                                           **side_by_side(lambda n, x=x: test_pass(n, x, args.batch), net, twin,
                                                          args.repeats)}
        print(f"{name} {c}x{h}x{w} test pass, {args.images} images: in place {statistics.median(row['in_place_s']):.2f}"
              f" s, out of place {statistics.median(row['out_of_place_s']):.2f} s, ratio {row['ratio_median']:.3f}x")
        for b in args.train_batch:
            xb, yb = x[:b], torch.arange(b) % 10
            assert same_gradients(net.train(), twin.train(), xb, yb), "in place must give the same gradients"
            steps = max(1, args.train_images // b)
            # Each timed run trains its own copy from the same weights, so both variants do identical arithmetic.
            def train(n: nn.Module, xb: torch.Tensor = xb, yb: torch.Tensor = yb, steps: int = steps) -> float:
                return train_steps(copy.deepcopy(n), xb, yb, steps)

            row = rows[f"{name}-train-b{b}"] = {"shape": [c, h, w], "batch": b, "steps": steps,
                                                **side_by_side(train, net, twin, args.repeats)}
            print(f"{name} {c}x{h}x{w} training, batch {b} x {steps} steps: in place "
                  f"{statistics.median(row['in_place_s']):.2f} s, out of place "
                  f"{statistics.median(row['out_of_place_s']):.2f} s, ratio {row['ratio_median']:.3f}x")
    if args.out:
        atomic_write_json(args.out, {
            "command": "python scripts/bench_relu_in_place.py " + " ".join(
                f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items() if v is not None),
            "threads": torch.get_num_threads(), "rows": rows, "provenance": collect_provenance("cpu")})


if __name__ == "__main__":
    main()
