"""Moved to :mod:`dd_bench.data.class_map`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.data.class_map import (
    NUMBERED,
    SHOWN,
    folder_classes,
    is_identity,
    map_onto,
    mismatch,
    read_names_file,
    show_order,
)

__all__ = ["NUMBERED", "SHOWN", "folder_classes", "is_identity", "map_onto", "mismatch", "read_names_file",
           "show_order"]
