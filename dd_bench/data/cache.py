"""On-disk cache of decoded datasets: uint8 tensors in safetensors plus a small JSON sidecar, never pickle.

Location: :func:`dd_bench.io.cache_root` (``cache_dir``, else a non-empty ``$DD_BENCH_CACHE``, else
``~/.cache/dd_bench``); files live under
``<cache_dir>/datasets/<name>-<key>.{safetensors,json}``. The key hashes the dataset name, the absolute source
directory, the layout, the load options (image_size) and a fingerprint of every file the decoder reads (relative
path, size, mtime in ns), so replacing or touching a source file invalidates the entry without hashing contents.
Writes are atomic (:mod:`dd_bench.io.atomic`), so a crashed or concurrent writer never leaves a half-written entry
under the final name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dd_bench.data.sources import Decoded
from dd_bench.io import atomic_save_safetensors, atomic_write_json, cache_root, json_sha256
from dd_bench.io.cache_paths import cache_subdir

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored tensors' meaning changes


def resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    return cache_root(cache_dir)


def fingerprint(files: Sequence[Path], directory: Path) -> list[tuple[str, int, int]]:
    """(path relative to ``directory``, size in bytes, mtime in ns) per file: cheap, one stat each."""
    out = []
    for f in files:
        st = f.stat()
        try:
            rel = str(f.relative_to(directory))
        except ValueError:
            rel = str(f.resolve())
        out.append((rel, st.st_size, st.st_mtime_ns))
    return sorted(out)


def cache_key(name: str, directory: Path, layout: str, files: Sequence[Path], options: dict[str, Any]) -> str:
    payload = {
        "format": CACHE_FORMAT,
        "name": name,
        "directory": str(directory.resolve()),
        "layout": layout,
        "options": options,
        "files": fingerprint(files, directory),
    }
    return json_sha256(payload, 24)


def entry_path(cache_dir: Path, name: str, key: str, suffix: str) -> Path:
    """``<cache_dir>/datasets/<name>-<key><suffix>``; other per-dataset assets (ZCA) use their own suffix."""
    return cache_subdir("datasets", cache_dir) / f"{name}-{key}{suffix}"


def save_decoded(cache_dir: Path, name: str, key: str, decoded: Decoded, info: dict[str, Any]) -> Path:
    """Write the entry; the tensors first, the sidecar (which marks the entry complete) last."""
    tensors = {
        "train_images": decoded.train_images.contiguous(),
        "train_labels": decoded.train_labels.contiguous(),
        "test_images": decoded.test_images.contiguous(),
        "test_labels": decoded.test_labels.contiguous(),
    }
    data_path = entry_path(cache_dir, name, key, ".safetensors")
    atomic_save_safetensors(data_path, tensors, metadata={"key": key})
    sidecar = {
        "format": CACHE_FORMAT,
        "name": name,
        "key": key,
        "class_names": decoded.class_names,
        "shapes": {k: list(v.shape) for k, v in tensors.items()},
        **info,
    }
    json_path = entry_path(cache_dir, name, key, ".json")
    atomic_write_json(json_path, sidecar)
    return data_path


def load_decoded(cache_dir: Path, name: str, key: str) -> tuple[Decoded, Path] | None:
    """The cached entry, or None when absent or unreadable (an unreadable entry is logged and ignored)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    data_path = entry_path(cache_dir, name, key, ".safetensors")
    json_path = entry_path(cache_dir, name, key, ".json")
    if not (data_path.is_file() and json_path.is_file()):
        return None
    try:
        sidecar = json.loads(json_path.read_text())
        with safe_open(str(data_path), framework="pt") as f:
            stored_key = (f.metadata() or {}).get("key")
        if sidecar.get("format") != CACHE_FORMAT or sidecar.get("key") != key or stored_key != key:
            raise ValueError("format or key mismatch")
        t = load_file(str(data_path))
        decoded = Decoded(
            t["train_images"],
            t["train_labels"],
            t["test_images"],
            t["test_labels"],
            class_names=list(sidecar["class_names"]),
        )
    except (OSError, ValueError, KeyError, SafetensorError) as e:  # a damaged entry is rebuilt, not fatal
        log.warning("ignoring unreadable dataset cache entry %s (%s); decoding again", data_path, e)
        return None
    return decoded, data_path
