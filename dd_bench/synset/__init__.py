"""The synthetic set: the one on-disk format every method writes and the evaluator and exporters read.

``format.py`` holds the set type and its files (see there), ``labels_section.py`` its labels section,
``compose.py`` the images rebuilt at load from stored parts (INFER's compensators, JPEG streams; ``jpeg.py`` the
codec), ``image_store.py`` how a set stores its images, ``compatibility.py`` whether a set fits a data set as loaded
and ``errors.py`` :class:`SynsetError`. The package sits beneath the methods, the evaluator and the label sources:
loading a set imports none of them.
"""

from dd_bench.synset.compose import COMPOSERS, compose_images, register_composer
from dd_bench.synset.errors import SynsetError
from dd_bench.synset.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    IMAGE_ENCODINGS,
    LABEL_KINDS,
    META_FILE,
    PREVIEW_FILE,
    READABLE_VERSIONS,
    TENSORS_FILE,
    SyntheticSet,
    add_stored_labels,
    load_synset,
    read_meta,
    save_synset,
    synset_sha256,
    write_meta,
    write_preview,
)
from dd_bench.synset.labels_section import LabelsSection

__all__ = ["COMPOSERS", "FORMAT_NAME", "FORMAT_VERSION", "IMAGE_ENCODINGS", "LABEL_KINDS", "META_FILE", "PREVIEW_FILE",
           "READABLE_VERSIONS", "TENSORS_FILE", "LabelsSection", "SynsetError", "SyntheticSet", "add_stored_labels",
           "compose_images", "load_synset", "read_meta", "register_composer", "save_synset", "synset_sha256",
           "write_meta", "write_preview"]
