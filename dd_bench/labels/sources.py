"""Former home of the label-source registry; its names, for code that imports them from here (see CHANGELOG).

Each label source is now one file of :mod:`dd_bench.labels` registering one object
(:class:`dd_bench.labels.base.LabelSourceKind`); :mod:`dd_bench.labels.registry` asks them.
"""

from dd_bench.labels.base import LABEL_SOURCES, LabelContext, ResolvedLabels
from dd_bench.labels.registry import check_label_source, label_identity, label_source_names, resolve_labels
from dd_bench.labels.teacher import committee_identity as teacher_identity
from dd_bench.labels.teacher import committee_labels as section_teacher_labels
from dd_bench.labels.teacher import teacher_labels

__all__ = ["LABEL_SOURCES", "LabelContext", "ResolvedLabels", "check_label_source", "label_identity",
           "label_source_names", "resolve_labels", "section_teacher_labels", "teacher_identity", "teacher_labels"]
