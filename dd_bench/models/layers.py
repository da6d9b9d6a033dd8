"""Building blocks shared by the DC model zoo: the norm choice, the 28x28 padding rule and resolution checks.

DC-style networks (VICO-UoE/DatasetCondensation ``networks.py``) hard-code heads for 32x32 inputs. These helpers
let each family compute its real feature-map size and fail at creation, with the reason, when the head would not
match, instead of failing with a shape error deep inside the first forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from dd_bench.errors import UserError

# "instance" is DC's "instancenorm": GroupNorm with one group per channel, i.e. per-sample, per-channel statistics
# with a learned affine, and no running buffers (so the model stays vmap-friendly).
NORMS = ("batch", "instance", "none")


class UnsupportedResolution(ValueError):
    """Raised by a model factory when the model cannot take the requested input resolution."""


def check_norm(model: str, norm: str, options: Sequence[str] = NORMS) -> None:
    if norm not in options:
        raise UserError(f"Unknown norm '{norm}' for {model}; options: {', '.join(sorted(options))}")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The 2d norm layer named by ``norm`` for ``channels`` feature maps (``nn.Identity`` for "none")."""
    check_norm("norm_layer", norm)
    if norm == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def mnist_extra_padding(in_channels: int, image_size: tuple[int, int]) -> int:
    """Extra zero padding (pixels per side) on the first conv, so 1-channel 28x28 images behave like 32x32.

    DC adds 2 pixels to the first conv's padding of ConvNet, LeNet, AlexNet and VGG when there is one channel:
    a 3x3 conv with padding 3 maps 28 -> 32, and a 5x5 conv with padding 4 maps 28 -> 32, so the 32x32 heads fit.
    DC keys this on ``channel == 1`` alone because its only grey-scale datasets were 28x28; we key it on
    1 channel *and* 28x28 so other grey-scale sizes (e.g. 8x8 digits) are not padded for no reason.
    """
    return 2 if in_channels == 1 and tuple(image_size) == (28, 28) else 0


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a conv or pooling window along one axis (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def require_feature_map(
    model: str,
    image_size: tuple[int, int],
    got: tuple[int, int],
    want: tuple[int, int],
    *,
    needs: str,
    why: str,
) -> None:
    """Raise :class:`UnsupportedResolution` unless the final feature map ``got`` is the head's ``want``."""
    if got != want:
        h, w = image_size
        raise UnsupportedResolution(
            f"{model} needs {needs} inputs ({why}); got {h}x{w}, which gives a {got[0]}x{got[1]} feature map "
            f"instead of {want[0]}x{want[1]}"
        )
