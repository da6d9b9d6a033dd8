"""The registry of label sources: what a set is distilled against at evaluation, with its bytes and its assets.

``resolve_labels(kind, synset=..., real=..., protocol=..., cache_dir=...) -> ResolvedLabels`` builds the source
named ``kind`` for a set (``auto``: the set's own, from its labels section) and says what it costs:

================= ======================================================= =========================== ============
kind              targets                                                  stored in the set           eval assets
================= ======================================================= =========================== ============
hard              the class (CE; under MixUp mixed one-hots, soft CE)       class ids                   none
learned           stored logits softmaxed once (DATM; v1 soft labels)      class ids + soft labels     none
static            one stored logit vector per image, KL at T (INFER)       class ids + logits          none
teacher           an online teacher / committee on each augmented batch    class ids                   the teachers
fkd               stored per-epoch fp16 teacher logits, replayed batches   class ids + label shards    none
distance          NRR-DD's two stored distances per instance per epoch     class ids + distance shards none
projector         HeLlO's projector online on each augmented batch         class ids + adapters + head the backbone
fkd_int8          the fkd labels, int8 with a per-row scale (a baseline)   class ids + int8 shards     none
fkd_top<k>        FKD's marginal smoothing: the k largest probabilities    class ids + top-k shards    none
                  at T per row, the rest shared uniformly (a baseline)
fkd_top<k>_renorm the k largest logits per row, the tail dropped (FKD's    class ids + top-k shards    none
                  marginal_renorm: the kept probabilities renormalised)
================= ======================================================= =========================== ============

A new kind registers a builder here; its source returns the targets
**and** the loss they go with (:class:`~dd_bench.train.targets.Targets`), so it can bring its own loss.
``identity`` goes into the record hash: a set scored with another source, or another teacher, is another record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F

from dd_bench.errors import UserError
from dd_bench.labels.fkd import FKDLabels, check_fkd_protocol
from dd_bench.labels.static import StaticLogits
from dd_bench.labels.teacher import MixedLabels, TeacherLogits
from dd_bench.registry import Registry
from dd_bench.train.targets import HardLabels, LabelSource, StoredProbabilities


@dataclass
class ResolvedLabels:
    source: LabelSource
    kind: str
    identity: str  # what the record hash covers: the kind, and for teachers their keys and BN mode
    stored: dict[str, int]  # bytes stored in the set for these labels, by part
    assets: dict[str, int] = field(default_factory=dict)  # bytes needed at evaluation besides the set, by name
    replay: Any = None  # stored batches the evaluator must replay (fkd)
    teachers: list[dict[str, Any]] = field(default_factory=list)  # specs of the teachers involved

    @property
    def stored_bytes(self) -> int:
        return sum(self.stored.values())

    @property
    def asset_bytes(self) -> int:
        return sum(self.assets.values())


@dataclass
class LabelContext:
    synset: Any  # SyntheticSet (on the evaluation device)
    real: Any  # RealData
    protocol: Any  # EvalProtocol | KDProtocol
    cache_dir: Path | None = None
    progress: bool = True

    @property
    def kd(self) -> bool:
        return self.protocol.trains_by_kd

    def class_id_bytes(self) -> dict[str, int]:
        return {"class_ids": self.synset.labels.numel() * self.synset.labels.element_size()}


LABEL_SOURCES: Registry[Callable[[LabelContext], ResolvedLabels]] = Registry("label source")


def _needs_kd(kind: str, ctx: LabelContext) -> None:
    if not ctx.kd:
        raise UserError(f"label source '{kind}' distils by KD: it needs a kd protocol (eval=kd, eval=kd-quick); "
                        f"protocol '{ctx.protocol.name}' trains on the set's own hard or learned labels")


@LABEL_SOURCES.register("hard")
def _hard(ctx: LabelContext) -> ResolvedLabels:
    labels = ctx.synset.labels
    source = MixedLabels(labels, ctx.real.num_classes) if ctx.kd else HardLabels(labels)
    return ResolvedLabels(source, "hard", "hard", ctx.class_id_bytes())


@LABEL_SOURCES.register("learned")
def _learned(ctx: LabelContext) -> ResolvedLabels:
    s = ctx.synset
    if s.soft_labels is None:
        raise UserError(f"label source 'learned' needs stored soft labels; the {s.method} set has none "
                        "(try label_source=hard)")
    probs = F.softmax(s.soft_labels.float(), dim=-1) if s.label_kind == "soft_logits" else s.soft_labels.float()
    source = MixedLabels(probs, ctx.real.num_classes, name="learned") if ctx.kd else StoredProbabilities(probs)
    stored = {**ctx.class_id_bytes(), "soft_labels": s.soft_labels.numel() * s.soft_labels.element_size()}
    if s.learned_lr is not None:
        stored["learned_lr"] = 4
    return ResolvedLabels(source, "learned", s.label_kind, stored)


@LABEL_SOURCES.register("static")
def _static(ctx: LabelContext) -> ResolvedLabels:
    _needs_kd("static", ctx)
    s = ctx.synset
    if s.soft_labels is None or s.label_kind != "soft_logits":
        raise UserError(f"label source 'static' needs stored logits; the {s.method} set has "
                        f"{s.label_kind} labels")
    stored = {**ctx.class_id_bytes(), "static_logits": s.soft_labels.numel() * s.soft_labels.element_size()}
    return ResolvedLabels(StaticLogits(s.soft_labels, ctx.protocol.temperature), "static", "static", stored)


def _set_teachers(ctx: LabelContext, kind: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    section = ctx.synset.label_info
    specs = section.get("teachers") or []
    if not specs:
        raise UserError(f"label source '{kind}' needs the set's teachers; the {ctx.synset.method} set names none "
                        f"(its own source is '{ctx.synset.label_source}')")
    return specs, section


def teacher_labels(specs: list[dict[str, Any]], *, real: Any, protocol: Any, weights: list[float] | None,
                   bn_train: bool, cache_dir: Path | None, progress: bool, stored: dict[str, int],
                   bn_split: int = 1) -> ResolvedLabels:
    """An online teacher committee from the set's specs (also the same-label-source random reference's)."""
    from dd_bench.teachers.spec import teacher_from_spec

    teachers = [teacher_from_spec(spec, real, cache_dir=cache_dir, progress=progress) for spec in specs]
    source = TeacherLogits([t.module for t in teachers], temperature=protocol.temperature, weights=weights,
                           bn_train=bn_train, bn_split=bn_split)
    identity = _teacher_identity([t.key for t in teachers], bn_train, weights, bn_split)
    assets = {f"teacher:{spec.get('recipe') or t.model}": t.parameter_bytes
              for spec, t in zip(specs, teachers, strict=True)}
    return ResolvedLabels(source, "teacher", identity, stored, assets, teachers=list(specs))


@LABEL_SOURCES.register("teacher")
def _teacher(ctx: LabelContext) -> ResolvedLabels:
    _needs_kd("teacher", ctx)
    specs, section = _set_teachers(ctx, "teacher")
    return section_teacher_labels(section, real=ctx.real, protocol=ctx.protocol, cache_dir=ctx.cache_dir,
                                  progress=ctx.progress, stored=ctx.class_id_bytes())


def section_teacher_labels(section: dict[str, Any], *, real: Any, protocol: Any, cache_dir: Path | None,
                           progress: bool, stored: dict[str, int]) -> ResolvedLabels:
    """:func:`teacher_labels` with everything a labels section says (teachers, weights, BN mode and split)."""
    return teacher_labels(section["teachers"], real=real, protocol=protocol, weights=section.get("weights"),
                          bn_train=bool(section.get("bn_train", False)), cache_dir=cache_dir, progress=progress,
                          stored=stored, bn_split=int(section.get("bn_split", 1)))


def _stored_entry(ctx: LabelContext, kind: str, key: str | None = None) -> dict[str, Any]:
    """The stored-labels entry (FKD logits or DBR distances) of the set for this protocol, or a clear error."""
    _needs_kd(kind, ctx)
    if ctx.synset.directory is None:
        raise UserError(f"label source '{kind}' reads stored labels from the set's directory; save the set first")
    return check_fkd_protocol(ctx.synset.label_info.get("fkd") or {}, ctx.protocol, ctx.synset.directory, key=key)


@LABEL_SOURCES.register("fkd")
def _fkd(ctx: LabelContext) -> ResolvedLabels:
    return _stored_fkd(ctx, None)


@LABEL_SOURCES.register("distance")
def _distance(ctx: LabelContext) -> ResolvedLabels:
    from dd_bench.labels.distance import DistanceLabels, distance_identity, distance_key, distance_settings

    s = ctx.synset
    settings = distance_settings(s.label_info)
    key = distance_key(ctx.protocol)
    entry = _stored_entry(ctx, "distance", key=key)
    source = DistanceLabels(labels=s.labels, alpha=settings["alpha"], norm=settings["norm"], synset_dir=s.directory,
                            entry=entry, num_images=len(s.images), num_classes=s.num_classes,
                            device=s.images.device)
    stored = {**ctx.class_id_bytes(), f"distance:{key}": int(entry["bytes"])}
    return ResolvedLabels(source, "distance", distance_identity(s.label_info, ctx.protocol), stored,
                          replay=source, teachers=list(entry.get("teachers") or []))


@LABEL_SOURCES.register("projector")
def _projector(ctx: LabelContext) -> ResolvedLabels:
    from dd_bench.labels.projector import ProjectorLogits, backbone_asset_name, projector_identity
    from dd_bench.projector import build_projector, projector_bytes

    _needs_kd("projector", ctx)
    s = ctx.synset
    section = s.label_info.get("projector")
    if not section:
        raise UserError(f"label source 'projector' needs a fitted projector; the {s.method} set has none "
                        "(method=hello makes one)")
    projector, backbone = build_projector(section, real=ctx.real, extras=s.extras, cache_dir=ctx.cache_dir,
                                          progress=ctx.progress)
    asset = int(backbone.identity["bytes"])
    source = ProjectorLogits(projector, temperature=ctx.protocol.temperature, asset_bytes=asset)
    stored = {**ctx.class_id_bytes(), **projector_bytes(s.extras)}
    return ResolvedLabels(source, "projector", projector_identity(s.label_info), stored,
                          {backbone_asset_name(backbone.identity): asset},
                          teachers=[{"backbone": backbone.identity}])


@LABEL_SOURCES.register("fkd_int8")
def _fkd_int8(ctx: LabelContext) -> ResolvedLabels:
    return _compressed_fkd(ctx, "int8")


@LABEL_SOURCES.register("fkd_top<k>")
def _fkd_topk(ctx: LabelContext, k: int = 1) -> ResolvedLabels:
    return _compressed_fkd(ctx, f"top{k}")


@LABEL_SOURCES.register("fkd_top<k>_renorm")
def _fkd_topk_renorm(ctx: LabelContext, k: int = 1) -> ResolvedLabels:
    return _compressed_fkd(ctx, f"top{k}_renorm")


def _compressed_fkd(ctx: LabelContext, kind: str) -> ResolvedLabels:
    return _stored_fkd(ctx, kind)


def _stored_fkd(ctx: LabelContext, compression: str | None) -> ResolvedLabels:
    """The stored FKD labels of this protocol, as stored (``compression=None``) or compressed (``int8``,
    ``top<k>``, ``top<k>_renorm``: charged at the compressed size)."""
    from dd_bench.labels.quantised import CompressedFKDLabels, compressed_entry_bytes, compressed_identity_name

    s = ctx.synset
    name = "fkd" if compression is None else f"fkd_{compression}"
    entry = _stored_entry(ctx, name)
    kwargs = dict(synset_dir=s.directory, entry=entry, num_images=len(s.images), num_classes=s.num_classes,
                  temperature=ctx.protocol.temperature, device=s.images.device)
    source = FKDLabels(**kwargs) if compression is None else CompressedFKDLabels(kind=compression, **kwargs)
    nbytes = int(entry["bytes"]) if compression is None else compressed_entry_bytes(entry, compression,
                                                                                    s.num_classes)
    stored = {**ctx.class_id_bytes(), f"{name}:{entry['key']}": nbytes}
    identity = name if compression is None else compressed_identity_name(compression)
    return ResolvedLabels(source, name, f"{identity}:{entry['key']}", stored, replay=source,
                          teachers=list(entry.get("teachers") or []))


def _builder(name: str) -> Callable[[LabelContext], ResolvedLabels] | None:
    """The builder of a label source name: a registered kind, or ``fkd_top<k>`` / ``fkd_top<k>_renorm`` with
    k >= 1."""
    from dd_bench.labels.quantised import TOPK_PATTERNS, topk_compression

    if name in LABEL_SOURCES and name not in TOPK_PATTERNS:
        return LABEL_SOURCES.get(name)
    compression = topk_compression(name)
    if compression is not None:
        return lambda ctx: _compressed_fkd(ctx, compression)
    return None


def label_source_names() -> list[str]:
    return ["auto", *LABEL_SOURCES.list()]


def check_label_source(name: str) -> None:
    """``auto`` or a registered kind; anything else fails naming the options (before any work is done)."""
    if name != "auto" and _builder(name) is None:
        raise UserError(f"Unknown label source '{name}'; available: {', '.join(label_source_names())}")


def label_identity(meta: dict[str, Any], kind: str, protocol: Any) -> str:
    """The identity :func:`resolve_labels` will give, from a set's meta.json alone (before loading anything):
    records are looked up by it, so a kept record is never one of another label source or teacher."""
    from dd_bench.labels.fkd import fkd_key

    section = meta.get("labels") or {}
    own = section.get("source") or ("hard" if meta.get("label_kind", "hard") == "hard" else "learned")
    check_label_source(kind)
    kind = own if kind == "auto" else kind
    if kind == "learned":
        return meta.get("label_kind", "soft_logits")
    if kind == "teacher":
        return teacher_identity(section)
    if kind == "fkd" or kind.startswith("fkd_"):
        from dd_bench.labels.quantised import compressed_identity_name

        name = kind if kind == "fkd" else compressed_identity_name(kind.removeprefix("fkd_"))
        return f"{name}:{fkd_key(protocol)}"
    if kind == "projector":
        from dd_bench.labels.projector import projector_identity

        return projector_identity(section)
    if kind == "distance":
        from dd_bench.labels.distance import distance_identity

        return distance_identity(section, protocol)
    return kind


def teacher_identity(section: dict[str, Any]) -> str:
    """The identity of a labels section's teachers (keys, BN mode, committee weights): what the record hash covers."""
    return _teacher_identity([t.get("key") for t in section.get("teachers") or []],
                             bool(section.get("bn_train", False)), section.get("weights"),
                             int(section.get("bn_split", 1)))


def _teacher_identity(keys: list[str], bn_train: bool, weights: list[float] | None, bn_split: int = 1) -> str:
    identity = "teacher:" + ",".join(keys) + (":bn_train" if bn_train else "")
    if bn_train and bn_split > 1:
        identity += f":split{bn_split}"
    if weights:
        identity += ":w" + ",".join(f"{w:.6g}" for w in weights)
    return identity


def resolve_labels(kind: str, *, synset: Any, real: Any, protocol: Any, cache_dir: Path | None = None,
                   progress: bool = True) -> ResolvedLabels:
    """The label source ``kind`` (``auto``: the set's own) for ``synset`` under ``protocol``."""
    check_label_source(kind)
    kind = synset.label_source if kind == "auto" else kind
    return _builder(kind)(LabelContext(synset, real, protocol, cache_dir, progress))

