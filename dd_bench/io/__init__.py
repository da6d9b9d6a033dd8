"""The storage layer every other package imports downward: atomic writes, hashes, cache paths, locked stores,
and checkpoints. Nothing here knows about data sets, methods or protocols."""

from dd_bench.io.atomic import (
    atomic_save_safetensors,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    replace_dir_atomically,
)
from dd_bench.io.cache_paths import CACHE_ENV, cache_root
from dd_bench.io.checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from dd_bench.io.hashing import canonical_json, file_sha256, json_sha256, tensors_sha256
from dd_bench.io.json_file import read_json_file
from dd_bench.io.store import KeyedStore

__all__ = [
    "CACHE_ENV",
    "KeyedStore",
    "atomic_save_safetensors",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "cache_root",
    "canonical_json",
    "file_sha256",
    "json_sha256",
    "load_checkpoint",
    "load_optimizer",
    "optimizer_tensors",
    "read_json_file",
    "replace_dir_atomically",
    "save_checkpoint",
    "tensors_sha256",
]
