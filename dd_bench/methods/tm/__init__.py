"""Trajectory matching (MTT, FTD, DATM, TESLA, FYI): one core (``trajectory_matching.py``) with switches, the
registered methods (``variants.py``: each paper's defaults) and the core's parts: the matching gradient
(``gradient.py``) and its mode (``grad_mode.py``), labels and initialisation (``labels.py``), expert sampling
(``schedule.py``) and checkpoint selection (``selection.py``)."""
