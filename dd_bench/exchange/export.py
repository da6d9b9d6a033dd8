"""``dd-bench export synset=DIR format=imagefolder|npz|pt|hf out=DIR``: a set in a format other code reads, with a
datasheet (``README.md`` + ``datasheet.json``: method, dataset, its class names in label order and data fingerprint,
ipc, the protocol results recorded for it, storage, provenance, the source data's licence, and what its labels
need). Every format names the rendered datasheet ``README.md`` (:data:`DATASHEET_FILE`).

========== =============================================================================================
format     what ``out`` holds besides the datasheet
========== =============================================================================================
npz        ``synset.npz``: ``images`` (de-normalised float32 pixels in [0, 1], or uint8 for pixel sets),
           ``images_stored`` (the exact stored tensor, in the space the datasheet names), ``labels`` (int64),
           ``soft_labels`` / ``learned_lr`` where stored, ``extras.<name>`` (e.g. INFER's compensators, HeLlO's
           adapters) and ``labels.<key>.<epoch>.<tensor>`` for every stored label shard (FKD, DBR); a JPEG-stored
           set (``image_store=jpeg``) adds its streams (``extras.images.jpeg``) and ``images_jpeg_lengths``, and
           ``images`` / ``images_stored`` are the decoded uint8 pixels
pt         ``synset.pt``: the same tensors as a dict (``torch.load(weights_only=True)`` reads it)
imagefolder ``train/<class index>_<class name>/<i>.png`` (8-bit; a JPEG-stored set: its stored ``.jpg`` files
           byte for byte), and ``labels.npz`` with the rest of the npz
hf         a ``datasets.load_from_disk`` directory (``image``, ``label`` and, where stored, ``soft_label``);
           needs the ``datasets`` package (``pip install datasets``)
========== =============================================================================================

A set whose labels need a teacher or a projector backbone at evaluation is exported **self-contained**: the
models' weights files from the cache go to ``assets/`` and are counted in the datasheet; when one is not in the
cache the datasheet says the export is not self-contained and names what is missing. Or its labels are
**materialised** for one named kd protocol (``materialise=kd``: stored FKD labels made first, exported with the
set, no weights copied); the datasheet says which. ``out`` is written to a
temporary sibling and renamed into place: nothing half-written is left behind, and an existing non-empty ``out``
is refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dd_bench.errors import UserError
from dd_bench.exchange.datasheet import datasheet, datasheet_markdown
from dd_bench.exchange.pixels import to_pixels, to_uint8
from dd_bench.io import atomic_write_json, atomic_write_text, replace_dir_atomically
from dd_bench.registry import Registry
from dd_bench.synset import load_synset, read_meta

# Each format's writer puts the set's own files into the (temporary) output directory; export_synset adds the
# datasheet and the models' weights for every format alike. Listed in registration order, the order help shows.
EXPORTERS: Registry = Registry("export format", kind="spec", sort=False)
# One name for the rendered datasheet in every format, so a reader (or a script) finds it without knowing the format.
# README.md rather than DATASHEET.md: it is the file GitHub, file browsers and the Hugging Face Hub (as the dataset
# card) show first, and nothing breaks on it: datasets.load_from_disk reads only its own files (state.json,
# dataset_info.json, *.arrow), torchvision's ImageFolder reads train/, and the card has no YAML header for the Hub to
# misread (tests/test_exchange.py loads every format with it in place).
DATASHEET_FILE = "README.md"


def export_tensors(synset_dir: Path, synset: Any, *, zca: Any = None) -> dict[str, torch.Tensor]:
    """Every tensor an npz / pt export holds (see the module table), on the CPU."""
    from safetensors.torch import load_file

    stored = synset.images.detach().cpu()  # a composed set's (INFER's) composites; its parts are extras
    images = stored if synset.image_encoding == "uint8" else to_pixels(
        stored, encoding=synset.image_encoding, image_space=synset.image_space, zca=zca)
    out = {"images": images, "images_stored": stored, "labels": synset.labels.cpu()}
    if synset.soft_labels is not None:
        out["soft_labels"] = synset.soft_labels.cpu()
    if synset.learned_lr is not None:
        out["learned_lr"] = torch.tensor(synset.learned_lr, dtype=torch.float32)
    out.update({f"extras.{k}": v.cpu() for k, v in synset.extras.items()})
    if (synset.composition or {}).get("kind") == "jpeg":  # image_store=jpeg: the lengths split extras.images.jpeg
        out["images_jpeg_lengths"] = torch.tensor(synset.composition["lengths"], dtype=torch.int64)
    for key, entry in synset.label_section.stored.items():
        for epoch, shard in enumerate(entry["shards"]):
            for name, t in load_file(str(synset_dir / entry["dir"] / shard["file"])).items():
                out[f"labels.{key}.{epoch:05d}.{name}"] = t
    return {k: v.detach().contiguous() for k, v in out.items()}


def get_exporter(fmt: str) -> Callable[..., None]:
    """The writer of export format ``fmt``: ``writer(root, *, synset, tensors, pixels)`` fills ``root``."""
    return EXPORTERS.get(fmt)


@EXPORTERS.register("imagefolder")
def _imagefolder(root: Path, *, synset: Any, tensors: dict[str, torch.Tensor], pixels: torch.Tensor) -> None:
    jpeg = None
    if (synset.composition or {}).get("kind") == "jpeg":
        from dd_bench.synset.image_store import JPEG_PART, split_streams

        jpeg = split_streams(synset.composition, synset.extras[JPEG_PART])
    _write_png_tree(root, pixels, synset.labels.cpu(), synset.class_names, jpeg=jpeg)
    rest = {k: v.numpy() for k, v in tensors.items()  # the JPEG bytes are the .jpg files themselves
            if k not in ("images", "images_stored", "extras.images.jpeg", "images_jpeg_lengths")}
    np.savez_compressed(root / "labels.npz", **rest)


@EXPORTERS.register("npz")
def _npz(root: Path, *, synset: Any, tensors: dict[str, torch.Tensor], pixels: torch.Tensor) -> None:
    np.savez_compressed(root / "synset.npz", **{k: v.numpy() for k, v in tensors.items()})


@EXPORTERS.register("pt")
def _pt(root: Path, *, synset: Any, tensors: dict[str, torch.Tensor], pixels: torch.Tensor) -> None:
    torch.save(tensors, root / "synset.pt")


@EXPORTERS.register("hf")
def _hf(root: Path, *, synset: Any, tensors: dict[str, torch.Tensor], pixels: torch.Tensor) -> None:
    _write_hf(root, pixels, synset.labels.cpu(), synset.soft_labels, synset.class_names)


# The format names as the tuple this module held before the registry (kept for code that imports it).
EXPORT_FORMATS = tuple(EXPORTERS.list())


def _write_png_tree(root: Path, pixels: torch.Tensor, labels: torch.Tensor, class_names: list[str],
                    jpeg: list[bytes] | None = None) -> None:
    """8-bit PNGs, or for a JPEG-stored set its stored JPEG files byte for byte (``.jpg``: nothing re-encoded)."""
    from PIL import Image

    arr = to_uint8(pixels).permute(0, 2, 3, 1).numpy()
    for i, (img, label) in enumerate(zip(arr, labels.tolist(), strict=True)):
        folder = root / "train" / f"{label:03d}_{class_names[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        if jpeg is not None:
            (folder / f"{i:06d}.jpg").write_bytes(jpeg[i])
        else:
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(folder / f"{i:06d}.png")


def _write_hf(root: Path, pixels: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None,
              class_names: list[str]) -> None:
    try:
        import datasets
    except ImportError:
        raise UserError("format=hf needs the datasets package: pip install datasets (or use format=npz)") from None
    from PIL import Image

    arr = to_uint8(pixels).permute(0, 2, 3, 1).numpy()
    columns = {"image": [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arr],
               "label": labels.tolist()}
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(class_names))}
    if soft is not None:
        columns["soft_label"] = soft.float().tolist()
        features["soft_label"] = datasets.Sequence(datasets.Value("float32"))
    datasets.Dataset.from_dict(columns, features=datasets.Features(features)).save_to_disk(str(root))


def _copy_assets(root: Path, synset: Any, cache_dir: Path | None) -> dict[str, Any]:
    """The files the set's labels need at evaluation (its label sources say which), copied beside it; what is
    missing is named."""
    from dd_bench.labels.registry import export_assets

    needs = export_assets(synset.label_section, cache_dir=cache_dir)
    copied, missing, total = [], [], 0
    for asset in needs:
        if asset.source is None:
            continue  # needed, but nothing of its own to bundle
        if not asset.present:
            missing.append(asset.what)
            continue
        dst = root / asset.target
        if asset.files:  # a directory: its files, the first one counted
            dst.mkdir(parents=True)
            for name in asset.files:
                shutil.copy2(asset.source / name, dst / name)
            total += (dst / asset.files[0]).stat().st_size
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(asset.source, dst)
            total += dst.stat().st_size
        copied.append(asset.target)
    return {"needed": bool(needs), "self_contained": not missing, "copied": copied, "missing": missing,
            "bytes": total}


def export_synset(synset_dir: str | Path, *, fmt: str, out: str | Path, records: list[Any] | None = None,
                  zca: Any = None, cache_dir: Path | None = None, materialised: dict[str, Any] | None = None,
                  data_fingerprint: str | None = None) -> Path:
    """Write ``synset_dir`` as ``fmt`` into ``out`` (atomically); returns ``out``.

    ``materialised``: the stored-labels entry (``dd-bench relabel``) the export stands on instead of the models its
    labels need: no weights are copied and the datasheet names the protocol the labels serve.
    ``data_fingerprint``: the source data's :meth:`RealData.fingerprint` for a set whose meta.json does not record
    it (sets made before it was recorded); the recorded one wins."""
    write = get_exporter(fmt)
    synset_dir, out = Path(synset_dir), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"out={out} exists and is not empty; give a new directory")
    meta = read_meta(synset_dir)
    synset = load_synset(synset_dir)
    tensors = export_tensors(synset_dir, synset, zca=zca)
    pixels = tensors["images"].float() / 255.0 if tensors["images"].dtype == torch.uint8 else tensors["images"]

    def populate(root: Path) -> None:
        write(root, synset=synset, tensors=tensors, pixels=pixels)
        assets = _copy_assets(root, synset, cache_dir) if materialised is None else {
            "needed": False, "self_contained": True, "copied": [], "missing": [], "bytes": 0,
            "materialised": {"protocol": materialised["protocol"]["name"], "key": materialised["key"],
                             "bytes": materialised["bytes"]}}
        sheet = datasheet(meta, fmt=fmt, records=records or [], assets=assets,
                          files=sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
                          data_fingerprint=data_fingerprint)
        atomic_write_json(root / "datasheet.json", sheet)
        atomic_write_text(root / DATASHEET_FILE, datasheet_markdown(sheet))

    return replace_dir_atomically(out, populate)
