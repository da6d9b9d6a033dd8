"""``grad_mode=auto``: pick the faster exact matching gradient for the shape, within the device's memory.

Both exact modes give the same gradient up to rounding (tests/test_tm_gradient.py); they differ in cost:

* ``unrolled`` keeps the whole N-step double-backward graph: its saved tensors grow as N x (per-step bytes),
  and it does one forward/backward per step less than ``recompute``;
* ``recompute`` keeps one step's graph plus N parameter vectors (flat in N) and recomputes each step once more.

The rule (:func:`choose_grad_mode`): ``unrolled`` while the unrolled graph takes at most ``MEMORY_FRACTION`` of the
device's total memory (the rest holds the experts, the set, the evaluator and the allocator's slack), ``recompute``
beyond. Measured on the 2-core CPU (``results/bench_grad_mode_cpu.json``, ``scripts/bench_grad_mode.py``), unrolled
was the faster exact mode at every CIFAR-10 preset shape where it fits (graphs of 0.65 to 5 GiB: recompute took
1.06x to 1.24x its time, more under load), so no speed crossover below the memory limit is built in. On a GPU the
extra recompute step is pure cost as well (not yet measured there: ``scripts/bench_grad_mode.py --device cuda``
does it when one is lent).

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


def choose_grad_mode(*, unrolled_bytes: int, device_memory_bytes: int) -> str:
    """The exact mode for a run whose unrolled graph saves ``unrolled_bytes`` on a device of that total memory."""
    return "recompute" if unrolled_bytes > MEMORY_FRACTION * device_memory_bytes else "unrolled"


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
