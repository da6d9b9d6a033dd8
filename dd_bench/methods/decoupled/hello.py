"""HeLlO: heavy labels out (Yu et al., arXiv 2408.08201, ICCV 2025), decoupled-methods.md §6, §7.3.

**A reconstruction.** No code is public and the paper's body could not be read: the projector's form, the fitting
loss and schedule, the image step and every default below (``RECONSTRUCTION_KEYS``) are our reading of the abstract,
third-party summaries and the reviews, marked ``reconstruction: true`` in the config, the README and every record,
and never claimed as a reproduction. No published number exists to compare with.

1. **Images**: RDED's selection with the target teacher as observer (the reconstruction in §6(a) step 3).
2. **Projector** (:mod:`dd_bench.projector`): a frozen backbone that is NOT the target teacher (a local open_clip,
   timm or torchvision checkpoint, a suite model pre-trained on other data, or a frozen random one as the
   labelled lower bound), low-rank adapters (rank ``rank``) on its Linear and Conv2d layers, and a linear head on
   its normalised features, initialised from class prototypes of the images (or an open_clip text tower).
3. **Fitting**: ``fit_steps`` Adam steps on the adapters and head: KL(softmax(T(x)/t) || softmax(P(x)/t)) on
   batches of the synthetic images augmented as ``fit_protocol``'s evaluator augments them, plus
   ``fit_real`` real training images per batch when set.
4. **Image step**: ``image_steps`` Adam steps on the images (projector and teacher frozen) reducing the same KL,
   the "remaining projector-teacher mismatch", clipped to the pixel range.
5. **Stored**: the images, the class ids, and the adapters + head (``storage_dtype``); the set's own label source
   is ``projector`` (online, :mod:`dd_bench.labels.projector`), and it names the teacher, so the same images can
   be scored with ``fkd``, ``teacher`` or ``hard`` labels too (``label_sources=[...]``).
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import torch

from dd_bench.augment.mix import KDAugment
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.io import file_sha256, json_sha256, load_optimizer, optimizer_tensors
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.methods.decoupled.common import pixel_bounds
from dd_bench.methods.decoupled.rded import rded_images
from dd_bench.methods.loop import run_iterations
from dd_bench.projector.backbone import BackboneConfig, BackboneKind, backbone_config, load_backbone
from dd_bench.projector.projector import Projector
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet
from dd_bench.synset.labels_section import LabelsSection
from dd_bench.teachers.spec import resolve_teacher, teacher_spec
from dd_bench.train.losses import kd_kl

RECONSTRUCTION_KEYS = ("rank", "lora_alpha", "lora_targets", "head_init", "head_scale", "fit_steps", "fit_lr",
                       "fit_batch", "fit_views", "fit_real", "temperature", "image_steps", "image_lr")


class HeadInit(enum.StrEnum):
    auto = "auto"  # text with an open_clip backbone, else prototypes
    prototypes = "prototypes"  # class means of the images' normalised features (recomputable: zero bytes)
    text = "text"  # normalised class-text embeddings of the open_clip text tower


class StorageDtype(enum.StrEnum):
    float16 = "float16"
    float32 = "float32"


def _resumable(opt: torch.optim.Optimizer, generators: dict[str, torch.Generator], device: torch.device):
    """The save / restore pair :func:`run_iterations` checkpoints a HeLlO phase with: Adam and the generators."""
    def save_state():
        tensors, state = optimizer_tensors(opt)
        return {**tensors, **{n: g.get_state().cpu() for n, g in generators.items()}}, {"adam": state}

    def restore_state(tensors, state) -> None:
        load_optimizer(opt, tensors, state["adam"], device)
        for n, g in generators.items():
            g.set_state(tensors[n].to(g.get_state().device))

    return save_state, restore_state


@METHODS.register("hello")
class HeLlO(Synthesizer):
    name = "hello"
    scored_by_kd = True
    TEST_OPTIONS = {"teacher": "digits_convnet_bn_w32_d2", "mipc": 20, "num_crop": 2, "fit_steps": 3, "fit_real": 4,
                    "image_steps": 2, "backbone": {"kind": "suite", "recipe": "digits_convnet_bn_w32_d2",
                                                   "classes": [0, 1, 2, 3, 4]}}

    @dataclasses.dataclass
    class Config:
        reconstruction: bool = True  # no official code: see RECONSTRUCTION_KEYS
        teacher: str = "sre2l_cifar"  # the target teacher: RDED's observer, and what the projector mimics
        teacher_weights: str | None = None
        backbone: BackboneConfig = dataclasses.field(default_factory=BackboneConfig)
        rank: int = 4
        lora_alpha: float = 4.0  # adapter scale alpha / rank
        lora_targets: list[str] | None = None  # fnmatch patterns of layers to adapt (None: every Linear/Conv2d)
        head_init: HeadInit = HeadInit.auto
        head_scale: float = 10.0
        fit_steps: int = 1000
        fit_lr: float = 1e-3
        fit_batch: int = 100
        fit_views: int = 1  # augmented views of each batch image per step (fewer, larger steps on tiny sets)
        fit_real: int = 0  # real training images added to each fitting batch (0: the synthetic images only)
        temperature: float = 4.0  # of the fitting and image-step KL
        image_steps: int = 200
        image_lr: float = 0.01
        mipc: int = 300  # RDED initialisation
        num_crop: int = 5
        factor: int = 1
        crop_scale_min: float = 0.08  # of the RDED crops
        fit_protocol: str = "kd"  # the kd protocol whose augmentation (crops, flips, MixUp) the fitting draws
        storage_dtype: StorageDtype = StorageDtype.float16
        checkpoint_every: int = 100  # fitting / image steps between atomic checkpoints (resume by config hash)

    def __init__(self, **kwargs: object) -> None:
        if "backbone" in kwargs:
            kwargs = {**kwargs, "backbone": backbone_config(kwargs["backbone"])}
        super().__init__(**kwargs)
        c = self.cfg
        if not c.reconstruction:
            raise UserError("hello: reconstruction must stay true: HeLlO has no public code, every record says so")
        if c.rank < 1 or c.fit_steps < 0 or c.image_steps < 0 or min(c.fit_batch, c.fit_views) < 1 or c.fit_real < 0 \
                or not c.temperature > 0 or not c.fit_lr > 0 or not c.image_lr > 0:
            raise UserError(f"hello: rank >= 1, fit_steps, image_steps, fit_real >= 0, fit_batch, fit_views >= 1 and "
                            f"temperature, fit_lr, image_lr > 0 are required; got {c.rank}, {c.fit_steps}, "
                            f"{c.image_steps}, {c.fit_real}, {c.fit_batch}, {c.temperature}, {c.fit_lr}, {c.image_lr}")
        b = c.backbone
        if b.kind == BackboneKind.suite and not b.classes and not b.dataset:
            if b.recipe == c.teacher and c.teacher_weights is None:
                raise UserError(f"hello: backbone recipe '{b.recipe}' on the target's own data is the target "
                                "teacher itself: its adapters would be trivial and the storage claim vacuous; "
                                "pre-train it on other data (backbone.classes=[...] or backbone.dataset=NAME)")
            raise UserError("hello: backbone.kind=suite pre-trains on OTHER data: set backbone.classes=[...] (a "
                            "strict subset of the target's classes) or backbone.dataset=NAME (with backbone.root)")
        if c.head_init == HeadInit.text and c.backbone.kind != BackboneKind.open_clip:
            raise UserError(f"hello: head_init=text needs an open_clip backbone (its text tower); backbone.kind is "
                            f"{c.backbone.kind}: use head_init=prototypes")

    def _refuse_teacher(self, backbone, teacher) -> None:
        same_key = backbone.identity.get("key") and backbone.identity.get("key") == teacher.key
        path = teacher.extra.get("path") or str(Path(teacher.extra.get("cache_dir") or "") / "weights.safetensors")
        same_file = Path(path).is_file() and backbone.identity.get("sha256") and \
            file_sha256(path) == backbone.identity["sha256"]
        if same_key or same_file:
            raise UserError(f"hello: the backbone is the target teacher '{self.cfg.teacher}' itself: its adapters "
                            "would be trivial and the storage claim vacuous; pre-train it on other data "
                            "(backbone.classes / backbone.dataset) or give another checkpoint")

    def _augment(self, real: RealData) -> KDAugment:
        """The fitting batches are augmented as the evaluator's will be: the projector labels those batches."""
        from dd_bench.eval import get_protocol

        protocol = get_protocol(self.cfg.fit_protocol)
        if not protocol.trains_by_kd:
            raise UserError(f"hello: fit_protocol '{self.cfg.fit_protocol}' is not a kd protocol")
        return protocol.augment(real)

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        c, device, k = self.cfg, real.device, real.num_classes
        teacher = resolve_teacher(real, recipe=c.teacher, weights=c.teacher_weights, cache_dir=cache_dir,
                                  progress=progress)
        backbone = load_backbone(real, c.backbone, cache_dir=cache_dir, progress=progress, seed=seed)
        self._refuse_teacher(backbone, teacher)
        t_net = teacher.module.eval()
        images, _ = rded_images(real, t_net, ipc=ipc, seed=seed, factor=c.factor, num_crop=c.num_crop, mipc=c.mipc,
                                crop_scale_min=c.crop_scale_min, progress=progress)
        labels = hard_labels(k, ipc, device)
        projector = Projector(backbone, num_classes=k, rank=c.rank, alpha=c.lora_alpha, targets=c.lora_targets,
                              generator=make_generator(seed, "method", "hello", "lora", device=device))
        use_text = c.head_init == HeadInit.text or (c.head_init == HeadInit.auto and backbone.text_head is not None)
        projector.init_head(images=images, labels=labels, scale=c.head_scale,
                            text=backbone.text_head if use_text else None)
        augment = self._augment(real)
        keyed = {n: v for n, v in self.config_dict().items() if n != "checkpoint_every"}
        config_hash = json_sha256({"cfg": keyed, "data": real.fingerprint(), "ipc": ipc, "seed": seed,
                                   "teacher": teacher.key, "backbone": backbone.identity}, 16)
        fit = self._fit(projector, t_net, images, real, augment=augment, seed=seed, progress=progress,
                        checkpoint_dir=checkpoint_dir, config_hash=config_hash)
        images, refine = self._refine(projector, t_net, images, real, augment=augment, seed=seed, progress=progress,
                                      checkpoint_dir=checkpoint_dir, config_hash=config_hash)
        dtype = torch.float16 if c.storage_dtype == StorageDtype.float16 else torch.float32
        stored = projector.stored_tensors(dtype)
        spec = teacher_spec(teacher)
        section = {"backbone": dataclasses.asdict(c.backbone) | {"kind": str(c.backbone.kind)},
                   "backbone_identity": backbone.identity, "rank": c.rank, "alpha": c.lora_alpha,
                   "targets": c.lora_targets, "layers": projector.layers, "storage_dtype": str(c.storage_dtype),
                   "head_init": "text" if use_text else "prototypes", "reconstruction": True}
        return self.new_synset(
            real, ipc=ipc, images=images, labels=labels, recommended_protocol="kd",
            label_section=LabelsSection(source="projector", teachers=[spec], weights=None, bn_train=False,
                                        own={"projector": section, "reconstruction": True}),
            extras=stored,
            provenance={"teacher": spec, "backbone": backbone.identity, "adapted_layers": len(projector.layers),
                        "distill_status": {"fit": fit, "image_step": refine},
                        "reconstruction": {"note": "no public code; a reconstruction from the abstract, summaries "
                                                   "and reviews, not a reproduction",
                                           "keys": {n: getattr(c, n) for n in RECONSTRUCTION_KEYS}}})

    def _schedule(self, n: int, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
        """``steps`` index batches of at most fit_batch synthetic images, epoch by epoch in a seeded order (drawn up
        front: step ``it`` always gets the same batch, so a resumed run continues the same sequence)."""
        out, order = [], torch.empty(0, dtype=torch.long)
        for _ in range(steps):
            if len(order) < min(self.cfg.fit_batch, n):
                order = torch.cat([order, torch.randperm(n, generator=generator)])
            out.append(order[:self.cfg.fit_batch])
            order = order[self.cfg.fit_batch:]
        return out

    def _fit(self, projector: Projector, teacher, images: torch.Tensor, real: RealData, *, augment: KDAugment,
             seed: int, progress: bool, checkpoint_dir: Path | None, config_hash: str) -> dict:
        c, device = self.cfg, real.device
        leaves = projector.trainable()
        opt = torch.optim.Adam(list(leaves.values()), lr=c.fit_lr)
        schedule = self._schedule(len(images), c.fit_steps, make_generator(seed, "method", "hello", "fit-order"))
        g_aug = make_generator(seed, "method", "hello", "fit-aug", device=device)
        g_real = make_generator(seed, "method", "hello", "fit-real")
        projector.train()
        losses: list[float] = []

        def step(it: int) -> float:
            x = images[schedule[it].to(device)].repeat(c.fit_views, 1, 1, 1)
            if c.fit_real:
                pick = torch.randint(len(real.train_images), (c.fit_real,), generator=g_real)
                x = torch.cat([x, real.to_model_space(real.train_images[pick.to(device)])])
            x = augment.apply(x, augment.sample_params(len(x), generator=g_aug))
            with torch.no_grad():
                target = teacher(x).float()
            loss = kd_kl(projector(x), target, c.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward(inputs=list(leaves.values()))
            opt.step()
            losses.append(float(loss.detach()))
            return losses[-1]

        save_state, restore_state = _resumable(opt, {"g_aug": g_aug, "g_real": g_real}, device)
        status = run_iterations(
            iterations=c.fit_steps, leaves=leaves, step=step, save_state=save_state, restore_state=restore_state,
            checkpoint_dir=None if checkpoint_dir is None else checkpoint_dir / "fit",
            checkpoint_every=c.checkpoint_every, config_hash=config_hash, progress=progress,
            desc="hello fit projector", postfix=lambda it, loss: {"kl": f"{loss:.4f}"})
        projector.eval()
        for p in leaves.values():
            p.requires_grad_(False)
        return {**status, "kl_first": losses[:1], "kl_last": losses[-1:]}

    def _refine(self, projector: Projector, teacher, images: torch.Tensor, real: RealData, *, augment: KDAugment,
                seed: int, progress: bool, checkpoint_dir: Path | None, config_hash: str
                ) -> tuple[torch.Tensor, dict]:
        c, device = self.cfg, real.device
        lo, hi = pixel_bounds(real)
        x_all = images.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([x_all], lr=c.image_lr, betas=(0.5, 0.9))
        schedule = self._schedule(len(images), c.image_steps, make_generator(seed, "method", "hello", "image-order"))
        g_aug = make_generator(seed, "method", "hello", "image-aug", device=device)
        losses: list[float] = []

        def step(it: int) -> float:
            x = augment.apply(x_all[schedule[it].to(device)], augment.sample_params(len(schedule[it]),
                                                                                      generator=g_aug))
            # D(T(aug x), P(aug x)) as a function of the images (both sides; neither network's weights move).
            loss = kd_kl(projector(x), teacher(x).float(), c.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward(inputs=[x_all])
            opt.step()
            with torch.no_grad():
                x_all.copy_(torch.maximum(torch.minimum(x_all, hi), lo))
            losses.append(float(loss.detach()))
            return losses[-1]

        save_state, restore_state = _resumable(opt, {"g_aug": g_aug}, device)
        status = run_iterations(
            iterations=c.image_steps, leaves={"images": x_all}, step=step, save_state=save_state,
            restore_state=restore_state, checkpoint_dir=None if checkpoint_dir is None else checkpoint_dir / "image",
            checkpoint_every=c.checkpoint_every, config_hash=config_hash, progress=progress,
            desc="hello image step", postfix=lambda it, loss: {"kl": f"{loss:.4f}"})
        return x_all.detach(), {**status, "kl_first": losses[:1], "kl_last": losses[-1:]}
