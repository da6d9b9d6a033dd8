"""The two hashes that key every output: the set hash (which set) and the record hash (which number).

* **set hash**: what changes the synthetic set: the method and its resolved options, the dataset and the options
  that change its tensors (ZCA, image size), the data fingerprint (:meth:`RealData.fingerprint`: the tensors
  themselves, so a different root with the same files gives the same hash), ipc, seed, the validation split and
  how the images are stored (``image_store``, only when not the default ``native``).
* **record hash**: the set hash (or, for a set made elsewhere, the SHA-256 of its tensors) + the full protocol
  (every field, so ``eval.epochs=10`` and ``=300`` never share a record) + model + evaluation seeds + the label
  source it was scored with.

Neither covers where outputs go or how they are shown (``results``, ``out``, ``progress``, ``logger``, ``rerun``)
nor the device (recorded as provenance): the same config on another machine is the same entry.
"""

from __future__ import annotations

from typing import Any

from dd_bench.io import json_sha256

KEYS_VERSION = 1
# Dataset options that change the tensors a method sees; root/cache_dir/download only say where they come from.
DATASET_KEYS = ("name", "zca", "image_size")


def set_hash(*, method: str, method_config: dict[str, Any], dataset: dict[str, Any], data_fingerprint: str,
             ipc: int, seed: int, validation: float | None, image_store: dict[str, Any] | None = None) -> str:
    """64 hex digits naming a synthetic set by everything that changes it.

    ``image_store``: :func:`dd_bench.synset.image_store.store_identity` (uint8 or JPEG at a quality); None, the default
    ``native`` store, adds nothing, so the hash of every set made before the option is unchanged."""
    options = {k: v for k, v in method_config.items() if k not in ("name", "checkpoint_every")}
    return json_sha256({
        "v": KEYS_VERSION, "method": method, "options": options,
        "dataset": {k: dataset.get(k) for k in DATASET_KEYS}, "data": data_fingerprint,
        "ipc": int(ipc), "seed": int(seed), "validation": validation,
        **({"image_store": image_store} if image_store is not None else {}),
    })


def set_identity(meta: dict[str, Any]) -> str:
    """A set's identity for record hashes: its set hash, or ``sha256:<tensors>`` for sets made without one."""
    return meta.get("set_hash") or f"sha256:{meta['tensors_sha256']}"


def record_hash(*, set_id: str, protocol: dict[str, Any], model: str, seeds: list[int], label_source: str) -> str:
    """64 hex digits naming one evaluation: which set, under which full protocol, on which networks."""
    return json_sha256({"v": KEYS_VERSION, "kind": "evaluation", "set": set_id, "protocol": protocol,
                        "model": model, "seeds": [int(s) for s in seeds], "labels": label_source})


def reference_hash(*, reference: str, data_fingerprint: str, ipc: int | None, protocol: dict[str, Any], model: str,
                   seeds: list[int]) -> str:
    """64 hex digits naming a reference row (full data, random subset) by everything that changes its number."""
    return json_sha256({"v": KEYS_VERSION, "kind": "reference", "reference": reference, "data": data_fingerprint,
                        "ipc": ipc, "protocol": protocol, "model": model, "seeds": [int(s) for s in seeds]})


def readable_prefix(*, method: str, dataset: str, ipc: int, seed: int) -> str:
    """The human part of a set directory's name; the set hash follows it."""
    return f"{method}-{dataset}-ipc{ipc}-s{seed}"


def set_dirname(*, method: str, dataset: str, ipc: int, seed: int, set_hash_hex: str) -> str:
    return f"{readable_prefix(method=method, dataset=dataset, ipc=ipc, seed=seed)}-{set_hash_hex[:12]}"
