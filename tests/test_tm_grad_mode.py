"""grad_mode=auto: the rule (graph size and device memory in, exact mode out), the graph estimate, and that the mode
which ran is what a set records and hashes."""

from __future__ import annotations

import pytest
import torch

from dd_bench.augment import DSA
from dd_bench.experts import FlatModel
from dd_bench.methods import METHODS, create_method
from dd_bench.methods.tm import grad_mode as tm_grad_mode
from dd_bench.methods.tm.grad_mode import (
    CPU_UNROLLED_MAX_BYTES,
    MEMORY_FRACTION,
    choose_grad_mode,
    dsa_family_augments,
    unrolled_graph_bytes,
)
from dd_bench.methods.tm.gradient import InnerStep, matching_gradient
from dd_bench.methods.tm.labels import HardTargets
from dd_bench.models import create_model
from dd_bench.tracking.autograd_memory import SavedTensorMeter

GiB = 2**30
TINY = METHODS.get("mtt").TEST_OPTIONS


@pytest.mark.parametrize(("graph", "memory", "device", "expected"), [
    # the CPU shapes of results/bench_grad_mode_cpu.json: unrolled measured faster at 3.26 GiB, recompute at 4.96
    (int(3.26 * GiB), 24 * GiB, "cpu", "unrolled"),
    (int(4.96 * GiB), 24 * GiB, "cpu", "recompute"),
    (CPU_UNROLLED_MAX_BYTES, 24 * GiB, "cpu", "unrolled"),  # the limits are inclusive
    (int(MEMORY_FRACTION * 80 * GiB), 80 * GiB, "cuda", "unrolled"),
    (int(MEMORY_FRACTION * 80 * GiB) + 1, 80 * GiB, "cuda", "recompute"),  # over the memory budget: flat memory
    (19 * GiB, 80 * GiB, "cuda", "unrolled"),  # CIFAR-10 IPC 10's preset graph (N 30, batch 100) fits a GPU
    (19 * GiB, 24 * GiB, "cpu", "recompute"),  # ... but not half of this CPU's memory
])
def test_rule(graph, memory, device, expected):
    assert choose_grad_mode(unrolled_bytes=graph, device_memory_bytes=memory, device_type=device) == expected


def test_the_estimate_matches_the_measured_unrolled_graph():
    torch.manual_seed(0)
    module = create_model("convnet", num_classes=10, in_channels=3, image_size=(16, 16), width=8, depth=2)
    flat = FlatModel(module)
    theta0 = flat.flatten(module)
    dsa = DSA("color_crop_cutout_flip_scale_rotate", image_size=16)
    g = torch.Generator().manual_seed(0)
    steps, batch, n = 4, 6, 12
    estimate = unrolled_graph_bytes(forward=flat.forward, theta=theta0, image_shape=(3, 16, 16), num_classes=10,
                                    batch=batch, steps=steps, augments=dsa_family_augments(dsa, g))
    # the run's steps draw each family in turn, so their graph is the families' average, as the estimate's
    families = len(dsa.families)
    plan = []
    for i in range(families):
        params = dsa.sample_params(batch, generator=g)
        params["family"] = torch.full_like(params["family"], i)
        plan.append(InnerStep(torch.randperm(n, generator=g)[:batch], params))
    images = torch.randn(n, 3, 16, 16).requires_grad_(True)
    with SavedTensorMeter() as meter:
        matching_gradient("unrolled", forward=flat.forward, theta0=theta0, theta_target=theta0 + 0.01,
                          images=images, alpha=torch.tensor(0.01, requires_grad=True),
                          targets_of=HardTargets(torch.arange(n) % 10), plan=plan, augment=dsa)
    assert 0.9 < (estimate * families / steps) / meter.peak_bytes < 1.1


def test_a_direct_distill_records_the_mode_that_ran(digits):
    method = create_method("mtt", **TINY)
    assert method.cfg.grad_mode == "auto"
    synset = method.distill(digits, ipc=1, seed=0, progress=False)
    assert synset.config["grad_mode"] == "unrolled"  # a few KiB of graph on the CPU
    explicit = create_method("mtt", **TINY, grad_mode="unrolled").distill(digits, ipc=1, seed=0, progress=False)
    assert torch.equal(synset.images, explicit.images)


def test_auto_is_resolved_before_the_set_is_hashed(compose_cfg, monkeypatch):
    from dd_bench.app.tasks import load_real, plan_distill

    overrides = ["method=mtt", *[f"method.{k}={v}" for k, v in TINY.items()]]
    cfg = compose_cfg(*overrides)
    real = load_real(cfg)
    auto = plan_distill(cfg, real)
    assert auto.options["grad_mode"] == "unrolled"
    assert auto.set_hash == plan_distill(compose_cfg(*overrides, "method.grad_mode=unrolled"), real).set_hash
    # a device too small for the unrolled graph: recompute runs, and the set is another one
    monkeypatch.setattr(tm_grad_mode, "device_memory_bytes", lambda device: 1)
    monkeypatch.setattr("dd_bench.methods.tm.trajectory_matching.device_memory_bytes", lambda device: 1)
    small = plan_distill(compose_cfg(*overrides), real)
    assert small.options["grad_mode"] == "recompute"
    assert small.set_hash == plan_distill(compose_cfg(*overrides, "method.grad_mode=recompute"), real).set_hash
    assert small.set_hash != auto.set_hash
