"""SyntheticSet: the one on-disk format every method writes and the evaluator and exporters read.

A synthetic set is a directory::

    synset.safetensors   images (N, C, H, W), labels (N,) int64, optional soft_labels (N, K), learned_lr (),
                         and method extras (any named tensors)
    meta.json            format version, method + resolved config, dataset, ipc, class names, image space,
                         label kind, recommended protocol, storage bytes, provenance, SHA-256 of the tensors file
    preview.png          class-by-ipc grid of the images, de-normalised to pixels

Loading never unpickles (safetensors + JSON only), verifies the format version and the checksum, and fails
with a :class:`SynsetError` naming the file and what is wrong.

Images are stored either as ``float32`` in the dataset's model space (``image_encoding="model"``: normalised
with mean/std, or ZCA-whitened) or, for coresets of real images, as the original ``uint8`` pixels
(``image_encoding="uint8"``) so that storage is charged as stored: a coreset is not charged as float32. The
set-level ``image_store`` option (:mod:`dd_bench.synset.image_store`) stores any set as uint8 pixels or JPEG files.
A composed set stores parts and rebuilds its images at load (:mod:`dd_bench.synset.compose`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dd_bench.io import atomic_write, atomic_write_bytes, file_sha256, read_json_file
from dd_bench.io.hashing import json_default
from dd_bench.synset.compose import COMPOSERS, compose_images, register_composer  # noqa: F401  (importable from here)
from dd_bench.synset.errors import SynsetError
from dd_bench.synset.labels_section import LabelsSection

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no labels section (hard or learned labels only)
FORMAT_NAME = "dd-bench-synset"
TENSORS_FILE = "synset.safetensors"
META_FILE = "meta.json"
PREVIEW_FILE = "preview.png"
_RESERVED = ("images", "labels", "soft_labels", "learned_lr")
LABEL_KINDS = ("hard", "soft_logits", "soft_probs")
IMAGE_ENCODINGS = ("model", "uint8")


@dataclass
class SyntheticSet:
    images: torch.Tensor  # (N, C, H, W): float32 model space, or uint8 pixels when image_encoding == "uint8"
    labels: torch.Tensor  # (N,) int64 class index (the arg-max class for soft-labelled sets)
    dataset: str
    ipc: int
    method: str
    class_names: list[str]
    image_space: dict[str, Any]  # {"space": "mean_std", "mean": [...], "std": [...]} or {"space": "zca", ...}
    image_encoding: str = "model"
    soft_labels: torch.Tensor | None = None  # (N, K) logits or probabilities, per label_kind
    label_kind: str = "hard"
    learned_lr: float | None = None  # the student lr learned by trajectory matching; the evaluator uses it
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    recommended_protocol: str = "mtt"
    config: dict[str, Any] = field(default_factory=dict)  # the method's resolved config
    preset: str | None = None
    set_hash: str | None = None  # dd_bench.results.keys.set_hash of the config that made it (None: made elsewhere)
    provenance: dict[str, Any] = field(default_factory=dict)  # seed, device, versions, wall time, peak memory
    eval_assets_bytes: int = 0  # bytes needed at evaluation but stored elsewhere (e.g. the ZCA matrix)
    # The labels section (format version 2): the set's own label source and what its label sources need
    # (dd_bench.synset.labels_section); its source, when not given, is hard, or learned when soft labels are stored.
    label_section: LabelsSection = field(default_factory=LabelsSection)
    # Images stored as parts and rebuilt at load (INFER: base images + compensators): {"kind": a registered
    # composer, "parts": [extras names], ...its arguments}. The parts are the set's image bytes; the composites are
    # not written.
    composition: dict[str, Any] | None = None
    directory: Path | None = None  # where it was loaded from or saved to (stored labels live there); not saved

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise SynsetError(f"images must be (N, C, H, W); got shape {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise SynsetError(f"labels must be int64 of shape ({len(self.images)},); got {self.labels.dtype} "
                              f"{tuple(self.labels.shape)}")
        if self.label_kind not in LABEL_KINDS:
            raise SynsetError(f"Unknown label_kind '{self.label_kind}'; available: {', '.join(LABEL_KINDS)}")
        if self.image_encoding not in IMAGE_ENCODINGS:
            raise SynsetError(f"Unknown image_encoding '{self.image_encoding}'; "
                              f"available: {', '.join(IMAGE_ENCODINGS)}")
        if self.image_encoding == "uint8" and self.images.dtype != torch.uint8:
            raise SynsetError("image_encoding 'uint8' needs uint8 images")
        if (self.soft_labels is None) != (self.label_kind == "hard"):
            raise SynsetError("soft_labels must be given exactly when label_kind is not 'hard'")
        if self.soft_labels is not None and self.soft_labels.shape[0] != len(self.images):
            raise SynsetError(f"soft_labels are for {self.soft_labels.shape[0]} images; the set has "
                              f"{len(self.images)}: they do not belong to these images")
        if self.label_section.source is None:
            self.label_section.source = "hard" if self.label_kind == "hard" else "learned"
        bad = [k for k in self.extras if k in _RESERVED]
        if bad:
            raise SynsetError(f"extras may not use reserved names {bad}")
        if self.composition is not None:
            missing = [k for k in self.composition.get("parts", []) if k not in self.extras]
            if self.composition.get("kind") not in COMPOSERS or missing:
                raise SynsetError(f"composition {self.composition.get('kind')!r} (registered: "
                                  f"{', '.join(sorted(COMPOSERS)) or 'none'}) needs extras {missing or 'present'}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_source(self) -> str | None:
        """The set's own label source (its labels section's)."""
        return self.label_section.source

    @label_source.setter
    def label_source(self, name: str | None) -> None:
        self.label_section.source = name

    @property
    def label_info(self) -> dict[str, Any]:
        """The labels section as the dict it was before :class:`LabelsSection` (read-only; a copy)."""
        return {k: v for k, v in self.label_section.copy().to_dict().items() if k != "source"}

    def labels_meta(self) -> dict[str, Any]:
        """meta.json's ``labels``: the section, with the stored tensors' shape, dtype and bytes (stored labels too)."""
        stored = self.soft_labels if self.soft_labels is not None else self.labels
        return {**self.label_section.to_dict(), "shape": list(stored.shape),
                "dtype": str(stored.dtype).replace("torch.", ""),
                "stored_bytes": stored.numel() * stored.element_size() + self.label_section.stored_bytes}

    def labels_section(self) -> dict[str, Any]:
        """:meth:`labels_meta` under its former name."""
        return self.labels_meta()

    def storage(self) -> dict[str, Any]:
        """Bytes as stored, by part (images, labels incl. soft labels and learned lr, extras, eval assets)."""
        parts = set(self.composition["parts"]) if self.composition is not None else set()
        images = (sum(self.extras[k].numel() * self.extras[k].element_size() for k in parts) if parts
                  else self.images.numel() * self.images.element_size())
        labels = self.labels.numel() * self.labels.element_size()
        if self.soft_labels is not None:
            labels += self.soft_labels.numel() * self.soft_labels.element_size()
        if self.learned_lr is not None:
            labels += 4  # one float32 scalar
        # The papers' test-selected copy (paper_selection) is not part of the set: it only feeds its own column.
        # A label source's own tensors (extras under its section key: HeLlO's projector.*) are charged by that
        # source, as label bytes.
        extras = sum(t.numel() * t.element_size() for k, t in self.extras.items()
                     if not k.startswith("paper_selected.") and not self.label_section.owns_extra(k)
                     and k not in parts)
        return {
            "images_bytes": images,
            "labels_bytes": labels,
            "extras_bytes": extras,
            "eval_assets_bytes": self.eval_assets_bytes,
            "total_bytes": images + labels + extras,
            # A composition may name its stored form (image_store=jpeg: "jpeg q75"); else the parts' dtypes.
            "dtype": (self.composition or {}).get("dtype") or (
                "+".join(sorted({str(self.extras[k].dtype).replace("torch.", "") for k in parts})) if parts
                else str(self.images.dtype).replace("torch.", "")),
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {"labels": self.labels} if self.composition is not None else {"images": self.images,
                                                                            "labels": self.labels}
        if self.soft_labels is not None:
            out["soft_labels"] = self.soft_labels
        if self.learned_lr is not None:
            out["learned_lr"] = torch.tensor(self.learned_lr, dtype=torch.float32)
        out.update(self.extras)
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    def to(self, device: torch.device | str) -> SyntheticSet:
        moved = dict(self.__dict__)
        moved["images"] = self.images.to(device)
        moved["labels"] = self.labels.to(device)
        moved["soft_labels"] = None if self.soft_labels is None else self.soft_labels.to(device)
        moved["extras"] = {k: v.to(device) for k, v in self.extras.items()}
        moved["label_section"] = self.label_section.copy()
        return SyntheticSet(**moved)


def save_synset(synset: SyntheticSet, directory: str | Path, *, preview_pixels: torch.Tensor | None = None) -> Path:
    """Write ``synset`` to ``directory`` (created); each file is written atomically, meta.json last.

    ``preview_pixels``: the images as pixels in [0, 1], (N, C, H, W), for preview.png (the caller knows how to
    undo ZCA); omitted for uint8 sets, which are their own pixels.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / TENSORS_FILE, save(synset.tensors()))
    if preview_pixels is None and synset.image_encoding == "uint8":
        preview_pixels = synset.images.float() / 255.0
    if preview_pixels is not None:
        write_preview(preview_pixels, synset.labels, synset.num_classes, directory / PREVIEW_FILE)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "method": synset.method,
        "dataset": synset.dataset,
        "ipc": synset.ipc,
        "num_images": len(synset.images),
        "class_names": synset.class_names,
        "image_space": synset.image_space,
        "image_encoding": synset.image_encoding,
        "label_kind": synset.label_kind,
        "labels": synset.labels_meta(),
        "learned_lr": synset.learned_lr,
        "extras": sorted(synset.extras),
        "recommended_protocol": synset.recommended_protocol,
        "storage": synset.storage(),
        "config": synset.config,
        "preset": synset.preset,
        "set_hash": synset.set_hash,
        "provenance": synset.provenance,
        "composition": synset.composition,
        "tensors_sha256": file_sha256(directory / TENSORS_FILE),
    }
    write_meta(directory, meta)
    synset.directory = directory
    return directory


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    atomic_write_bytes(Path(directory) / META_FILE,
                       json.dumps(meta, indent=2, sort_keys=True, default=json_default).encode())


def add_stored_labels(directory: str | Path, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Record stored labels (an FKD entry) in a saved set's labels section; meta.json is rewritten atomically."""
    from dd_bench.io.store import path_lock

    directory = Path(directory)
    with path_lock(directory / "labels"):
        meta = read_meta(directory)
        section = meta.setdefault("labels", {})
        section.setdefault("fkd", {})[key] = entry
        section["stored_bytes"] = int(section.get("stored_bytes", 0)) + int(entry["bytes"])
        write_meta(directory, meta)
    return meta


def read_meta(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    meta_path = directory / META_FILE
    if not directory.is_dir():
        raise SynsetError(f"Synthetic set directory '{directory}' does not exist")
    meta = read_json_file(meta_path, what=f"'{meta_path}'", error=SynsetError,
                          missing=f"'{meta_path}' is missing: '{directory}' is not a dd-bench synthetic set")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise SynsetError(f"'{meta_path}' is not a dd-bench synset meta file (format={meta.get('format')!r})"
                          if isinstance(meta, dict) else f"'{meta_path}' is not a dd-bench synset meta file")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise SynsetError(f"'{meta_path}' has format_version {version!r}; this dd-bench reads versions "
                          f"{', '.join(map(str, READABLE_VERSIONS))}")
    return meta


def load_synset(directory: str | Path, *, device: torch.device | str = "cpu") -> SyntheticSet:
    """Read a synthetic set written by :func:`save_synset`, verifying its version and checksum."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    directory = Path(directory)
    meta = read_meta(directory)
    tensors_path = directory / TENSORS_FILE
    if not tensors_path.is_file():
        raise SynsetError(f"'{tensors_path}' is missing")
    actual = file_sha256(tensors_path)
    if actual != meta.get("tensors_sha256"):
        raise SynsetError(f"'{tensors_path}' is corrupted: SHA-256 {actual[:12]}... does not match "
                          f"meta.json's {str(meta.get('tensors_sha256'))[:12]}...")
    try:
        tensors = load(tensors_path.read_bytes())
    except (SafetensorError, Exception) as e:  # noqa: BLE001 - any parse failure is a corrupted file
        raise SynsetError(f"'{tensors_path}' could not be read as safetensors ({e})") from None
    composition = meta.get("composition")
    missing = [k for k in ("labels",) + (("images",) if composition is None else tuple(composition.get("parts", [])))
               if k not in tensors]
    if missing:
        raise SynsetError(f"'{tensors_path}' lacks required tensors {missing}")
    learned = tensors.pop("learned_lr", None)
    extras = {k: v.to(device) for k, v in tensors.items() if k not in _RESERVED}
    images = tensors["images"].to(device) if composition is None else compose_images(composition, extras,
                                                                                      meta["image_space"])
    return SyntheticSet(
        images=images,
        labels=tensors["labels"].to(device),
        soft_labels=tensors["soft_labels"].to(device) if "soft_labels" in tensors else None,
        learned_lr=float(learned) if learned is not None else None,
        extras=extras,
        composition=composition,
        dataset=meta["dataset"],
        ipc=int(meta["ipc"]),
        method=meta["method"],
        class_names=list(meta["class_names"]),
        image_space=meta["image_space"],
        image_encoding=meta.get("image_encoding", "model"),
        label_kind=meta["label_kind"],
        recommended_protocol=meta.get("recommended_protocol", "mtt"),
        config=meta.get("config", {}),
        preset=meta.get("preset"),
        set_hash=meta.get("set_hash"),
        provenance=meta.get("provenance", {}),
        eval_assets_bytes=int(meta.get("storage", {}).get("eval_assets_bytes", 0)),
        label_section=LabelsSection.from_dict(meta.get("labels")),
        directory=directory,
    )


def synset_sha256(directory: str | Path) -> str:
    return read_meta(directory)["tensors_sha256"]


def write_preview(pixels: torch.Tensor, labels: torch.Tensor, num_classes: int, path: Path) -> None:
    """A class-by-ipc grid: row c holds the images of class c in order, pixels (N, C, H, W) in [0, 1]."""
    from PIL import Image

    pixels = pixels.detach().float().cpu().clamp(0, 1)
    labels = labels.detach().cpu()
    n, c, h, w = pixels.shape
    per_class = [torch.nonzero(labels == k).flatten() for k in range(num_classes)]
    cols = max(1, max(len(i) for i in per_class))
    pad = 1
    scale = max(1, 32 // h)  # upscale tiny images (digits are 8x8) so the preview is legible
    grid = torch.ones(c, num_classes * (h + pad) + pad, cols * (w + pad) + pad)
    for k, idx in enumerate(per_class):
        for j, i in enumerate(idx.tolist()):
            top, left = pad + k * (h + pad), pad + j * (w + pad)
            grid[:, top:top + h, left:left + w] = pixels[i]
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(array[:, :, 0] if c == 1 else array, mode="L" if c == 1 else "RGB")
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
