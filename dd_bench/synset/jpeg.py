"""JPEG streams as a set stores them (``image_store=jpeg``, :mod:`dd_bench.synset.image_store`): encoded and decoded
as PIL writes and torchvision's ImageFolder loader reads a ``.jpg`` file, and kept one after another in one uint8
tensor (``images.jpeg``) split by their recorded lengths. Pure bytes and tensors: the composer that decodes a set at
load (:mod:`dd_bench.synset.compose`) and the exporters use it without the option's logic.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.synset.errors import SynsetError

JPEG_PART = "images.jpeg"  # the extras tensor holding the concatenated JPEG streams
JPEG_MODES = {1: "L", 3: "RGB"}  # channels -> PIL mode (ImageFolder's loader converts to RGB; digits are grey)


def encode_jpeg(images: torch.Tensor, *, quality: int) -> list[bytes]:
    """uint8 (N, C, H, W) -> one JPEG stream per image, as PIL writes a .jpg at this quality."""
    from PIL import Image

    arr = images.detach().cpu().permute(0, 2, 3, 1).numpy()
    mode = JPEG_MODES[arr.shape[-1]]
    out = []
    for a in arr:
        buf = io.BytesIO()
        Image.fromarray(a[..., 0] if mode == "L" else a, mode=mode).save(buf, format="JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def decode_jpeg(streams: list[bytes], *, channels: int) -> torch.Tensor:
    """JPEG streams -> uint8 (N, C, H, W), as torchvision's ImageFolder loader reads a file (PIL, converted)."""
    import numpy as np
    from PIL import Image

    out = []
    for i, data in enumerate(streams):
        try:
            with Image.open(io.BytesIO(data)) as img:
                arr = np.asarray(img.convert(JPEG_MODES[channels]))
        except Exception as err:  # noqa: BLE001 - a torn or foreign stream: name which one
            raise UserError(f"stored JPEG {i} could not be decoded ({type(err).__name__}: {err})") from None
        out.append(torch.from_numpy(arr.copy()).reshape(*arr.shape[:2], -1).permute(2, 0, 1))
    return torch.stack(out)


def jpeg_composition(streams: list[bytes], *, channels: int, quality: int | None) -> tuple[dict, torch.Tensor]:
    """(composition, ``images.jpeg`` tensor) for a set stored as these JPEG streams; quality None: not known."""
    from PIL import features

    blob = torch.frombuffer(bytearray(b"".join(streams)), dtype=torch.uint8) if streams else \
        torch.zeros(0, dtype=torch.uint8)
    composition = {"kind": "jpeg", "parts": [JPEG_PART], "lengths": [len(s) for s in streams],
                   "channels": channels, "quality": quality,
                   "dtype": "jpeg" if quality is None else f"jpeg q{quality}",
                   # The bytes depend on the codec build: recorded so a set made elsewhere can be told apart.
                   "codec": f"Pillow {features.version('pil')}, libjpeg {features.version('jpg')}"
                            + (f", libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
                               if features.check_feature("libjpeg_turbo") else "")}
    return composition, blob


def split_streams(composition: dict[str, Any], blob: torch.Tensor) -> list[bytes]:
    """``images.jpeg`` (concatenated streams, uint8) -> one JPEG file's bytes per image, by the recorded lengths."""
    lengths = [int(n) for n in composition["lengths"]]
    if sum(lengths) != blob.numel():
        raise SynsetError(f"the stored JPEG bytes ({blob.numel()}) do not add up to the recorded lengths "
                          f"({sum(lengths)}): the set is corrupted")
    data, out, at = blob.cpu().numpy().tobytes(), [], 0
    for n in lengths:
        out.append(data[at:at + n])
        at += n
    return out
