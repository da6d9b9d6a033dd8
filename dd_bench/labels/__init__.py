"""Label sources: what a student is trained against, for an augmented batch (hard classes, stored soft labels;
the decoupled family adds teachers, stored FKD labels and projectors)."""

from dd_bench.labels.base import HardLabels, LabelSource, StoredProbabilities, Targets, label_source_for

__all__ = ["HardLabels", "LabelSource", "StoredProbabilities", "Targets", "label_source_for"]
