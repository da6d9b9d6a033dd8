"""Asking the label sources: by name (``auto``: the set's own), for a record's identity, the targets, the reference
rows a set is compared with and what an export bundles. Everything outside :mod:`dd_bench.labels` goes through here
(or through one source's object), never through the keys of a labels section.

``LABEL_SOURCES`` is filled by the files of :mod:`dd_bench.labels`, each registering its kind when imported; the
package imports every one of its modules, so a new file is a new source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError
from dd_bench.labels.base import LABEL_SOURCES, ExportAsset, LabelContext, LabelSourceKind, ResolvedLabels
from dd_bench.labels.teacher import committee_assets, committee_needs
from dd_bench.synset.labels_section import LabelsSection


def find_label_source(name: str) -> LabelSourceKind | None:
    """The kind a name asks for (a registered name, or a member of a registered family such as ``fkd_top5``)."""
    if name in LABEL_SOURCES:
        kind = LABEL_SOURCES.get(name)
        if kind.for_name(name) is kind:
            return kind
    for registered in LABEL_SOURCES.list():
        found = LABEL_SOURCES.get(registered).for_name(name)
        if found is not None:
            return found
    return None


def label_source_names() -> list[str]:
    return ["auto", *LABEL_SOURCES.list()]


def check_label_source(name: str) -> None:
    """``auto`` or a registered kind; anything else fails naming the options (before any work is done)."""
    if name != "auto" and find_label_source(name) is None:
        raise UserError(f"Unknown label source '{name}'; available: {', '.join(label_source_names())}")


def get_label_source(name: str, *, own: str | None = None) -> LabelSourceKind:
    """The kind ``name`` asks for; ``auto`` asks for ``own`` (the set's own source)."""
    check_label_source(name)
    kind = find_label_source(own if name == "auto" else name)
    if kind is None:
        raise UserError(f"the set's own label source '{own}' is not registered here; available: "
                        f"{', '.join(label_source_names())}")
    return kind


def label_identity(meta: Mapping[str, Any], kind: str, protocol: Any) -> str:
    """The identity :func:`resolve_labels` will give, from a set's meta.json alone (before loading anything):
    records are looked up by it, so a kept record is never one of another label source or teacher."""
    section = LabelsSection.from_meta(meta)
    return get_label_source(kind, own=section.source).identity(section, protocol=protocol,
                                                               label_kind=meta.get("label_kind"))


def resolve_labels(kind: str, *, synset: Any, real: Any, protocol: Any, cache_dir: Path | None = None,
                   progress: bool = True) -> ResolvedLabels:
    """The label source ``kind`` (``auto``: the set's own) for ``synset`` under ``protocol``."""
    source = get_label_source(kind, own=synset.label_source)
    ctx = LabelContext(synset, real, protocol, cache_dir, progress)
    source.check_kd(ctx)
    return dataclasses.replace(source.resolve(ctx), kd_only=source.kd_only)


def reference_label_kind(source: str | None) -> str:
    """The reference row's label kind for a set scored with ``source``: ``hard``, ``teacher`` or ``static`` (hard
    for a name no registered source answers: a custom source object's, or one removed since)."""
    kind = find_label_source(str(source or "hard"))
    return "hard" if kind is None else kind.reference_kind


def same_label_kinds(section: LabelsSection | Mapping[str, Any], sources: list[str]) -> tuple[str, ...]:
    """How the random-subset rows beside a set are labelled by its teachers, to match the label sources scored
    (``auto``: the set's own; each source's ``reference_kind``): none for hard or learned labels or no teachers."""
    section = LabelsSection.coerce(section)
    if not section.teachers:
        return ()
    kinds = []
    for source in sources:
        kind = reference_label_kind(section.source if source == "auto" else source)
        if kind != "hard" and kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def export_assets(section: LabelsSection, *, cache_dir: Path | None) -> list[ExportAsset]:
    """The files a set's labels need at evaluation, for an export: its teachers', then each source's own."""
    own = [a for name in LABEL_SOURCES.list() for a in LABEL_SOURCES.get(name).export_assets(section,
                                                                                             cache_dir=cache_dir)]
    return committee_assets(section, cache_dir=cache_dir) + own


def needs_at_evaluation(section: LabelsSection) -> list[str]:
    """What a set's labels need at evaluation besides the set, as its datasheet lists it."""
    return committee_needs(section) + [need for name in LABEL_SOURCES.list()
                                       for need in LABEL_SOURCES.get(name).needs_at_evaluation(section)]
