"""Label sources: what a student is trained against, for an augmented batch (hard classes, stored soft labels, an
online teacher committee; stored FKD labels and projectors come with the methods that make them)."""

from dd_bench.labels.teacher import MixedLabels, TeacherLogits
from dd_bench.train.targets import HardLabels, LabelSource, StoredProbabilities, Targets, label_source_for

LABEL_SOURCES = ("hard", "learned", "teacher")

__all__ = ["LABEL_SOURCES", "HardLabels", "LabelSource", "MixedLabels", "StoredProbabilities", "Targets",
           "TeacherLogits", "label_source_for"]
