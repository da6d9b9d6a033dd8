"""The formats ``dd-bench import`` reads (the table in :mod:`dd_bench.exchange.imports`): one reader per format,
registered in :data:`IMPORTERS`. A reader returns the file's tensors as they are; every check against the data
set, the class map and the declared image space happens afterwards, for all formats alike (``import_set``).

Foreign files are read only with ``torch.load(weights_only=True)`` (a pickled object is refused) or numpy without
pickles.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dd_bench.data import RealData
from dd_bench.data.class_map import folder_classes
from dd_bench.errors import UserError, UserFileNotFoundError
from dd_bench.registry import Registry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


_NUMPY_SCALAR_GLOBALS = [np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar, np.dtype,
                         *(type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_))]


def _torch_file(path: Path) -> Any:
    if not path.is_file():
        raise UserFileNotFoundError(f"{path} does not exist")
    try:
        # DatasetCondensation's res_*.pt files keep their accuracies as numpy float64 scalars beside the tensors:
        # allow exactly the numpy scalar/dtype reconstructors (data, not code), nothing else.
        with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a pickled object, a torn file: the user's to fix
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} is not a tensor file torch.load(weights_only=True) accepts ({first[:160]})") \
            from None


def _tensor(value: Any, path: Path, what: str) -> torch.Tensor:
    if not torch.is_tensor(value):
        raise UserError(f"{path}: {what} is a {type(value).__name__}, not a tensor")
    return value.detach().cpu()


def _read_mtt(path: Path, soft: bool) -> dict[str, Any]:
    images = _tensor(_torch_file(path / "images_best.pt"), path, "images_best.pt")
    labels = _tensor(_torch_file(path / "labels_best.pt"), path, "labels_best.pt")
    lr, files = None, ["images_best.pt", "labels_best.pt"]
    for name in ("synthetic_lr_best.pt", "lr_best.pt"):
        if (path / name).is_file():
            lr = float(_tensor(_torch_file(path / name), path, name).reshape(-1)[0])
            files.append(name)
            break
    if lr is None:
        # MTT's distill.py logs its learned lr to wandb and saves no file of it: without one the set is scored with
        # the protocol's lr (0.01), not the lr MTT's own evaluation trains it with. Said, not refused: the images
        # are still the official ones.
        print(f"note: {path} has no synthetic_lr_best.pt or lr_best.pt: the set carries no learned lr, so eval=mtt "
              "trains it with the protocol's lr (0.01) instead of MTT's learned one; save the lr beside the images "
              "(torch.save(syn_lr, 'synthetic_lr_best.pt')) to import it", file=sys.stderr)
    out = {"images": images, "learned_lr": lr, "files": files}
    if labels.is_floating_point() and labels.dim() == 2:
        out.update(soft_labels=labels.float(), labels=labels.argmax(1))
    elif soft:
        raise UserError(f"{path}/labels_best.pt holds {tuple(labels.shape)} class ids; DATM stores N x C soft "
                        "labels: use format=mtt for class ids")
    else:
        out["labels"] = labels.long().reshape(-1)
    return out


def _read_dc(path: Path, experiment: int) -> dict[str, Any]:
    obj = _torch_file(path)
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, (list, tuple)) or not data:
        raise UserError(f"{path} has no 'data' list of [images, labels] (DatasetCondensation's res_*.pt layout)")
    try:
        images, labels = data[experiment]
    except (IndexError, ValueError, TypeError):
        raise UserError(f"{path}: experiment {experiment} is not an [images, labels] pair of its "
                        f"{len(data)} experiments") from None
    return {"images": _tensor(images, path, "images"), "labels": _tensor(labels, path, "labels").long().reshape(-1),
            "files": [path.name]}


def _read_imagefolder(path: Path, real: RealData, class_map: list[str] | None = None) -> dict[str, Any]:
    from PIL import Image

    if not path.is_dir():
        raise UserFileNotFoundError(f"{path} is not a directory of class folders")
    root = path / "train" if (path / "train").is_dir() else path
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    # Each folder's class is read from its name, never from its position or number alone: a tree written in
    # another class order (003_dog where the dataset's class 3 is cat) is remapped, a foreign name is refused.
    classes = folder_classes([f.name for f in folders], classes=list(real.class_names), dataset=real.name,
                             where=str(root), class_map=class_map)
    images, labels, streams = [], [], []  # streams: each file's bytes while every file is a JPEG
    for folder, cls in zip(folders, classes, strict=True):
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
            with Image.open(file) as img:
                arr = np.asarray(img.convert("L" if real.channels == 1 else "RGB"))
                if img.format != "JPEG":
                    streams = None
                elif streams is not None:
                    streams.append(file.read_bytes())
            images.append(torch.from_numpy(arr.copy()).reshape(*arr.shape[:2], -1).permute(2, 0, 1))
            labels.append(cls)
    if not images:
        raise UserError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) in class folders")
    shapes = {tuple(t.shape) for t in images}
    if len(shapes) != 1:
        raise UserError(f"{root}: the images differ in size ({sorted(shapes)[:3]}); the set needs one size")
    # A tree of JPEG files (the official SRe2L / CV-DD / INFER / RDED output, a JPEG-stored set's export) is stored
    # as those files and charged their bytes (dd_bench/synset/image_store.py); any other tree as uint8 pixels.
    return {"images": torch.stack(images), "labels": torch.tensor(labels), "space": "uint8", "files": [root.name],
            "jpeg_streams": streams}


def _read_npz(path: Path) -> dict[str, Any]:
    if path.is_dir():
        found = [path / n for n in ("synset.npz", "synset.pt") if (path / n).is_file()]
        if not found:
            raise UserFileNotFoundError(f"{path} holds no synset.npz or synset.pt")
        sheet = path / "datasheet.json"
        out = _read_npz(found[0])
        if sheet.is_file():
            out["datasheet"] = json.loads(sheet.read_text())
        return out
    if not path.is_file():
        raise UserFileNotFoundError(f"{path} does not exist")
    if path.suffix == ".pt":
        obj = _torch_file(path)
        if not isinstance(obj, dict):
            raise UserError(f"{path} holds a {type(obj).__name__}, not a dict of tensors")
        arrays = {k: _tensor(v, path, k) for k, v in obj.items()}
    else:
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: torch.from_numpy(f[k].copy()) for k in f.files}
        except ValueError as err:
            raise UserError(f"{path} is not a pickle-free npz file ({err})") from None
    for key in ("images", "labels"):
        if key not in arrays:
            raise UserError(f"{path} has no '{key}' array (it has {', '.join(sorted(arrays)) or 'none'})")
    out = {"images": arrays.get("images_stored", arrays["images"]), "labels": arrays["labels"].long(),
           "stored_exact": "images_stored" in arrays, "files": [path.name]}
    if "soft_labels" in arrays:
        out["soft_labels"] = arrays["soft_labels"]
    if "learned_lr" in arrays:
        out["learned_lr"] = float(arrays["learned_lr"].reshape(-1)[0])
    out["extras"] = {k.removeprefix("extras."): v for k, v in arrays.items() if k.startswith("extras.")}
    if "images_jpeg_lengths" in arrays and "images.jpeg" in out["extras"]:  # an export of a JPEG-stored set
        from dd_bench.synset.image_store import split_streams

        blob = out["extras"].pop("images.jpeg")
        out["jpeg_streams"] = split_streams({"lengths": arrays["images_jpeg_lengths"].tolist()}, blob.to(torch.uint8))
    return out


@dataclass(frozen=True)
class ImportFormat:
    """How one format is read: ``read(path, *, real, experiment, class_map)`` returns the tensors and the files
    they came from (``images``, ``labels``, ``files``; ``soft_labels``, ``learned_lr``, ``extras``, ``datasheet``,
    ``jpeg_streams`` where the format has them)."""

    read: Callable[..., dict[str, Any]]
    maps_classes: bool = False  # read applies the class map itself (an ImageFolder's folder names decide the class)
    records_experiment: bool = False  # the file holds several experiments: the origin records which one was read


# Listed in registration order, the order help shows.
IMPORTERS: Registry[ImportFormat] = Registry("import format", kind="spec", sort=False)


def get_importer(fmt: str) -> ImportFormat:
    return IMPORTERS.get(fmt)


def _read_mtt_format(path: Path, *, real: RealData, experiment: int, class_map: list[str] | None) -> dict[str, Any]:
    return _read_mtt(path, soft=False)


def _read_datm_format(path: Path, *, real: RealData, experiment: int, class_map: list[str] | None) -> dict[str, Any]:
    # A DATM row's class is its position, never its logits' arg-max: DATM.py builds label_syn class-major
    # ([0]*ipc + [1]*ipc + ..., L133), initialises the images class by class in that order and learns the logits row
    # by row, so learning may move a row's arg-max to another class (seen within 12 iterations of a ledger smoke run).
    read = _read_mtt(path, soft=True)
    n, k = len(read["images"]), real.num_classes
    if n % k:
        raise UserError(f"{path}: {n} images cannot be DATM's class-major blocks of {k} classes (ipc per class)")
    read["labels"] = torch.arange(k).repeat_interleave(n // k)
    return read


def _read_dc_format(path: Path, *, real: RealData, experiment: int, class_map: list[str] | None) -> dict[str, Any]:
    return _read_dc(path, experiment)


def _read_imagefolder_format(path: Path, *, real: RealData, experiment: int,
                             class_map: list[str] | None) -> dict[str, Any]:
    return _read_imagefolder(path, real, class_map)


def _read_npz_format(path: Path, *, real: RealData, experiment: int, class_map: list[str] | None) -> dict[str, Any]:
    return _read_npz(path)


IMPORTERS.register("mtt")(ImportFormat(_read_mtt_format))
IMPORTERS.register("datm")(ImportFormat(_read_datm_format))
IMPORTERS.register("dc")(ImportFormat(_read_dc_format, records_experiment=True))
IMPORTERS.register("imagefolder")(ImportFormat(_read_imagefolder_format, maps_classes=True))
IMPORTERS.register("npz")(ImportFormat(_read_npz_format))
# The format names as the tuple this module held before the registry (kept for code that imports it).
IMPORT_FORMATS = tuple(IMPORTERS.list())
