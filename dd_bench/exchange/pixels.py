"""A set's images between its stored space and pixels in [0, 1], and the plausibility checks of a declared space.

Stored spaces: ``uint8`` pixels (coresets; exact), ``mean_std`` model space (``(x/255 - mean) / std``) and ``zca``
(ZCA-whitened ``x/255``, MTT's convention), which needs the dataset's ZCA transform (matched by SHA-256).
"""

from __future__ import annotations

from typing import Any

import torch

from dd_bench.errors import UserError

SPACES = ("normalized", "zca", "pixels", "uint8")  # what an imported tensor's values are (declared by the user)


def to_pixels(images: torch.Tensor, *, encoding: str, image_space: dict[str, Any], zca: Any = None) -> torch.Tensor:
    """(N, C, H, W) stored images -> float32 pixels in [0, 1] (clamped; exact for uint8 sets)."""
    if encoding == "uint8":
        return images.float() / 255.0
    if image_space.get("space") == "zca":
        if zca is None or zca.sha256 != image_space.get("sha256"):
            raise UserError("the set is ZCA-whitened: its pixels need the dataset's ZCA transform; load the dataset "
                            f"with dataset.zca=true (matrix SHA-256 {str(image_space.get('sha256'))[:12]})")
        return zca.inverse(images.float()).clamp(0.0, 1.0)
    mean = torch.tensor(image_space["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(image_space["std"]).view(1, -1, 1, 1)
    return (images.float().cpu() * std + mean).clamp(0.0, 1.0)


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels * 255.0).round().clamp(0, 255).to(torch.uint8)


# |value| bound of a model-space (mean/std or ZCA) image: far beyond what distillation produces (sets measured here
# stay within about 20 standard deviations), far below 0-255 data read as normalised (up to (255 - mean) / std).
NORMALIZED_LIMIT = 50.0


def check_space(x: torch.Tensor, space: str, *, what: str) -> None:
    """Fail in one line when ``x``'s values cannot be in the declared ``space`` (pixels in [0, 1] declared as
    normalised, 0-255 values declared as [0, 1] pixels, negative values declared as pixels)."""
    if space not in SPACES:
        raise UserError(f"Unknown image space '{space}'; available: {', '.join(SPACES)}")
    if not x.is_floating_point():
        if space not in ("uint8", "pixels"):
            raise UserError(f"{what} holds {x.dtype} values; declare space=uint8 for 0-255 integer pixels")
        return
    lo, hi = float(x.min()), float(x.max())
    if space == "pixels" and (lo < -1e-3 or hi > 1 + 1e-3):
        hint = "0-255 values: declare space=uint8" if hi > 1.5 and lo >= 0 else "normalised values: declare " \
               "space=normalized (mean/std) or space=zca"
        raise UserError(f"{what} spans [{lo:.3g}, {hi:.3g}], not pixels in [0, 1] ({hint})")
    if space == "uint8" and (lo < 0 or hi > 255 or bool((x != x.round()).any())):
        raise UserError(f"{what} spans [{lo:.3g}, {hi:.3g}] with fractions: not 0-255 integer pixels")
    if space in ("normalized", "zca") and lo >= 0 and hi <= 1:
        raise UserError(f"{what} lies in [{lo:.3g}, {hi:.3g}]: these look like pixels in [0, 1], not {space} "
                        "values; declare space=pixels")
    if space in ("normalized", "zca") and max(abs(lo), abs(hi)) > NORMALIZED_LIMIT:
        hint = "0-255 pixels: declare space=uint8" if lo >= 0 else "check the scale of the values"
        raise UserError(f"{what} spans [{lo:.3g}, {hi:.3g}]: beyond +-{NORMALIZED_LIMIT:g}, not {space} values "
                        f"({hint}; pixels in [0, 1]: space=pixels)")
