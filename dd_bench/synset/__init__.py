"""The synthetic set: the one on-disk format every method writes and the evaluator and exporters read.

``format.py`` holds the set type and its files (see there), ``labels_section.py`` its labels section and
``image_store.py`` how it stores its images. Beneath the methods, the evaluator and the label sources: loading a set
imports none of them.
"""

from dd_bench.synset.format import (
    COMPOSERS,
    FORMAT_NAME,
    FORMAT_VERSION,
    IMAGE_ENCODINGS,
    LABEL_KINDS,
    META_FILE,
    PREVIEW_FILE,
    READABLE_VERSIONS,
    TENSORS_FILE,
    SynsetError,
    SyntheticSet,
    add_stored_labels,
    compose_images,
    load_synset,
    read_meta,
    register_composer,
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
