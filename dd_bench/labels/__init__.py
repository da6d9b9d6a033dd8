"""Label sources: what a student is trained against, for an augmented batch, and everything about it.

Each kind of label source is one file here registering one :class:`~dd_bench.labels.base.LabelSourceKind` (its
identity for the record hash, its targets, what it stores and how relabelling makes that, its evaluation assets
and the reference row it is compared with); :mod:`dd_bench.labels.registry` asks them by name. This package imports
every one of its modules, so adding a file adds a source:

================= ===================================================================== =========================
file              kind(s)                                                                reference row labels
================= ===================================================================== =========================
hard.py           ``hard``: the class (CE; under MixUp mixed one-hots, soft CE)          hard
learned.py        ``learned``: stored soft labels softmaxed once (DATM)                  hard
static.py         ``static``: one stored logit vector per image, KL at T (INFER)         the teachers' logits
teacher.py        ``teacher``: an online teacher / committee on each augmented batch     the teachers online
fkd.py            ``fkd``: stored per-epoch fp16 teacher logits, replayed batches        the teachers online
quantised.py      ``fkd_int8``, ``fkd_top<k>``, ``fkd_top<k>_renorm``: fkd compressed     the teachers online
distance.py       ``distance``: NRR-DD's two stored distances per instance per epoch     the teachers online
projector.py      ``projector``: HeLlO's projector online on each augmented batch        the teachers online
================= ===================================================================== =========================

Besides them: ``base.py`` (the interface and ``LABEL_SOURCES``), ``registry.py`` (asking by name), ``relabel.py``
(making stored labels) and ``sources.py`` (the former registry module's names). A set's labels section is
:class:`dd_bench.synset.labels_section.LabelsSection`. The per-batch interface the training loop calls,
``targets(x_aug, idx, epoch, aug_params) -> Targets``, is :mod:`dd_bench.train.targets`'s.
"""

import importlib
import pkgutil

from dd_bench.labels.base import LABEL_SOURCES, LabelSourceKind, ResolvedLabels, register_label_source
from dd_bench.labels.hard import MixedLabels
from dd_bench.labels.teacher import TeacherLogits
from dd_bench.train.targets import HardLabels, LabelSource, StoredProbabilities, Targets, label_source_for

for _module in pkgutil.iter_modules(__path__):  # every file registers its kinds (alphabetical: deterministic)
    importlib.import_module(f"{__name__}.{_module.name}")

from dd_bench.labels.registry import (  # noqa: E402  (after every source is registered)
    check_label_source,
    get_label_source,
    label_identity,
    label_source_names,
    reference_label_kind,
    resolve_labels,
    same_label_kinds,
)

__all__ = ["LABEL_SOURCES", "HardLabels", "LabelSource", "LabelSourceKind", "MixedLabels", "ResolvedLabels",
           "StoredProbabilities", "Targets", "TeacherLogits", "check_label_source", "get_label_source",
           "label_identity", "label_source_for", "label_source_names", "reference_label_kind",
           "register_label_source", "resolve_labels", "same_label_kinds"]
