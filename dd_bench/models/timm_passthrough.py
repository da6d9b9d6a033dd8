"""``timm.<name>`` models: any timm architecture, randomly initialised, sized to the dataset.

timm is imported lazily so that importing ``dd_bench.models`` stays fast when no timm model is used.
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from dd_bench.errors import UserError

TIMM_PREFIX = "timm."
TIMM_PATTERN = "timm.<any timm model>"  # how the passthrough appears in list_models() and error messages


def create_timm_model(
    model_name: str, *, num_classes: int, in_channels: int, image_size: tuple[int, int], **kwargs: Any
) -> nn.Module:
    """``timm.create_model(model_name, pretrained=False, ...)`` with ``img_size`` when the model accepts one.

    Weights are never downloaded: benchmark models are trained from scratch on the distilled set.
    """
    import timm

    if "pretrained" in kwargs:
        raise UserError("timm models are always created with pretrained=False; dd_bench never downloads weights")
    if not timm.is_model(model_name):
        close = difflib.get_close_matches(model_name, timm.list_models(), n=5)
        hint = f"; close matches: {', '.join(TIMM_PREFIX + c for c in close)}" if close else ""
        raise UserError(f"Unknown timm model '{model_name}'{hint}")
    common = dict(pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)
    try:
        # Transformers (ViT, Swin, ...) size their patch grid / position embeddings from img_size.
        return timm.create_model(model_name, img_size=image_size, **common)
    except TypeError as err:
        # CNNs are resolution-agnostic and reject the keyword ("... unexpected keyword argument 'img_size'").
        if "img_size" not in str(err):
            raise
    return timm.create_model(model_name, **common)
