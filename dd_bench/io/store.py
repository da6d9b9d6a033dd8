"""KeyedStore: a folder of cache entries named by key, with one inter-process lock per key.

Two processes that need the same entry (two sweep jobs asking for the same experts or reference row) take the
key's lock; the second waits, then finds the entry complete and reuses it instead of computing it again. Entries
themselves are written atomically (:mod:`dd_bench.io.atomic`), so readers that do not lock still never see half
of one. Locks are ``filelock`` files under ``<root>/.locks/``, deleted again when released
(:func:`dd_bench.io.locking.removable_lock`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from dd_bench.io.cache_paths import cache_subdir
from dd_bench.io.locking import removable_lock


class KeyedStore:
    """``KeyedStore("experts", cache_dir)`` -> entries at ``<cache root>/experts/<key>[suffix]``."""

    def __init__(self, kind: str, cache_dir: str | os.PathLike | None = None) -> None:
        self.kind = kind
        self.root = cache_subdir(kind, cache_dir)

    def path(self, key: str, suffix: str = "") -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"bad {self.kind} key {key!r}")
        return self.root / f"{key}{suffix}"

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the key's lock (blocking) for the duration of the block."""
        lock_dir = self.root / ".locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with removable_lock(lock_dir / f"{key}.lock"):
            yield


def path_lock(path: str | os.PathLike) -> contextlib.AbstractContextManager[None]:
    """A lock next to ``path`` (``.<name>.lock``, deleted on release), for outputs that live outside a cache
    (synthetic sets): ``with path_lock(out): ...``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return removable_lock(path.parent / f".{path.name}.lock")
