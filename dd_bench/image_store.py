"""Moved to :mod:`dd_bench.synset.image_store`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.synset.image_store import (
    DEFAULT_JPEG_QUALITY,
    IMAGE_STORES,
    JPEG_MODES,
    JPEG_PART,
    apply_image_store,
    check_image_store,
    compose_jpeg,
    decode_jpeg,
    encode_jpeg,
    jpeg_composition,
    quantise,
    split_streams,
    store_identity,
    stored_as_jpeg,
)

__all__ = ["DEFAULT_JPEG_QUALITY", "IMAGE_STORES", "JPEG_MODES", "JPEG_PART", "apply_image_store", "check_image_store",
           "compose_jpeg", "decode_jpeg", "encode_jpeg", "jpeg_composition", "quantise", "split_streams",
           "store_identity", "stored_as_jpeg"]
