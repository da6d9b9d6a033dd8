"""How a synthetic set stores its images: the set-level ``image_store`` option (docs/storage.md).

* ``native`` (the default): the tensors the method made (float32 model space; uint8 pixels for coresets of real
  images). Nothing is converted and the option is left out of the set hash, so every existing set and hash stays.
* ``uint8``: 8-bit pixels, N x C x H x W bytes.
* ``jpeg``: each image encoded by Pillow as a JPEG file at ``jpeg_quality``. The set stores the JPEG streams, one
  after another, in the uint8 tensor ``images.jpeg`` (charged byte for byte: the images' bytes are the sum of the
  streams' lengths, kept in meta.json as a directory keeps file sizes), and the images are decoded at load
  (composition ``jpeg``: :mod:`dd_bench.synset.compose`, the codec :mod:`dd_bench.synset.jpeg`), so evaluation,
  relabelling, scoring and export all see the decoded pixels, JPEG artefacts included, as the official KD scripts
  train on the JPEG files they read back.

Quantisation follows the official scripts: de-normalise, clamp to [0, 1], then ``(x * 255).astype(np.uint8)``,
which truncates (it does not round): VILA-Lab/SRe2L@8d00cba ``SRe2L/*small_dataset/recover_cifar.py:165-167``
(Tiny: ``utils.py:89-91``), Jiacheng8/CV-DD@24097e9 ``recover/recover.py:143-145``, zhangxin-xd/UFC@83d19f8
``ufc_generation/utils.py:103-105`` (called from ``ufc_cifar.py:123-124``), LINs-lab/RDED@3f6453d
``synthesize/main.py:67-69``. Each then calls ``Image.save("....jpg")`` with no quality argument: Pillow's
default, quality 75 with 4:2:0 chroma subsampling (``test_image_storage.py`` checks that the bytes are identical).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.synset.compose import compose_jpeg
from dd_bench.synset.format import SyntheticSet
from dd_bench.synset.jpeg import (  # noqa: F401  (the codec's names, importable from here as before)
    JPEG_MODES,
    JPEG_PART,
    decode_jpeg,
    encode_jpeg,
    jpeg_composition,
    split_streams,
)

IMAGE_STORES = ("native", "uint8", "jpeg")
DEFAULT_JPEG_QUALITY = 75  # what PIL's Image.save(".jpg") uses when no quality is passed (the official scripts)


def check_image_store(image_store: str, jpeg_quality: int, *, channels: int | None = None) -> None:
    """One-line errors for a bad option, before any work: the value and the valid ones."""
    if image_store not in IMAGE_STORES:
        raise UserError(f"Unknown image_store '{image_store}'; available: {', '.join(IMAGE_STORES)}")
    if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
        raise UserError(f"jpeg_quality={jpeg_quality!r}: an integer from 1 to 100 (75: PIL's default)")
    if image_store != "jpeg" and jpeg_quality != DEFAULT_JPEG_QUALITY:
        raise UserError(f"jpeg_quality={jpeg_quality} only applies with image_store=jpeg (image_store is "
                        f"'{image_store}')")
    if image_store == "jpeg" and channels is not None and channels not in JPEG_MODES:
        raise UserError(f"image_store=jpeg encodes 1- or 3-channel images; this dataset has {channels} channels "
                        "(use image_store=uint8)")


def store_identity(image_store: str, jpeg_quality: int) -> dict[str, Any] | None:
    """What the option adds to the set hash: None for ``native`` (the hash is the one computed before the option)."""
    if image_store == "native":
        return None
    return {"store": image_store, **({"quality": int(jpeg_quality)} if image_store == "jpeg" else {})}


def quantise(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] (N, C, H, W) float -> uint8 by truncation, as ``(x * 255).astype(np.uint8)`` does."""
    return (pixels.detach().float().clamp(0.0, 1.0) * 255.0).floor().to(torch.uint8)


def stored_as_jpeg(synset: SyntheticSet, streams: list[bytes], *, quality: int | None) -> SyntheticSet:
    """A uint8 ``synset`` (imported) whose images are these JPEG files decoded: stored as the files, charged their
    bytes. The streams must decode to exactly the set's pixels (an export of a JPEG-stored set, a JPEG tree)."""
    channels = synset.images.shape[1]
    composition, blob = jpeg_composition(streams, channels=channels, quality=quality)
    if synset.image_encoding != "uint8" or not torch.equal(decode_jpeg(streams, channels=channels),
                                                           synset.images.cpu()):
        raise UserError("the JPEG streams do not decode to the set's images: they are not the files it was read from")
    synset.extras = {**synset.extras, JPEG_PART: blob}
    synset.composition = composition
    return synset


def apply_image_store(synset: SyntheticSet, *, image_store: str, jpeg_quality: int,
                      to_pixels: Callable[[torch.Tensor], torch.Tensor]) -> SyntheticSet:
    """``synset`` with its images stored as ``image_store`` says; ``native`` returns it unchanged (the same object).

    ``to_pixels``: model-space float images -> pixels in [0, 1] (the dataset's de-normalisation or ZCA inverse).
    A composed set (INFER: base images + compensators) is stored as its composites, as the official scripts save
    them; its parts are dropped. The images it had before are described in ``provenance["image_store"]``.
    """
    check_image_store(image_store, jpeg_quality, channels=synset.images.shape[1])
    if image_store == "native":
        return synset
    pixels = synset.images if synset.image_encoding == "uint8" else quantise(to_pixels(synset.images))
    pixels = pixels.detach().cpu()
    dropped = set((synset.composition or {}).get("parts", []))
    extras = {k: v for k, v in synset.extras.items() if k not in dropped}
    composition = None
    if image_store == "jpeg":
        composition, blob = jpeg_composition(encode_jpeg(pixels, quality=jpeg_quality),
                                             channels=pixels.shape[1], quality=jpeg_quality)
        extras[JPEG_PART] = blob
        pixels = compose_jpeg(composition, extras, synset.image_space)  # what every reader will see
    note = {"store": image_store, **({"quality": jpeg_quality} if image_store == "jpeg" else {}),
            "from": f"{synset.image_encoding} {str(synset.images.dtype).replace('torch.', '')}",
            "quantisation": "clamp to [0, 1], x 255, truncate (the official scripts' astype(np.uint8))"
            if synset.image_encoding != "uint8" else "none (already uint8 pixels)",
            **({"replaced_composition": synset.composition["kind"]} if synset.composition else {})}
    moved = dict(synset.__dict__)
    moved.update(images=pixels.to(synset.images.device), image_encoding="uint8", composition=composition,
                 extras={k: v.to(synset.images.device) for k, v in extras.items()},
                 provenance={**synset.provenance, "image_store": note})
    return SyntheticSet(**moved)
