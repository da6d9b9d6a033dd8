"""Explicit randomness: every random draw in dd_bench goes through a ``torch.Generator`` made here.

The global RNG is never seeded or consumed by library code, so two components cannot perturb each other's
streams and the same seed always gives the same result.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *tags: object) -> int:
    """A 63-bit seed derived from ``seed`` and a tag path, e.g. ``derive_seed(0, "eval", "convnet", 3)``.

    Distinct tags give statistically independent streams without any component knowing the others.
    """
    text = "/".join([str(seed), *map(str, tags)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *tags: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded with ``derive_seed(seed, *tags)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *tags))
    return g
