"""Decoupled methods: a set made against frozen teachers, scored by knowledge distillation (SRe2L, RDED, CV-DD,
INFER, NRR-DD, HeLlO), one file each, and what they share: the recovery loop (``recovery.py``) with its BN-statistics
loss (``bn_statistics.py``), the clip range, recovery batches and teacher prologue (``common.py``), the class
activation maps (``cam.py``) and CV-DD's committee (``committee.py``)."""
