"""ConvNet: the default DD backbone of DC/DSA/DM/MTT (``networks.py:ConvNet`` with its default setting).

Block = Conv3x3(pad 1, bias) -> norm -> ReLU -> AvgPool2d(2, 2), repeated ``depth`` times at ``width`` channels;
head = Linear(width * h' * w', K) with h' = H // 2**depth. Defaults: width 128, depth 3, instance norm
(GroupNorm(C, C)), giving 320,010 parameters on CIFAR-10. Depth 4 is the 64x64 default, depth 5 the 128x128 one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dd_bench.errors import UserError
from dd_bench.models.layers import UnsupportedResolution, check_norm, mnist_extra_padding, norm_layer
from dd_bench.models.registry import register_model


class ConvNet(nn.Module):
    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        image_size: tuple[int, int],
        width: int = 128,
        depth: int = 3,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        check_norm("convnet", norm)
        if width < 1 or depth < 1:
            raise UserError(f"convnet width and depth must be >= 1; got width={width}, depth={depth}")
        first_pad = 1 + mnist_extra_padding(in_channels, image_size)
        # The first conv maps H -> H + 2 * first_pad - 2 (28 -> 32 for MNIST); later convs keep the size and
        # each AvgPool2d(2, 2) floors it to half.
        h, w = (s + 2 * first_pad - 2 for s in image_size)
        max_depth = min(h, w).bit_length() - 1  # how many halvings keep at least one pixel
        if depth > max_depth:
            raise UnsupportedResolution(
                f"convnet with depth {depth} halves the feature map {depth} times, but {image_size[0]}x"
                f"{image_size[1]} inputs only allow depth <= {max_depth}"
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for d in range(depth):
            layers.append(nn.Conv2d(channels, width, kernel_size=3, padding=first_pad if d == 0 else 1))
            if norm != "none":
                layers.append(norm_layer(norm, width))
            # In place, as DC/MTT's ConvNet: the norm layer's and the conv's backward read their inputs, never
            # their outputs, so overwriting the output is safe under autograd, vmap and functional_call; it saves one
            # write of each feature map (a training step about 5% faster on a CPU, the test pass about 10%:
            # scripts/bench_relu_in_place.py). A forward hook that keeps the preceding layer's output sees it
            # overwritten: methods/decoupled/cam.py hands the next layer a copy for that reason.
            layers += [nn.ReLU(inplace=True), nn.AvgPool2d(kernel_size=2, stride=2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * (h >> depth) * (w >> depth), num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, width * h' * w'): the flattened last feature map, the classifier's input."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))  # (B, K)


@register_model("convnet")
def convnet(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ConvNet:
    return ConvNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


@register_model("convnet_bn")
def convnet_bn(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ConvNet:
    kwargs = {"norm": "batch", **kwargs}
    return convnet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


@register_model("convnetd4")
def convnetd4(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ConvNet:
    kwargs = {"depth": 4, **kwargs}
    return convnet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


@register_model("convnetd5")
def convnetd5(*, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any) -> ConvNet:
    kwargs = {"depth": 5, **kwargs}
    return convnet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
