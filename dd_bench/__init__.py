"""dd-bench: distil datasets, evaluate them with one shared evaluator, compare and export."""

__version__ = "0.1.0"
__all__ = ["__version__", "score"]


def __getattr__(name: str):
    # ``dd_bench.score`` without importing torch at ``import dd_bench`` (the CLI's startup stays light).
    if name == "score":
        from dd_bench.api import score

        return score
    raise AttributeError(f"module 'dd_bench' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})  # the lazy ``score`` too, for tab completion
