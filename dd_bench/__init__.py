"""dd-bench: distil datasets, evaluate them with one shared evaluator, compare and export."""

__version__ = "0.1.0"
