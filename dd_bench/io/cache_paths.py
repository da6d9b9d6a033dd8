"""Where caches live: one root for decoded data, ZCA matrices, reference rows, experts and teachers.

The root is the ``cache_dir`` given (the CLI's ``dataset.cache_dir``), else ``$DD_BENCH_CACHE`` when set and not
empty, else ``~/.cache/dd_bench``. Each kind of entry has its own folder under it (``datasets/``, ``references/``,
``experts/``, ``teachers/``).
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "DD_BENCH_CACHE"
CACHE_KINDS = ("datasets", "references", "experts", "teachers")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV, "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dd_bench"


def cache_subdir(kind: str, cache_dir: str | os.PathLike | None = None) -> Path:
    if kind not in CACHE_KINDS:
        raise ValueError(f"Unknown cache kind '{kind}'; available: {', '.join(CACHE_KINDS)}")
    return cache_root(cache_dir) / kind
