"""Reference rows scored under the same protocol as every method: the full training set, and random real
subsets of the same size as a synthetic set (seed i trains network i on subset i; the indices are recorded).

References cost as much as the methods they anchor, so results are cached on disk by a key of everything
that changes them (dataset contents, protocol, model, seeds, ipc, device type) and reused by later demos.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.eval.evaluate import EvalResult, train_and_score
from dd_bench.eval.protocol import EvalProtocol
from dd_bench.seeding import make_generator

REFERENCE_KINDS = ("full_data", "random_subset")
_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("DD_BENCH_CACHE", Path.home() / ".cache" / "dd_bench"))


def dataset_fingerprint(real: RealData) -> str:
    """SHA-256 over the training and test tensors: two loads of the same data give the same key."""
    h = hashlib.sha256()
    for t in (real.train_images, real.train_labels, real.test_images, real.test_labels):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    h.update(real.image_space.encode())
    if real.zca is not None:
        h.update(real.zca.sha256.encode())
    return h.hexdigest()


def random_subset_indices(real: RealData, ipc: int, seed: int) -> torch.Tensor:
    return class_balanced_indices(real.train_labels, ipc, real.num_classes,
                                  generator=make_generator(seed, "reference", "random_subset", ipc))


def _cache_key(kind: str, real: RealData, protocol: EvalProtocol, model: str, seeds: list[int], ipc: int | None) -> str:
    payload = {"v": _CACHE_VERSION, "kind": kind, "data": dataset_fingerprint(real), "protocol": protocol.to_dict(),
               "model": model, "seeds": seeds, "ipc": ipc, "device": real.device.type}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _read_cache(path: Path) -> EvalResult | None:
    try:
        d = json.loads(path.read_text())
        d.pop("acc_mean", None)
        d.pop("acc_std", None)
        return EvalResult(**d)
    except (OSError, ValueError, TypeError):
        return None


def _write_cache(path: Path, result: EvalResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ref.")
    with os.fdopen(fd, "w") as f:
        json.dump(result.to_dict(), f)
    os.replace(tmp, path)


def reference_result(
    kind: str,
    real: RealData,
    *,
    protocol: EvalProtocol,
    model: str,
    seeds: list[int],
    ipc: int | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[EvalResult, bool]:
    """Score a reference row; returns (result, came_from_cache). ``ipc`` is required for random subsets."""
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"Unknown reference kind '{kind}'; available: {', '.join(REFERENCE_KINDS)}")
    if kind == "random_subset" and ipc is None:
        raise ValueError("random_subset references need ipc")
    path = (cache_dir or default_cache_dir()) / "references" / f"{_cache_key(kind, real, protocol, model, seeds, ipc)}.json"
    cached = _read_cache(path) if path.is_file() else None
    if cached is not None:
        return cached, True
    if kind == "full_data":
        images, targets, extra = real.train_images, real.train_labels, {}
    else:
        subsets = [random_subset_indices(real, ipc, s) for s in seeds]
        images = [real.train_images[i] for i in subsets]
        targets = [real.train_labels[i] for i in subsets]
        extra = {"subset_indices": [i.cpu().tolist() for i in subsets]}
    result = train_and_score(
        model=model, images=images, targets=targets, real=real, protocol=protocol, lr=protocol.lr, seeds=seeds,
        transform=real.to_model_space, progress=progress,
        desc=f"reference {kind}{'' if ipc is None else f' ipc{ipc}'} {model}")
    result.extra.update(extra, reference=kind)
    _write_cache(path, result)
    return result, False
