"""RunRecord: one immutable JSON file per evaluation; every leaderboard, plot and export is derived from these.

A record is written once, atomically, to ``<results>/records/<record_id>.json``. The id is the start of the record
hash (:mod:`dd_bench.results.keys`: the set hash + the full protocol + model + seeds + label source), so re-running
the same config replaces its own file and nothing else, and two configs never share a file. Records written before
record hashes existed (version 1) still load; they are keyed the old way and shown as legacy.

>>> rec = RunRecord(kind="evaluation", method="dm", dataset="cifar10", ipc=10, protocol="mtt", protocol_version=1,
...                 model="convnet", seeds=[0, 1], accuracies=[48.0, 50.0], ranked=True)
>>> rec.acc_mean, round(rec.acc_std, 4)
(49.0, 1.4142)
>>> RunRecord.from_dict(rec.to_dict()) == rec
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import warnings
from pathlib import Path
from typing import Any, Literal

from dd_bench.io import atomic_write_text, json_sha256
from dd_bench.io.hashing import json_default

RECORD_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before record hashes (legacy, keyed by the old id)
RECORD_KINDS = ("evaluation", "reference")
RECORDS_DIRNAME = "records"
STORAGE_KEYS = ("images_bytes", "labels_bytes", "extras_bytes", "eval_assets_bytes", "total_bytes", "dtype",
                # Format-2 sets (dd_bench.eval.evaluate.storage_with_labels): the label source scored with, its
                # stored parts and the named evaluation assets (a ZCA matrix, an online teacher's parameters).
                "label_source", "labels_parts", "eval_assets", "total_with_assets_bytes")
_BYTE_KEYS = STORAGE_KEYS[:4]


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _normalise_storage(storage: dict[str, Any]) -> dict[str, Any]:
    unknown = set(storage) - set(STORAGE_KEYS)
    if unknown:
        raise ValueError(f"Unknown storage keys {sorted(unknown)}; expected {list(STORAGE_KEYS)}")
    out: dict[str, Any] = {key: storage.get(key) for key in STORAGE_KEYS}
    # A missing component is unknown, not zero; the total is only derived when every part is known.
    if out["total_bytes"] is None and all(out[key] is not None for key in _BYTE_KEYS):
        out["total_bytes"] = sum(int(out[key]) for key in _BYTE_KEYS)
    return out


@dataclasses.dataclass(kw_only=True)
class RunRecord:
    """Everything needed to trust, reproduce and tabulate one evaluation (or one reference measurement).

    Units: accuracies in percent on the real test set; ``acc_std`` is the sample std (ddof=1) over seeds, 0.0 for
    a single seed; storage in bytes as stored (``dtype`` says how); times in seconds of wall clock.
    ``kind="reference"`` marks comparison rows (full data, random real subset) rather than a method's result.
    ``ranked=False`` marks numbers that must never be ranked (the ``quick`` CPU protocol, best-of-checkpoints).
    ``extra`` is free-form (e.g. the subset indices of a random reference); ``provenance`` holds the full
    :func:`~dd_bench.tracking.provenance.collect_provenance` dict and ``config_path`` the resolved config file.
    """

    kind: Literal["evaluation", "reference"]
    method: str
    dataset: str
    ipc: int | None
    protocol: str
    protocol_version: int
    model: str
    seeds: list[int]
    accuracies: list[float]
    ranked: bool
    acc_mean: float | None = None
    acc_std: float | None = None
    storage: dict[str, Any] = dataclasses.field(default_factory=dict)
    distill_seconds: float | None = None
    eval_seconds: float | None = None
    peak_memory: dict[str, Any] = dataclasses.field(default_factory=lambda: {"bytes": None, "kind": "unavailable"})
    device: str = "unknown"
    torch_version: str = "unknown"
    package_version: str = "0+unknown"
    git_sha: str | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    config_path: str | None = None
    preset: str | None = None
    synset: str | None = None
    synset_sha256: str | None = None
    label_kind: str | None = None
    set_hash: str | None = None  # the evaluated set's hash (dd_bench.results.keys.set_hash); None for references
    record_hash: str | None = None  # what keys this record; None only in legacy (version 1) records
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    created: str = dataclasses.field(default_factory=_utc_now)
    record_version: int = RECORD_VERSION

    def __post_init__(self) -> None:
        if self.kind not in RECORD_KINDS:
            raise ValueError(f"Unknown record kind '{self.kind}'; available: {', '.join(RECORD_KINDS)}")
        if self.record_version not in READABLE_VERSIONS:
            raise ValueError(f"Record version {self.record_version} is not supported (this code reads "
                             f"{', '.join(map(str, READABLE_VERSIONS))})")
        if len(self.seeds) != len(self.accuracies) or not self.seeds:
            raise ValueError(
                f"Need one accuracy per seed; got {len(self.seeds)} seeds and {len(self.accuracies)} accuracies"
            )
        self.seeds = [int(s) for s in self.seeds]
        self.accuracies = [float(a) for a in self.accuracies]
        mean = statistics.fmean(self.accuracies)
        std = statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0
        # Stored summaries must agree with the per-seed values; a mismatch means a hand-edited or corrupt file.
        for name, derived in (("acc_mean", mean), ("acc_std", std)):
            given = getattr(self, name)
            if given is None:
                setattr(self, name, derived)
            elif not math.isclose(float(given), derived, rel_tol=1e-9, abs_tol=1e-6):
                raise ValueError(f"{name}={given} disagrees with the per-seed accuracies ({derived})")
            else:
                setattr(self, name, float(given))
        self.storage = _normalise_storage(self.storage)
        if set(self.peak_memory) != {"bytes", "kind"}:
            raise ValueError(f"peak_memory needs exactly the keys 'bytes' and 'kind'; got {sorted(self.peak_memory)}")

    @property
    def legacy(self) -> bool:
        """Written before record hashes: keyed by method/protocol name/seeds only, so variants could collide."""
        return self.record_hash is None

    @property
    def record_id(self) -> str:
        """16 hex digits identifying the run; also its file name. Timestamps and results are not part of it.

        The start of :attr:`record_hash`; legacy records hash what they carry (method, protocol name and version,
        model, seeds, set checksum, preset, kind, ranked), as version 1 did.
        """
        if self.record_hash is not None:
            return self.record_hash[:16]
        key = {
            "kind": self.kind,
            "method": self.method,
            "dataset": self.dataset,
            "ipc": self.ipc,
            "protocol": self.protocol,
            "protocol_version": self.protocol_version,
            "model": self.model,
            "seeds": self.seeds,
            "synset_sha256": self.synset_sha256,
            "preset": self.preset,
            "ranked": self.ranked,
        }
        return json_sha256(key, 16)  # the same bytes version 1 hashed (sorted keys, no spaces)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (deep copy); ``record_id`` is included for readers that do not use this class."""
        return {"record_id": self.record_id, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_dict`; unknown keys are an error so a typo never silently drops a field."""
        fields = dict(data)
        stored_id = fields.pop("record_id", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"Unknown run-record keys {sorted(unknown)}")
        record = cls(**fields)
        if stored_id is not None and stored_id != record.record_id:
            raise ValueError(f"Stored record_id {stored_id} does not match the record's content ({record.record_id})")
        return record


def provenance_fields(provenance: dict[str, Any]) -> dict[str, Any]:
    """RunRecord keyword arguments from a :func:`collect_provenance` dict: ``RunRecord(..., **provenance_fields(p))``.

    ``device`` names the hardware as well as the torch device (``"cuda:0 (NVIDIA H100 80GB HBM3)"``) because a
    timing is meaningless without the model of GPU or CPU.
    """
    device = str(provenance.get("device", "unknown"))
    name = provenance.get("device_name")
    return {
        "device": f"{device} ({name})" if name else device,
        "torch_version": str(provenance.get("torch_version", "unknown")),
        "package_version": str(provenance.get("package_version", "0+unknown")),
        "git_sha": provenance.get("git_sha"),
        "provenance": dict(provenance),
    }


def write_record(record: RunRecord, directory: Path | str) -> Path:
    """Write ``record`` to ``<directory>/records/<record_id>.json`` atomically and return the path.

    Atomic (:mod:`dd_bench.io.atomic`): a crash leaves either the old file or the new one, never half of one, so
    concurrent jobs writing into one results folder never corrupt each other's records. An existing file with the
    same name is replaced only if it holds the same run (same ``record_id``); anything else raises
    ``FileExistsError``.
    """
    records_dir = Path(directory) / RECORDS_DIRNAME
    records_dir.mkdir(parents=True, exist_ok=True)
    target = records_dir / f"{record.record_id}.json"
    if target.exists():
        try:
            existing_id = RunRecord.from_dict(json.loads(target.read_text(encoding="utf-8"))).record_id
        except (OSError, ValueError, TypeError) as err:
            raise FileExistsError(f"{target} exists and is not a readable run record ({err}); not overwriting") from err
        if existing_id != record.record_id:
            raise FileExistsError(f"{target} holds a different run ({existing_id}); not overwriting")
    text = json.dumps(record.to_dict(), indent=2, sort_keys=True, allow_nan=False, default=json_default) + "\n"
    return atomic_write_text(target, text)


def record_path(record_id: str, directory: Path | str) -> Path:
    return Path(directory) / RECORDS_DIRNAME / f"{record_id}.json"


def read_record(path: Path | str) -> RunRecord | None:
    """The record at ``path``, or None when it is absent or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return RunRecord.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def _record_files(root: Path) -> list[Path]:
    """Every ``records/*.json`` below ``root``. Hidden folders and files are in-flight temporaries (a checkpoint
    being swapped in, a record being written) and are never walked or read; a folder that vanishes mid-walk (a
    running job renaming its checkpoint) is skipped, so a leaderboard can be built while a sweep writes."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk skips what it cannot list
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if Path(dirpath).name == RECORDS_DIRNAME:
            files += [Path(dirpath) / f for f in filenames if f.endswith(".json") and not f.startswith(".")]
    return sorted(files)


def load_records(directory: Path | str) -> list[RunRecord]:
    """Every readable record under ``directory`` (any ``records/*.json`` below it), sorted by path.

    An unreadable or invalid file is skipped with a ``UserWarning`` naming it and the reason; this never raises
    for bad files, so one corrupt record cannot hide a whole leaderboard.
    """
    root = Path(directory)
    records: list[RunRecord] = []
    if not root.is_dir():
        return records
    for path in _record_files(root):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError("top level is not a JSON object")
            records.append(RunRecord.from_dict(data))
        except Exception as err:  # noqa: BLE001 - any bad file is skipped, never fatal (see docstring)
            warnings.warn(f"Skipping unreadable run record {path}: {err}", UserWarning, stacklevel=2)
    return records
