"""Distribution and gradient matching: DM (``dm.py``), DC and DSA (``gradient_matching.py``)."""
