"""The model registry and its factory: ``create_model(name, num_classes=..., in_channels=..., image_size=...)``.

Every registered factory has the signature
``factory(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs) -> nn.Module``
and raises :class:`~dd_bench.models.layers.UnsupportedResolution` when it cannot take ``image_size``.
Names starting with ``timm.`` are passed through to ``timm.create_model`` (never with pretrained weights).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from dd_bench.errors import UserError
from dd_bench.models.layers import UnsupportedResolution
from dd_bench.models.timm_passthrough import TIMM_PATTERN, TIMM_PREFIX, create_timm_model
from dd_bench.registry import Registry

ModelFactory = Callable[..., nn.Module]

MODELS: Registry[ModelFactory] = Registry("model", kind="factory")


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering a factory under the lowercase ``name``."""
    return MODELS.register(name)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching the fnmatch ``pattern``, plus ``"timm.<any timm model>"`` when it matches.

    >>> "convnet" in list_models() and "timm.<any timm model>" in list_models()
    True
    >>> list_models("resnet18*")
    ['resnet18', 'resnet18_bn', 'resnet18_cifar']
    """
    names = MODELS.list(pattern)
    if fnmatch.fnmatch(TIMM_PATTERN, pattern):
        names.append(TIMM_PATTERN)
    return names


def compatible_models(*, in_channels: int, image_size: Sequence[int]) -> list[str]:
    """Native models that can be built for ``in_channels`` x ``image_size`` inputs.

    Each factory is run on the meta device, so the check allocates no memory and draws no random numbers.
    """
    size = _as_image_size(image_size)
    names = []
    for name in MODELS.list():
        try:
            with torch.device("meta"):
                MODELS.get(name)(num_classes=2, in_channels=in_channels, image_size=size)
        except ValueError:
            continue
        names.append(name)
    return names


def create_model(
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    image_size: Sequence[int],
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build model ``name`` for ``num_classes`` classes and ``(in_channels, *image_size)`` inputs.

    With ``generator``, the parameters are initialised on the CPU from a seed drawn from ``generator``, and the
    global RNG state is left exactly as it was; the same generator state always gives the same parameters.
    Without it, initialisation consumes the global RNG as plain PyTorch would. Models never seed anything.

    >>> model = create_model("convnet", num_classes=10, in_channels=3, image_size=(32, 32))
    >>> sum(p.numel() for p in model.parameters())
    320010
    """
    if num_classes < 1 or in_channels < 1:
        raise UserError(f"num_classes and in_channels must be >= 1; got {num_classes} and {in_channels}")
    size = _as_image_size(image_size)
    factory = _resolve(name)
    try:
        if generator is None:
            return factory(num_classes=num_classes, in_channels=in_channels, image_size=size, **kwargs)
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        # fork_rng restores the CPU RNG on exit; devices=[] keeps CUDA untouched (and uninitialised). Building
        # on the CPU makes every init draw come from the seeded CPU generator, whatever the default device.
        with torch.random.fork_rng(devices=[]), torch.device("cpu"):
            torch.default_generator.manual_seed(seed)
            return factory(num_classes=num_classes, in_channels=in_channels, image_size=size, **kwargs)
    except UnsupportedResolution as err:
        options = ", ".join(compatible_models(in_channels=in_channels, image_size=size)) or "none"
        h, w = size
        raise UnsupportedResolution(f"{err}. Options for {in_channels}x{h}x{w}: {options}") from None


def _resolve(name: str) -> ModelFactory:
    if name.startswith(TIMM_PREFIX):
        return functools.partial(create_timm_model, name[len(TIMM_PREFIX) :])
    if name not in MODELS:
        raise UserError(f"Unknown model '{name}'; available: {', '.join(list_models())}")
    return MODELS.get(name)


def _as_image_size(image_size: Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` as a tuple of ints; Hydra hands sizes over as lists."""
    size = tuple(int(s) for s in image_size)
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"image_size must be (H, W) with positive entries; got {image_size!r}")
    return size  # type: ignore[return-value]
