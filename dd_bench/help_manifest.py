"""Moved to :mod:`dd_bench.app.help_manifest`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.help_manifest import (
    DOC_LIMIT,
    MANIFEST_PATH,
    MANIFEST_VERSION,
    PROTOCOL_KEYS,
    build_manifest,
    field_docs,
    manifest_text,
    one_line,
    write_manifest,
)

__all__ = ["DOC_LIMIT", "MANIFEST_PATH", "MANIFEST_VERSION", "PROTOCOL_KEYS", "build_manifest",
           "field_docs", "manifest_text", "one_line", "write_manifest"]
