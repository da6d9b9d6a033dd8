"""Coresets of real images: random (``random_real.py``), herding and k-center (``herding.py``, ``kcenter.py``) in a
DeepCore-style feature space (``feature_space.py``)."""
