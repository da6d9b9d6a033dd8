"""The decoupled family's speed, measured side by side with plain re-implementations of the official loops in one
run (ratios, not absolute targets). CIFAR-10 shapes (3 x 32 x 32, 10 classes); random tensors stand in for the
images and an untrained teacher for a trained one (the cost does not depend on the values).

1. Recover (SRe2L): iterations per second of dd-bench's ``sre2l`` step (one batch of 10 images, BN hooks, roll
   jitter, Adam, clip) vs a plain loop written here the way ``recover_cifar.py`` does it. Alternating blocks.
2. Relabel (FKD): images per second of :func:`dd_bench.labels.fkd.relabel_fkd` (crop + flip + MixUp, teacher,
   fp16 logits to a shard) vs a plain loop (the same augmentation and teacher forward, nothing stored).
3. kd evaluation: optimiser steps per second of dd-bench's kd protocol with an online teacher vs a plain loop
   (SRe2L ``relabel_cifar.py``-style: RandomCrop + flip, MixUp, teacher on the mixed batch, KL at T, AdamW), and
   the same protocol replaying stored FKD labels (target: replay cheaper per step than the online teacher), and
   with HeLlO's online projector (a ``--teacher``-architecture backbone, rank-2 adapters on every conv, a linear
   head): its cost per step is the price of its storage saving, printed beside the bytes it stores.
4. Committee recovery (CV-DD): iterations per second of the shared recovery loop with a committee of ``--committee``
   teachers of one architecture, stacked into one vmapped forward (``stack_voters``) vs one teacher at a time.
   (The official CIFAR pool has five different architectures, so stacking applies to committees that repeat one.)

Targets: dd-bench's kd evaluator at least as fast as the plain loop (ratio <= 1.0x time), FKD replay < online.
Usage: python scripts/bench_decoupled.py [--device auto] [--teacher resnet18_cifar] [--student convnet]
       [--iterations 20] [--epochs 3] [--out results/bench_decoupled_cpu.json]
"""

from __future__ import annotations

import argparse
import functools
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.augment.crop_flip import RandomCropFlip
from dd_bench.augment.mix import KDAugment, MixUp
from dd_bench.eval.protocol import custom_protocol
from dd_bench.labels import TeacherLogits
from dd_bench.labels.fkd import FKDLabels, relabel_fkd
from dd_bench.methods.decoupled.bn_statistics import BNStatisticsLoss
from dd_bench.methods.decoupled.recovery import Crop, RecoveryBatch, frozen_voters, recover
from dd_bench.models import create_model
from dd_bench.pipeline.device import resolve_device
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import write_report
from dd_bench.train import Cosine, OptimizerSpec, train_networks


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_teacher(name: str, device: torch.device) -> nn.Module:
    net = create_model(name, num_classes=10, in_channels=3, image_size=(32, 32)).to(device)
    with torch.no_grad():  # running statistics that are not the init's, as a trained teacher's
        net.train()
        for _ in range(2):
            net(torch.randn(64, 3, 32, 32, device=device))
    return net.eval()


def recover_ours(teacher: nn.Module, x0: torch.Tensor, iterations: int, generator: torch.Generator) -> None:
    """dd-bench's SRe2L step (dd_bench/methods/decoupled/sre2l.py) on one batch, without the checkpointing around it."""
    images = x0.clone().requires_grad_(True)
    y = torch.arange(len(x0), device=x0.device) % 10
    opt = torch.optim.Adam([images], lr=0.25, betas=(0.5, 0.9), eps=1e-8)
    bn = BNStatisticsLoss(teacher)
    lo, hi = torch.full((1, 3, 1, 1), -2.0, device=x0.device), torch.full((1, 3, 1, 1), 2.5, device=x0.device)
    for it in range(iterations):
        for group in opt.param_groups:
            group["lr"] = 0.5 * (1 + math.cos(math.pi * it / iterations)) * 0.25
        opt.zero_grad(set_to_none=True)
        offsets = torch.randint(0, 5, (2,), generator=generator, device=x0.device).tolist()
        x = torch.roll(images, shifts=(offsets[0], offsets[1]), dims=(2, 3))
        with bn:
            loss = F.cross_entropy(teacher(x), y) + 0.01 * bn.loss()
        loss.backward()
        opt.step()
        with torch.no_grad():
            images.copy_(torch.maximum(torch.minimum(images, hi), lo))


def recover_plain(teacher: nn.Module, x0: torch.Tensor, iterations: int) -> None:
    """The official recover loop's shape, written plainly: a hook object per BN layer storing r_feature."""
    import random

    class Hook:
        def __init__(self, module: nn.Module) -> None:
            self.handle = module.register_forward_hook(self.hook)

        def hook(self, module, inputs, output) -> None:
            nch = inputs[0].shape[1]
            mean = inputs[0].mean([0, 2, 3])
            var = inputs[0].permute(1, 0, 2, 3).contiguous().view([nch, -1]).var(1, unbiased=False)
            self.r_feature = (torch.norm(module.running_var.data - var, 2)
                              + torch.norm(module.running_mean.data - mean, 2))

    hooks = [Hook(m) for m in teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    inputs = x0.clone().requires_grad_(True)
    targets = torch.arange(len(x0), device=x0.device) % 10
    optimizer = torch.optim.Adam([inputs], lr=0.25, betas=(0.5, 0.9), eps=1e-8)
    criterion = nn.CrossEntropyLoss()
    for iteration in range(iterations):
        lr = 0.5 * (1 + math.cos(math.pi * iteration / iterations)) * 0.25
        for group in optimizer.param_groups:
            group["lr"] = lr
        off1, off2 = random.randint(0, 4), random.randint(0, 4)
        inputs_jit = torch.roll(inputs, shifts=(off1, off2), dims=(2, 3))
        optimizer.zero_grad()
        outputs = teacher(inputs_jit)
        rescale = [10.0] + [1.0] * (len(hooks) - 1)
        loss_bn = sum(h.r_feature * rescale[i] for i, h in enumerate(hooks))
        loss = criterion(outputs, targets) + 0.01 * loss_bn
        loss.backward()
        optimizer.step()
        inputs.data = torch.clamp(inputs.data, -2.0, 2.5)
    for h in hooks:
        h.handle.remove()


def kd_plain(student_name: str, teacher: nn.Module, images: torch.Tensor, epochs: int, batch: int) -> int:
    """relabel_cifar.py's training loop, written plainly: shuffle, crop + flip, MixUp, teacher, KL at 30, AdamW."""
    import numpy as np

    device = images.device
    student = create_model(student_name, num_classes=10, in_channels=3, image_size=(32, 32)).to(device)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    kl = nn.KLDivLoss(reduction="batchmean")
    steps = 0
    for _ in range(epochs):
        student.train()
        perm = torch.randperm(len(images), device=device)
        for start in range(0, len(images), batch):
            x = images[perm[start:start + batch]]
            padded = F.pad(x, (4, 4, 4, 4))
            i, j = np.random.randint(0, 9, 2)
            x = padded[:, :, i:i + 32, j:j + 32]
            if np.random.rand() < 0.5:
                x = x.flip(-1)
            lam = np.random.beta(0.8, 0.8)
            index = torch.randperm(len(x), device=device)
            x = lam * x + (1 - lam) * x[index]
            with torch.no_grad():
                soft = teacher(x)
            out = student(x)
            loss = kl(F.log_softmax(out / 30.0, dim=1), F.softmax(soft / 30.0, dim=1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        sched.step()
    return steps


def make_projector(arch: str, device: torch.device):
    """HeLlO's online projector on an untrained ``arch`` backbone (rank 2 on every conv, fp16 bytes as stored)."""
    from dd_bench.labels.projector import ProjectorLogits
    from dd_bench.projector.backbone import Backbone, FeatureBackbone
    from dd_bench.projector.projector import Projector, projector_bytes

    net = make_teacher(arch, device)
    with torch.no_grad():
        dim = FeatureBackbone(net, adapter=None, mode="embed")(torch.zeros(2, 3, 32, 32, device=device)).shape[1]
    backbone = Backbone(FeatureBackbone(net, adapter=None, mode="embed"), {"feature_dim": dim},
                        exclude=("classifier",))
    projector = Projector(backbone, num_classes=10, rank=2, alpha=2.0,
                          generator=torch.Generator(device=device).manual_seed(0)).eval()
    for p in projector.parameters():
        p.requires_grad_(False)
    stored = sum(projector_bytes(projector.stored_tensors(torch.float16)).values())
    return ProjectorLogits(projector, temperature=30.0, asset_bytes=0), stored


def kd_ours(student_name: str, labels, images: torch.Tensor, epochs: int, batch: int, augment, replay=None) -> None:
    train_networks(model=student_name, images=images, labels=labels, num_classes=10, passes=epochs,
                   batch_size=batch, optimizer=OptimizerSpec("adamw", weight_decay=0.01), lr=1e-3,
                   schedule=Cosine(t_max=epochs), seeds=[0], augment=augment, batched=False, progress=False,
                   replay=replay)


def timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--teacher", default="resnet18_cifar")
    parser.add_argument("--student", default="convnet")
    parser.add_argument("--iterations", type=int, default=20, help="recover iterations per timed block")
    parser.add_argument("--epochs", type=int, default=3, help="kd epochs per timed block (IPC 50: 500 images)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2, help="alternating blocks per comparison")
    parser.add_argument("--committee", type=int, default=2, help="teachers of one architecture in the committee")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    report = {"benchmark": "bench_decoupled", "provenance": collect_provenance(device),
              "torch_threads": torch.get_num_threads(), "command": "python scripts/bench_decoupled.py "
              f"--device {args.device} --teacher {args.teacher} --student {args.student} --iterations "
              f"{args.iterations} --epochs {args.epochs} --images {args.images} --repeats {args.repeats} "
              f"--committee {args.committee}"}
    print(f"device: {report['provenance']['device']} ({report['provenance']['device_name']}), torch "
          f"{torch.__version__}, {report['torch_threads']} threads; teacher {args.teacher}, student {args.student}")
    torch.manual_seed(0)
    teacher = make_teacher(args.teacher, device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    g = torch.Generator(device=device).manual_seed(0)

    x0 = torch.randn(10, 3, 32, 32, device=device)
    recover_ours(teacher, x0, 2, g)  # warm-up
    ours, plain = [], []
    for _ in range(args.repeats):
        plain.append(timed(lambda: recover_plain(teacher, x0, args.iterations), device))
        ours.append(timed(lambda: recover_ours(teacher, x0, args.iterations, g), device))
    its = args.iterations * args.repeats
    report["recover"] = {"iterations": its, "batch": 10, "ours_seconds": sum(ours), "plain_seconds": sum(plain),
                         "ours_it_per_s": its / sum(ours), "plain_it_per_s": its / sum(plain),
                         "ours_vs_plain_time": sum(ours) / sum(plain)}
    r = report["recover"]
    print(f"recover (batch 10): dd-bench {r['ours_it_per_s']:.1f} it/s, plain {r['plain_it_per_s']:.1f} it/s -> "
          f"{r['ours_vs_plain_time']:.2f}x the plain time")

    images = torch.randn(args.images, 3, 32, 32, device=device)
    crop = RandomCropFlip(image_size=(32, 32), pad=4, flip=True, fill=[0.0, 0.0, 0.0])
    augment = KDAugment(crop=crop, mix=MixUp(alpha=0.8))
    source = TeacherLogits([teacher], temperature=30.0)
    protocol = custom_protocol("kd", epochs=args.epochs)

    def plain_relabel() -> None:
        with torch.no_grad():
            for _ in range(args.epochs):
                for i in range(0, len(images), 128):
                    x = images[i:i + 128]
                    teacher(augment.apply(x, augment.sample_params(len(x), generator=g))).half()

    def our_relabel(directory: str) -> dict:
        return relabel_fkd(synset_dir=directory, images=images, teacher=source, protocol=protocol, augment=augment,
                           num_classes=10, progress=False)

    with tempfile.TemporaryDirectory() as tmp:
        our_relabel(f"{tmp}/warm-up")
        ours_t, plain_t = [], []
        for k in range(args.repeats):  # alternating, each of ours into a fresh directory (no resumed shards)
            plain_t.append(timed(plain_relabel, device))
            ours_t.append(timed(functools.partial(our_relabel, f"{tmp}/run{k}"), device))
        entry = our_relabel(f"{tmp}/run0")  # every shard exists: returns the entry
        n = args.repeats * args.epochs * args.images
        report["relabel"] = {"epochs": args.epochs, "images": args.images, "repeats": args.repeats,
                             "ours_images_per_s": n / sum(ours_t), "plain_images_per_s": n / sum(plain_t),
                             "ours_vs_plain_time": sum(ours_t) / sum(plain_t), "stored_bytes": entry["bytes"]}
        r = report["relabel"]
        print(f"relabel: dd-bench {r['ours_images_per_s']:.0f} img/s (fp16 shards, {r['stored_bytes']} bytes), "
              f"plain forward {r['plain_images_per_s']:.0f} img/s -> {r['ours_vs_plain_time']:.2f}x")
        tmp = f"{tmp}/run0"
        fkd = FKDLabels(synset_dir=tmp, entry=entry, num_images=args.images, num_classes=10, temperature=30.0,
                        device=device)
        projector, projector_bytes = make_projector(args.teacher, device)
        kd_ours(args.student, source, images, 1, 128, augment)  # warm-up
        times = {"plain": [], "online": [], "fkd": [], "projector": []}
        steps = 0
        for _ in range(args.repeats):
            times["plain"].append(timed(lambda: kd_plain(args.student, teacher, images, args.epochs, 128), device))
            times["online"].append(timed(lambda: kd_ours(args.student, source, images, args.epochs, 128, augment),
                                         device))
            times["fkd"].append(timed(lambda: kd_ours(args.student, fkd, images, args.epochs, 128, augment,
                                                      replay=fkd), device))
            times["projector"].append(timed(lambda: kd_ours(args.student, projector, images, args.epochs, 128,
                                                            augment), device))
            steps += args.epochs * -(-args.images // 128)
    report["kd_evaluation"] = {
        "steps": steps, "batch": 128, **{f"{k}_steps_per_s": steps / sum(v) for k, v in times.items()},
        "online_vs_plain_time": sum(times["online"]) / sum(times["plain"]),
        "fkd_vs_online_time": sum(times["fkd"]) / sum(times["online"]),
        "projector_vs_online_time": sum(times["projector"]) / sum(times["online"]),
        "projector_vs_fkd_time": sum(times["projector"]) / sum(times["fkd"]),
        "projector_stored_bytes": projector_bytes, "fkd_stored_bytes": entry["bytes"]}
    r = report["kd_evaluation"]
    print(f"kd evaluation ({args.student} student, batch 128): plain {r['plain_steps_per_s']:.1f} steps/s, dd-bench "
          f"online teacher {r['online_steps_per_s']:.1f} ({r['online_vs_plain_time']:.2f}x the plain time; target "
          f"<= 1.0x), FKD replay {r['fkd_steps_per_s']:.1f} ({r['fkd_vs_online_time']:.2f}x the online time; "
          "target < 1.0x)")
    print(f"  HeLlO projector online {r['projector_steps_per_s']:.1f} steps/s ({r['projector_vs_fkd_time']:.2f}x the "
          f"FKD replay time, {r['projector_vs_online_time']:.2f}x the online teacher's) for "
          f"{r['projector_stored_bytes']} stored bytes vs FKD's {r['fkd_stored_bytes']} for these {args.epochs} epochs")

    committee = [teacher] + [make_teacher(args.teacher, device) for _ in range(args.committee - 1)]
    voters = frozen_voters(committee, [1.0 / len(committee)] * len(committee), first_bn_multiplier=10.0)
    batch = [RecoveryBatch(torch.arange(10, device=device), torch.arange(10, device=device), voters)]

    def committee_recover(stacked: bool, iterations: int) -> None:
        leaf = x0.clone().requires_grad_(True)
        recover(leaf=leaf, batches=batch, iterations=iterations, lr=0.25, r_bn=0.01, jitter=4, crop=Crop.shared,
                crop_scale_min=0.08, image_size=(32, 32), flip=True, bounds=None,
                generator=torch.Generator(device=device).manual_seed(0), checkpoint_dir=None, checkpoint_every=10**9,
                config_hash="bench", progress=False, desc="", stack_voters=stacked)

    committee_recover(True, 2)  # warm-up
    committee_recover(False, 2)
    stacked_t, single_t = [], []
    for _ in range(args.repeats):
        single_t.append(timed(lambda: committee_recover(False, args.iterations), device))
        stacked_t.append(timed(lambda: committee_recover(True, args.iterations), device))
    its = args.iterations * args.repeats
    report["committee_recover"] = {
        "teachers": args.committee, "architecture": args.teacher, "batch": 10, "iterations": its,
        "stacked_it_per_s": its / sum(stacked_t), "one_at_a_time_it_per_s": its / sum(single_t),
        "stacked_vs_one_at_a_time_time": sum(stacked_t) / sum(single_t)}
    r = report["committee_recover"]
    print(f"committee recover ({args.committee} x {args.teacher}, batch 10): stacked {r['stacked_it_per_s']:.1f} "
          f"it/s, one teacher at a time {r['one_at_a_time_it_per_s']:.1f} it/s -> "
          f"{r['stacked_vs_one_at_a_time_time']:.2f}x the one-at-a-time time")
    write_report(report, args.out)


if __name__ == "__main__":
    main()
