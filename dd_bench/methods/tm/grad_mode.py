"""``grad_mode=auto``: pick the faster exact matching gradient for the shape, within the device's memory.

Both exact modes give the same gradient up to rounding (tests/test_tm_gradient.py); they differ in cost:

* ``unrolled`` keeps the whole N-step double-backward graph: its saved tensors grow as N x (per-step bytes),
  and it does one forward/backward per step less than ``recompute``;
* ``recompute`` keeps one step's graph plus N parameter vectors (flat in N) and recomputes each step once more.

The rule (:func:`choose_grad_mode`): ``recompute`` when the unrolled graph would take more than
``MEMORY_FRACTION`` of the device's total memory (the rest holds the experts, the set, the evaluator and the
allocator's slack); otherwise the mode measured faster for that graph size on the device type. Measured on the
2-core CPU (``results/bench_grad_mode_cpu.json``, ``scripts/bench_grad_mode.py``, CIFAR-10 preset shapes), unrolled
was faster for graphs of 0.65 to 3.26 GiB (recompute took 1.16x to 1.52x its time) and recompute for the two larger
ones measured, 3.72 GiB (0.90x, ``results/bench_tm_cpu.json``) and 4.96 GiB (0.96x): fresh multi-GiB allocations
are page-faulted in on every iteration, which then costs more than recomputing each step. So on a CPU ``unrolled`` is
chosen up to ``CPU_UNROLLED_MAX_BYTES`` (between the two). On a GPU the allocator caches its blocks and the extra
recompute step is pure cost, so ``unrolled`` is chosen whenever it fits (not yet measured there:
``scripts/bench_grad_mode.py --device cuda`` does it when one is lent).

The unrolled graph's size is measured, not guessed: one student step is built at batch 1 and batch 2 under
:class:`~dd_bench.tracking.autograd_memory.SavedTensorMeter` (bytes = fixed + batch x per-image), times N; with DSA,
once per augmentation family (DSA draws one family per step, uniformly) and averaged.
The mode that ran is what the set's config and hash record (``auto`` never reaches a set).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from dd_bench.tracking.autograd_memory import SavedTensorMeter
from dd_bench.train.losses import classification_loss

MEMORY_FRACTION = 0.5
# The largest unrolled graph (saved bytes) for which unrolled is chosen on a CPU: between the largest graph measured
# faster unrolled (3.26 GiB) and the smallest measured faster recomputed (3.72 GiB); see the module doc.
CPU_UNROLLED_MAX_BYTES = int(3.5 * 2**30)


def choose_grad_mode(*, unrolled_bytes: int, device_memory_bytes: int, device_type: str) -> str:
    """The exact mode for a run whose unrolled graph saves ``unrolled_bytes`` on a device of that total memory."""
    if unrolled_bytes > MEMORY_FRACTION * device_memory_bytes:
        return "recompute"
    if device_type == "cpu" and unrolled_bytes > CPU_UNROLLED_MAX_BYTES:
        return "recompute"
    return "unrolled"


def device_memory_bytes(device: torch.device) -> int:
    """Total memory of ``device``: the GPU's, or the machine's RAM (MemTotal; the cgroup limit when lower)."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:  # a container's memory limit (cgroup v2) is what the process can really use
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return int(total)


Augment = Callable[[torch.Tensor], torch.Tensor]


def unrolled_graph_bytes(*, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], theta: torch.Tensor,
                         image_shape: tuple[int, ...], num_classes: int, batch: int, steps: int,
                         augments: Sequence[Augment] = ()) -> int:
    """Bytes the unrolled gradient saves for backward: N steps of one student step's double-backward graph.

    ``image_shape``: (C, H, W) in model space; ``batch``: images per student step (after FYI's doubling);
    ``augments``: x (b, C, H, W) -> x, the augmentations a step draws one of uniformly (DSA's families,
    :func:`dsa_family_augments`); the graph is their average. Empty: no augmentation.
    """
    def one_step(b: int, augment: Augment | None) -> int:
        x = torch.zeros((b, *image_shape), device=theta.device, requires_grad=True)
        y = torch.arange(b, device=theta.device) % num_classes
        th = theta.detach().clone().requires_grad_(True)
        alpha = torch.tensor(0.01, device=theta.device, requires_grad=True)
        with SavedTensorMeter() as meter:
            xa = augment(x) if augment is not None else x
            (g,) = torch.autograd.grad(classification_loss(forward(th, xa), y), th, create_graph=True)
            nxt = th - alpha * g
        del nxt, g
        return meter.peak_bytes

    per_step = []
    for augment in augments or [None]:
        one, two = one_step(1, augment), one_step(2, augment)
        per_image = max(two - one, 0)
        per_step.append(max(one - per_image, 0) + batch * per_image)
    return int(steps * sum(per_step) / len(per_step))


def dsa_family_augments(dsa: Any, generator: torch.Generator) -> list[Augment]:
    """One augmentation per DSA family (params drawn from ``generator``, the family fixed): the probe's set."""
    def fixed(index: int) -> Augment:
        def augment(x: torch.Tensor) -> torch.Tensor:
            params = dsa.sample_params(len(x), generator=generator)
            params["family"] = torch.full_like(params["family"], index)
            return dsa.apply(x, params)
        return augment

    return [fixed(i) for i in range(len(dsa.families))]
