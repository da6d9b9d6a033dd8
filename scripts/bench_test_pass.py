"""The test pass of dd-bench's ConvNet with ReLU in place under ``no_grad`` (what scoring runs) against the same
network with ReLU out of place (what it ran before), alternating in one process; prints the ratio.

    python scripts/bench_test_pass.py [--images 5000] [--repeats 4] [--out results/bench_test_pass_cpu.json]

Both variants share the weights; the script checks that their outputs are equal before timing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from dd_bench.io import atomic_write_json
from dd_bench.models import create_model
from dd_bench.models.convnet import ReLU
from dd_bench.tracking.provenance import collect_provenance

SHAPES = {"mnist": (1, 28, 28), "cifar": (3, 32, 32)}


def out_of_place(net: nn.Module) -> nn.Module:
    twin = copy.deepcopy(net)
    for i, m in enumerate(twin.features):
        if isinstance(m, ReLU):
            twin.features[i] = nn.ReLU()
    return twin


def test_pass(net: nn.Module, x: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(x), batch):
            net(x[s:s + batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--batch", type=int, default=512, help="the protocols' test_batch_size")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = {}
    for name, (c, h, w) in SHAPES.items():
        net = create_model("convnet", in_channels=c, num_classes=10, image_size=(h, w)).eval()
        twin = out_of_place(net).eval()
        x = torch.randn(args.images, c, h, w)
        with torch.no_grad():
            assert torch.equal(net(x[:64]), twin(x[:64])), "in place must give the same logits"
        new, old = [], []
        for _ in range(args.repeats):
            new.append(test_pass(net, x, args.batch))
            old.append(test_pass(twin, x, args.batch))
        ratios = [a / b for a, b in zip(new, old, strict=True)]
        rows[name] = {"shape": [c, h, w], "in_place_s": new, "out_of_place_s": old,
                      "ratio_median": statistics.median(ratios)}
        print(f"{name} {c}x{h}x{w}, {args.images} images: in place {statistics.median(new):.2f} s, out of place "
              f"{statistics.median(old):.2f} s, ratio {statistics.median(ratios):.3f}x (median of {args.repeats})")
    if args.out:
        atomic_write_json(args.out, {"command": "python scripts/bench_test_pass.py " + " ".join(
            f"--{k} {v}" for k, v in vars(args).items() if v is not None), "batch": args.batch,
            "images": args.images, "rows": rows, "provenance": collect_provenance("cpu")})


if __name__ == "__main__":
    main()
