"""DC's VGG-11 (``networks.py:VGG11`` / ``VGG11BN``): a cross-architecture net of DC/DSA/DM/MTT.

Conv3x3(pad 1, bias) -> norm -> ReLU for each number in the config, MaxPool2d(2, 2) for each "M", then
Linear(512, K) with no dropout and no hidden FC layers. Five max-pools bring 32x32 inputs to 1x1, which the 512-d
head assumes. Default norm is instance norm (GroupNorm(C, C)).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dd_bench.models.layers import check_norm, mnist_extra_padding, norm_layer, require_feature_map
from dd_bench.models.registry import register_model

VGG11_CONFIG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    def __init__(
        self,
        config: tuple[int | str, ...],
        *,
        num_classes: int,
        in_channels: int,
        image_size: tuple[int, int],
        norm: str = "instance",
        name: str = "vgg",
    ) -> None:
        super().__init__()
        check_norm(name, norm, options=("batch", "instance"))
        first_pad = 1 + mnist_extra_padding(in_channels, image_size)
        # The first conv maps H -> H + 2 * first_pad - 2 (28 -> 32 for MNIST), later convs keep the size, and
        # each max-pool floors it to half.
        pools = config.count("M")
        h, w = ((s + 2 * first_pad - 2) >> pools for s in image_size)
        widths = [int(item) for item in config if item != "M"]
        require_feature_map(name, image_size, (h, w), (1, 1), needs="32x32", why=f"Linear({widths[-1]}, K) head")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            conv = nn.Conv2d(channels, int(item), kernel_size=3, padding=1 if layers else first_pad)
            layers += [conv, norm_layer(norm, int(item)), nn.ReLU()]
            channels = int(item)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 512): the 1x1 map after the last max-pool, flattened."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("vgg11")
def vgg11(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> VGG:
    kwargs = {"name": "vgg11", **kwargs}
    return VGG(VGG11_CONFIG, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


@register_model("vgg11_bn")
def vgg11_bn(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> VGG:
    kwargs = {"norm": "batch", "name": "vgg11_bn", **kwargs}
    return vgg11(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
