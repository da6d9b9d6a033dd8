"""Making a set's stored labels (``dd-bench relabel``; ``dd-bench run`` and exports with ``materialise=`` call it):
the set's teachers walk the protocol's epochs once (:func:`dd_bench.labels.fkd.relabel_fkd`) and what the label
source reads is written beside the set and recorded in its labels section.

What is stored is the source's: its ``stored_key(protocol)`` names the entry and its ``recorder`` says what a shard
holds per augmented batch (FKD logits by default, NRR-DD's distances for ``distance``). A source that reads no stored
labels (``teacher``, ``hard``, ...) relabels as ``fkd`` when asked to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dd_bench.errors import UserError
from dd_bench.labels.base import LabelSourceKind
from dd_bench.labels.fkd import relabel_fkd
from dd_bench.labels.registry import get_label_source
from dd_bench.labels.teacher import committee_labels
from dd_bench.synset import add_stored_labels, load_synset, read_meta
from dd_bench.synset.compatibility import check_compatible
from dd_bench.synset.labels_section import LabelsSection


def stored_labels_source(kind: str, section: LabelsSection, protocol: Any) -> LabelSourceKind:
    """The source whose stored labels ``kind`` asks for (``auto``: the set's own); ``fkd`` when it reads none."""
    source = get_label_source(kind, own=section.source)
    return source if source.stored_key(protocol) is not None else get_label_source("fkd")


def relabel_to_disk(*, synset_dir: Path, real: Any, protocol: Any, cache_dir: Path | None = None,
                    progress: bool = True, kind: str = "auto") -> dict[str, Any]:
    """Make the set's stored labels for ``protocol`` with the teachers its labels section names, as the label source
    ``kind`` reads them (``auto``: the set's own; FKD logits for a source that reads none, NRR-DD's distances for
    ``distance``). Returns the entry written to meta.json (an existing entry for this protocol is returned as it is).
    """
    if not protocol.trains_by_kd:
        raise UserError(f"relabel makes kd labels; protocol '{protocol.name}' is of the {protocol.family} family "
                        "(use eval=kd or eval=kd-quick)")
    section = LabelsSection.from_meta(read_meta(synset_dir))
    source = stored_labels_source(kind, section, protocol)
    key = source.stored_key(protocol)
    if key in section.stored:
        return section.stored[key]
    if not section.teachers:
        raise UserError(f"'{synset_dir}' names no teacher in its labels section (source '{section.source}'): there "
                        "is nothing to relabel with")
    synset = load_synset(synset_dir, device=real.device)
    check_compatible(synset, real)
    labels = committee_labels(section, real=real, protocol=protocol, cache_dir=cache_dir, progress=progress,
                              stored={})
    transform = real.to_model_space if synset.image_encoding == "uint8" else None
    entry = relabel_fkd(synset_dir=synset_dir, images=synset.images, teacher=labels.source, protocol=protocol,
                        augment=protocol.augment(real), num_classes=real.num_classes, dataset=real.name,
                        transform=transform, teachers_spec=section.teachers, progress=progress, key=key,
                        record=source.recorder(teacher=labels.source, labels=synset.labels,
                                               num_classes=real.num_classes))
    add_stored_labels(synset_dir, key, entry)
    return entry


def ensure_stored_labels(*, synset_dir: Path, real: Any, protocol: Any, label_source: str,
                         cache_dir: Path | None = None, progress: bool = True) -> bool:
    """Make the stored labels the label source ``label_source`` (``auto``: the set's own) reads under ``protocol``,
    when it reads any (``fkd`` and its compressed forms the FKD shards, ``distance`` the DBR ones); returns whether
    it does."""
    section = LabelsSection.from_meta(read_meta(synset_dir))
    source = get_label_source(label_source, own=section.source)
    if source.stored_key(protocol) is None:
        return False
    relabel_to_disk(synset_dir=synset_dir, real=real, protocol=protocol, cache_dir=cache_dir, progress=progress,
                    kind=source.name)
    return True
