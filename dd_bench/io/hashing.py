"""Hashes that name things: canonical JSON of a config, files, and tensors.

A hash of a config is the SHA-256 of its canonical JSON (sorted keys, no whitespace, enums by value, paths as
strings), so two configs that print the same YAML get the same hash on every machine and Python version.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


def json_default(obj: Any) -> Any:
    """JSON for the few non-JSON types configs hold: enums (their value) and paths (their text)."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON data: {type(obj).__name__} {obj!r}")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=json_default)


def json_sha256(obj: Any, length: int | None = None) -> str:
    """SHA-256 hex digest of ``canonical_json(obj)``, truncated to ``length`` hex digits when given."""
    digest = hashlib.sha256(canonical_json(obj).encode()).hexdigest()
    return digest if length is None else digest[:length]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensors_sha256(tensors: Iterable[torch.Tensor], extra: Iterable[str] = ()) -> str:
    """SHA-256 over the bytes, dtype and shape of each tensor (on any device), then the ``extra`` strings."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for s in extra:
        h.update(s.encode())
    return h.hexdigest()
