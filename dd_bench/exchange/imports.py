"""``dd-bench import format=mtt|datm|dc|imagefolder|npz path=... dataset=... space=... out=DIR``: a set another
repository published, as a normal SyntheticSet (``dd-bench evaluate synset=DIR`` scores it under any protocol).

========== ==========================================================================================
format     ``path`` and what is read
========== ==========================================================================================
mtt        mtt-distillation's directory: ``images_best.pt``, ``labels_best.pt`` (class ids), and the
           learned lr when present (``synthetic_lr_best.pt`` or ``lr_best.pt``)
datm       DATM's directory: ``images_best.pt``, ``labels_best.pt`` (soft logits, N x C), ``lr_best.pt``
           (a row's class: its class-major position, as DATM orders them; not the logits' arg-max)
dc         DatasetCondensation's ``res_*.pt`` file: ``{"data": [[images, labels], ...]}``, the last
           experiment (``experiment=-1``) unless told otherwise
imagefolder a tree of class folders (named as the dataset's classes, or ``<index>_<name>`` as dd-bench exports
           write them: the name decides the class; bare indices only with ``classes=``) of images of the
           dataset's size, stored as uint8 pixels (a tree of JPEG files only: stored as those files, charged
           their bytes, read as their decoded pixels)
npz        dd-bench's own export (``synset.npz`` or ``synset.pt``), or any npz with ``images`` and ``labels``
========== ==========================================================================================

Class order (:mod:`dd_bench.data.class_map`): ``classes=FILE`` (one class name per line, in the order of the
file's labels) maps the labels of any format onto the dataset's class order; a dd-bench export's datasheet carries
its ``class_names`` and is checked the same way. A map that is not the dataset's classes in some order fails in one
line naming both orders. The imported set records the dataset's fingerprint (:meth:`RealData.fingerprint`); an
export whose datasheet names another fingerprint is imported with a note (the tensors differ: another dataset
version, root or ZCA).

Foreign files are read only with ``torch.load(weights_only=True)`` (a pickled object is refused) or numpy without
pickles. The user declares the image space (``space=normalized|zca|pixels|uint8``; dd-bench's own exports carry
it) and it is checked for plausibility. Shapes must fit the dataset (channels, size, classes) and the set must be
class-balanced (ipc = N / C). The set is written atomically; on any error nothing is left behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from dd_bench.data import RealData
from dd_bench.data.class_map import is_identity, map_onto, read_names_file
from dd_bench.errors import UserError
from dd_bench.exchange.pixels import check_space, to_pixels
from dd_bench.exchange.readers import (  # noqa: F401 (the readers' old home: still importable from here)
    IMAGE_SUFFIXES,
    IMPORT_FORMATS,
    IMPORTERS,
    get_importer,
)
from dd_bench.io import file_sha256, replace_dir_atomically
from dd_bench.synset import SyntheticSet, save_synset


def _declared_space(read: dict[str, Any], space: str | None, real: RealData) -> str:
    """The space of the read images: the datasheet's for dd-bench's own exports, else the user's declaration."""
    sheet = read.get("datasheet")
    if sheet and read.get("stored_exact"):
        stored = sheet["images"]["stored_space"]
        own = "uint8" if sheet["images"]["stored_encoding"] == "uint8" else (
            "zca" if stored.get("space") == "zca" else "normalized")
        if own == "normalized" and (list(stored.get("mean", [])) != list(real.mean)
                                    or list(stored.get("std", [])) != list(real.std)):
            raise UserError(f"the export was normalised with mean {stored.get('mean')} / std {stored.get('std')}; "
                            f"{real.name} uses {list(real.mean)} / {list(real.std)}")
        if space not in (None, own):
            raise UserError(f"space={space}, but the export's datasheet says its images are {own}")
        return own
    if read.get("space"):
        return read["space"]
    if space is None:
        raise UserError("declare the images' space: space=normalized (mean/std, as DC, MTT without ZCA), space=zca "
                        "(MTT/DATM with ZCA), space=pixels ([0, 1]) or space=uint8 (0-255)")
    return space


def _to_stored(images: torch.Tensor, space: str, real: RealData) -> tuple[torch.Tensor, str]:
    """(images as the set stores them, image_encoding)."""
    if space == "uint8":
        return images.round().clamp(0, 255).to(torch.uint8), "uint8"
    if space == "zca" and real.zca is None:
        raise UserError("space=zca needs the dataset's ZCA transform: add dataset.zca=true")
    if space == "normalized" and real.zca is not None:
        raise UserError("space=normalized (mean/std) images cannot be scored in ZCA space: drop dataset.zca=true")
    if space == "pixels":
        p = images.float()
        if real.zca is not None:
            return real.zca.forward(p.to(real.device)).cpu(), "model"
        mean = torch.tensor(real.mean).view(1, -1, 1, 1)
        std = torch.tensor(real.std).view(1, -1, 1, 1)
        return (p - mean) / std, "model"
    return images.float(), "model"


def synset_from_tensors(images: torch.Tensor, labels: torch.Tensor, *, real: RealData, space: str,
                        soft_labels: torch.Tensor | None = None, learned_lr: float | None = None,
                        name: str = "imported", origin: dict[str, Any] | None = None,
                        extras: dict[str, torch.Tensor] | None = None, what: str = "the tensors") -> SyntheticSet:
    """A SyntheticSet of ``real``'s dataset from user tensors, after every check (shapes, classes, balance, space)."""
    from dd_bench.methods.base import eval_assets_bytes, image_space_of

    images, labels = torch.as_tensor(images).detach().cpu(), torch.as_tensor(labels).detach().cpu()  # numpy too
    if soft_labels is not None:
        soft_labels = torch.as_tensor(soft_labels)
    shape = (real.channels, *real.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != shape:
        raise UserError(f"{what}: images of shape {tuple(images.shape)} do not fit {real.name} (N, {shape[0]}, "
                        f"{shape[1]}, {shape[2]})")
    if labels.is_floating_point() or labels.shape != (len(images),):
        raise UserError(f"{what}: labels of shape {tuple(labels.shape)} ({labels.dtype}) do not fit {len(images)} "
                        f"images of {real.num_classes} classes (class ids 0..{real.num_classes - 1})")
    outside = labels[(labels < 0) | (labels >= real.num_classes)]
    if len(outside):
        raise UserError(f"{what}: label {int(outside[0])} is outside the class ids 0..{real.num_classes - 1} of "
                        f"{real.name} ({len(outside)} label(s) out of range)")
    if soft_labels is not None and tuple(soft_labels.shape) != (len(images), real.num_classes):
        raise UserError(f"{what}: soft labels of shape {tuple(soft_labels.shape)}; ({len(images)}, "
                        f"{real.num_classes}) expected")
    counts = torch.bincount(labels, minlength=real.num_classes)
    if int(counts.min()) != int(counts.max()):
        raise UserError(f"{what}: the set is not class-balanced (images per class {counts.min()}..{counts.max()})")
    check_space(images, space, what=f"{what} images")
    stored, encoding = _to_stored(images, space, real)
    return SyntheticSet(
        images=stored, labels=labels.long(), dataset=real.name, ipc=int(counts[0]), method=name,
        class_names=list(real.class_names), image_space=image_space_of(real), image_encoding=encoding,
        soft_labels=None if soft_labels is None else soft_labels.detach().cpu().float(),
        label_kind="hard" if soft_labels is None else "soft_logits", learned_lr=learned_lr,
        extras=extras or {}, recommended_protocol="mtt", config={"name": name, "imported": origin or {}},
        provenance={"imported": origin or {}}, eval_assets_bytes=eval_assets_bytes(real))


def save_imported(synset: SyntheticSet, out: Path, real: RealData) -> Path:
    """Write the set to ``out`` atomically (with its preview)."""
    preview = None if synset.image_encoding == "uint8" else to_pixels(
        synset.images, encoding=synset.image_encoding, image_space=synset.image_space, zca=real.zca)
    return replace_dir_atomically(out, lambda tmp: save_synset(synset, tmp, preview_pixels=preview))


def _datasheet_beside(path: Path) -> dict[str, Any]:
    """The datasheet of a dd-bench export at ``path`` (an ImageFolder export's root), else {}."""
    sheet = path / "datasheet.json" if path.is_dir() else None
    try:
        return json.loads(sheet.read_text()) if sheet is not None and sheet.is_file() else {}
    except (OSError, ValueError):
        return {}  # a foreign file of that name says nothing about the data


def _apply_class_map(read: dict[str, Any], *, class_map: list[str] | None, real: RealData,
                     what: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(``read`` with its labels and soft-label columns in the dataset's class order, what was mapped) for a file
    whose labels come with class names: ``classes=`` (``class_map``), else a dd-bench export's datasheet. Without
    either, the labels are taken as the dataset's class ids (nothing says otherwise)."""
    sheet_names = (read.get("datasheet") or {}).get("class_names")
    if class_map is not None:
        names, source = list(class_map), "the class map (classes=)"
    elif sheet_names:
        names, source = [str(n) for n in sheet_names], "the export's datasheet class_names"
    else:
        return read, None
    perm = map_onto(names, classes=list(real.class_names), dataset=real.name, what=f"{source} of {what}")
    mapped = {"source": "classes" if class_map is not None else "datasheet", "names": names,
              "remapped": not is_identity(perm)}
    if is_identity(perm):
        return read, mapped
    labels = read["labels"].long()
    outside = labels[(labels < 0) | (labels >= len(names))]
    if len(outside):
        raise UserError(f"{what}: label {int(outside[0])} is beyond the {len(names)} names of {source}")
    order = torch.tensor(perm)
    read = {**read, "labels": order[labels]}  # file label j -> the dataset's index of the class it names
    soft = read.get("soft_labels")
    if soft is not None and soft.dim() == 2 and soft.shape[1] == len(perm):
        read["soft_labels"] = soft[:, torch.argsort(order)]  # column i of the result: the file's column of class i
    return read, mapped


def import_set(fmt: str, path: str | Path, *, real: RealData, out: str | Path, space: str | None = None,
               experiment: int = -1, name: str | None = None,
               classes: str | Path | list[str] | None = None) -> Path:
    """Read ``path`` in ``fmt``, check it against ``real`` and write it as a set to ``out``; returns ``out``.

    ``classes``: the class map of the file's labels (a names file, one class name per line in label order, or the
    list of names), mapped onto ``real``'s class order; for an ImageFolder it names the class of each bare-index
    folder."""
    importer = get_importer(fmt)
    path, out = Path(path), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"out={out} exists and is not empty; give a new directory")
    class_map = None if classes is None else (
        [str(c) for c in classes] if isinstance(classes, (list, tuple)) else read_names_file(classes))
    read = importer.read(path, real=real, experiment=experiment, class_map=class_map)
    mapped = None
    if not importer.maps_classes:
        read, mapped = _apply_class_map(read, class_map=class_map, real=real, what=str(path))
    elif class_map is not None:
        mapped = {"source": "classes", "names": class_map}
    declared = _declared_space(read, space, real)
    files = {f: file_sha256(path / f if path.is_dir() else path) for f in read["files"]
             if (path / f if path.is_dir() else path).is_file()}
    fingerprint = real.fingerprint()
    theirs = (read.get("datasheet") or _datasheet_beside(path)).get("data_fingerprint")
    if theirs and theirs != fingerprint:
        # Not refused: the same images can come from another root or release with other bytes; the score is
        # still the score of these tensors on this data, and the note says why it may differ from the datasheet's.
        print(f"note: {path} was distilled from data with fingerprint {theirs[:12]}, and {real.name} here has "
              f"{fingerprint[:12]} (another dataset version, root or ZCA): its recorded results may not carry over",
              file=sys.stderr)
    origin = {"format": fmt, "path": str(path), "space": declared, "files_sha256": files,
              **({"experiment": experiment} if importer.records_experiment else {}),
              **({"class_map": mapped} if mapped is not None else {}),
              **({"source_data_fingerprint": theirs} if theirs else {})}
    synset = synset_from_tensors(read["images"], read["labels"], real=real, space=declared,
                                 soft_labels=read.get("soft_labels"), learned_lr=read.get("learned_lr"),
                                 name=name or f"imported_{fmt}", origin=origin, extras=read.get("extras"),
                                 what=str(path))
    if read.get("jpeg_streams"):
        from dd_bench.synset.image_store import stored_as_jpeg

        quality = ((read.get("datasheet") or {}).get("images", {}).get("image_store") or {}).get("quality")
        synset = stored_as_jpeg(synset, read["jpeg_streams"], quality=quality)
    synset.provenance = {**synset.provenance, "data_fingerprint": fingerprint}  # what an export of it names
    return save_imported(synset, out, real)
