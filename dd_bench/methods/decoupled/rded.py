"""RDED: realistic, diverse and efficient dataset distillation (Sun et al., CVPR 2024; LINs-lab/RDED), §2.2.

Selection, as ``synthesize/main.py`` + ``synthesize/utils.py``: for each class, ``mipc`` random real training
images (all of a smaller class); from each, ``num_crop`` RandomResizedCrop patches of side ``size / factor`` with
aspect ratio 1 (torchvision's default scale (0.08, 1); no flip); each patch zero-padded (zero in model space, as
the official code pads after normalising) to the input size and scored by the observer's cross-entropy for the
class; each image keeps its lowest-CE patch, the images are sorted by it and the ``ipc * factor^2`` lowest are kept;
``factor x factor`` of them are stitched into each synthetic image (patch group k fills grid cell k, resized by
nearest interpolation to the cell, ``mix_images``). Factor 1 (CIFAR, Tiny) means no stitching: each image is its
best crop resized to the input size.

Labels: the observer online at evaluation, BN in eval mode (RDED's validation code), so the observer is the set's
evaluation asset. NRR-DD and CV-DD's initialisation reuse :func:`select_patches`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from dd_bench.augment.resized_crop import RandomResizedCropFlip
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.teachers.spec import resolve_teacher, teacher_spec


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-pad (B, C, h, w) patches centred to (B, C, H, W) (the official ``pad``: the extra pixel goes low)."""
    dh, dw = size[0] - x.shape[2], size[1] - x.shape[3]
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


@torch.no_grad()
def score_crops(observer: nn.Module, images: torch.Tensor, label: int, *, num_crop: int, factor: int,
                generator: torch.Generator, crop_scale_min: float = 0.08, batch_size: int = 256
                ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, torch.Tensor]]]:
    """``num_crop`` RandomResizedCrop patches of side size / factor per image (aspect ratio 1, no flip), each
    zero-padded to the input size and scored by the observer's CE for ``label``.

    images: (M, C, H, W) model-space candidates; ``generator`` on their device. Returns the patches
    (num_crop, M, C, H/factor, W/factor), their CE (num_crop, M) and each round's crop parameters (boxes).
    """
    m, _, h, w = images.shape
    size = (h // factor, w // factor)
    crop = RandomResizedCropFlip(image_size=(h, w), scale=(crop_scale_min, 1.0), ratio=(1.0, 1.0), flip=False)
    # One crop per image per round, rounds in sequence.
    params = [crop.sample_params(m, generator=generator) for _ in range(num_crop)]
    patches = torch.stack([crop.apply(images, p, output_size=size) for p in params])
    flat = patches.flatten(0, 1)
    observer.eval()
    ce = torch.cat([F.cross_entropy(observer(pad_to(flat[i:i + batch_size], (h, w))),
                                    torch.full((len(flat[i:i + batch_size]),), label, device=flat.device),
                                    reduction="none") for i in range(0, len(flat), batch_size)])
    return patches, ce.view(num_crop, m), params


def select_patches(observer: nn.Module, images: torch.Tensor, label: int, *, keep: int, num_crop: int,
                   factor: int, generator: torch.Generator, crop_scale_min: float = 0.08,
                   batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``keep`` most representative patches of one class: (keep, C, H/factor, W/factor) and their CE (keep,).

    Each image keeps its lowest-CE crop; the images are ranked by it (:func:`score_crops` scores them).
    """
    patches, ce, _ = score_crops(observer, images, label, num_crop=num_crop, factor=factor, generator=generator,
                                 crop_scale_min=crop_scale_min, batch_size=batch_size)
    m = images.shape[0]
    best_ce, best = ce.min(dim=0)  # per image: its lowest-CE crop
    best_patch = patches[best, torch.arange(m, device=images.device)]
    order = torch.argsort(best_ce)[:keep]
    return best_patch[order], best_ce[order]


def class_candidates(real: RealData, cls: int, *, mipc: int, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``mipc`` seeded random training images of class ``cls``: their indices (cpu) and model-space images
    on the data's device (all of a smaller class), the candidates of RDED's selection and the methods built on it."""
    pool = real.indices_of_class(cls).cpu()
    pool = pool[torch.randperm(len(pool), generator=generator)[:mipc]]
    return pool, real.to_model_space(real.train_images[pool.to(real.device)])


def stitch(patches: torch.Tensor, *, factor: int, n: int, size: tuple[int, int]) -> torch.Tensor:
    """``factor^2`` groups of ``n`` patches -> n images (n, C, H, W): group k fills grid cell (k // f, k % f)."""
    c = patches.shape[1]
    out = torch.zeros((n, c, *size), device=patches.device, dtype=patches.dtype)
    cell_h = [size[0] // factor + (1 if i < size[0] % factor else 0) for i in range(factor)]
    cell_w = [size[1] // factor + (1 if j < size[1] % factor else 0) for j in range(factor)]
    k, top = 0, 0
    for i in range(factor):
        left = 0
        for j in range(factor):
            part = F.interpolate(patches[k * n:(k + 1) * n], size=(cell_h[i], cell_w[j]))  # nearest, as official
            out[:, :, top:top + cell_h[i], left:left + cell_w[j]] = part
            left += cell_w[j]
            k += 1
        top += cell_h[i]
    return out


def rded_images(real: RealData, observer: nn.Module, *, ipc: int, seed: int, factor: int, num_crop: int, mipc: int,
                crop_scale_min: float, progress: bool = True, name: str = "rded") -> tuple[torch.Tensor, torch.Tensor]:
    """RDED's selection: (C*ipc, C, H, W) class-major model-space images and their patches' CE (C*ipc*factor^2,).
    Also HeLlO's initialisation (its draws are RDED's for the same seed)."""
    keep = ipc * factor ** 2
    g_pick = make_generator(seed, "method", name, "pick")
    g_crop = make_generator(seed, "method", name, "crop", device=real.device)
    out, scores = [], []
    for c in tqdm(range(real.num_classes), desc=f"rded select ipc{ipc}", disable=not progress, leave=False):
        pool, candidates = class_candidates(real, c, mipc=mipc, generator=g_pick)
        if len(pool) < keep:
            raise UserError(f"rded: class {c} has {len(pool)} candidate images; ipc {ipc} x factor^2 "
                            f"{factor ** 2} = {keep} patches are needed (raise mipc or lower ipc)")
        patches, ce = select_patches(observer, candidates, c, keep=keep, num_crop=num_crop, factor=factor,
                                     generator=g_crop, crop_scale_min=crop_scale_min)
        out.append(stitch(patches, factor=factor, n=ipc, size=real.image_size))
        scores.append(ce)
    return torch.cat(out), torch.cat(scores)


@METHODS.register("rded")
class RDED(Synthesizer):
    name = "rded"
    scored_by_kd = True
    TEST_OPTIONS = {"teacher": "digits_convnet_bn_w32_d2", "mipc": 20, "num_crop": 2}

    @dataclasses.dataclass
    class Config:
        teacher: str = "sre2l_cifar"  # the observer's teacher recipe (dd_bench.teachers)
        teacher_weights: str | None = None
        factor: int = 1  # patches per side of a synthetic image (2 on ImageNet; 1 on 32x32: no stitching)
        num_crop: int = 5  # candidate crops per real image
        mipc: int = 300  # candidate real images per class
        crop_scale_min: float = 0.08  # RandomResizedCrop scale (min, 1), ratio 1

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        if c.factor < 1 or c.num_crop < 1 or c.mipc < 1:
            raise UserError(f"rded: factor, num_crop and mipc must be >= 1; got {c.factor}, {c.num_crop}, {c.mipc}")

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        cfg, device, k = self.cfg, real.device, real.num_classes
        observer = resolve_teacher(real, recipe=cfg.teacher, weights=cfg.teacher_weights, cache_dir=cache_dir,
                                   progress=progress)
        images, ce = rded_images(real, observer.module, ipc=ipc, seed=seed, factor=cfg.factor, num_crop=cfg.num_crop,
                                 mipc=cfg.mipc, crop_scale_min=cfg.crop_scale_min, progress=progress)
        return self.new_synset(
            real, ipc=ipc, images=images, labels=hard_labels(k, ipc, device), recommended_protocol="kd",
            label_section=LabelsSection(source="teacher", teachers=[teacher_spec(observer)], weights=None,
                                        bn_train=False),
            provenance={"teacher": teacher_spec(observer),
                        "selected_ce_mean": float(ce.mean())})
