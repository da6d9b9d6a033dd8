"""The projector's frozen backbones (decoupled-methods.md §7.3), each a config option, never a download:

========== ======================================================================================================
kind       what it is
========== ======================================================================================================
suite      a suite model (a teacher recipe's architecture and training) pre-trained by the suite on OTHER data:
           only ``classes`` of the target's training set (digits: ``classes=[0,1,2,3,4]``, so half the target's
           classes are foreign to it), or another ``dataset`` the user provides (``root``); a shared evaluation
           asset like CLIP in the paper, cached by its key
open_clip  a local open_clip checkpoint ``file`` of model ``model`` (``model_config``: a config JSON for an
           architecture open_clip does not ship); its visual tower; its text tower initialises the head
timm       a local timm checkpoint ``file`` of model ``model`` (classifier dropped)
torchvision a local torchvision checkpoint ``file`` of model ``model`` (classifier dropped)
random     a frozen random-init suite model: ONLY the labelled lower-bound ablation
========== ======================================================================================================

Every backbone maps a batch of the TARGET's model-space images (B, C, H, W) to features (B, D). A backbone that
reads another image space (another dataset's mean/std, CLIP's normalisation and input size, 3 channels for a
1-channel target) gets the target's pixels converted (differentiably: the image step optimises through it). Its
identity (kind, names, file SHA-256, bytes, key) goes into the set, so evaluation rebuilds the same one or fails.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.data import RealData
from dd_bench.errors import UserError, UserFileNotFoundError
from dd_bench.io import file_sha256
from dd_bench.io.weights_file import read_weights_file

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BackboneKind(enum.StrEnum):
    suite = "suite"
    open_clip = "open_clip"
    timm = "timm"
    torchvision = "torchvision"
    random = "random"


@dataclass
class BackboneConfig:
    kind: BackboneKind = BackboneKind.suite
    recipe: str = "digits_convnet_bn_w32_d2"  # suite / random: the architecture (and suite: its training recipe)
    classes: list[int] | None = None  # suite: pre-train on only these classes of the target's training set
    dataset: str | None = None  # suite: pre-train on this other dataset instead (same channels and image size)
    root: str | None = None  # its data root
    model: str | None = None  # open_clip / timm / torchvision: the model name
    file: str | None = None  # open_clip / timm / torchvision: the local checkpoint (safetensors or torch weights)
    model_config: str | None = None  # open_clip: a model-config JSON (an architecture open_clip does not ship)
    image_size: int | None = None  # the input side it reads (default: its own; suite: the target's)
    mean: list[float] | None = None  # its input normalisation (default: its own; torchvision: ImageNet's)
    std: list[float] | None = None


def backbone_config(value: Any) -> BackboneConfig:
    """A BackboneConfig from a config mapping (Hydra) or itself, with unknown keys and kinds named clearly."""
    if isinstance(value, BackboneConfig):
        return value
    value = dict(value or {})
    names = {f.name for f in dataclasses.fields(BackboneConfig)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise UserError(f"Unknown backbone option(s) {unknown}; available: {', '.join(sorted(names))}")
    kind = value.get("kind", BackboneKind.suite)
    try:
        value["kind"] = BackboneKind(kind.value if isinstance(kind, enum.Enum) else kind)
    except ValueError:
        raise UserError(f"Unknown backbone kind {kind!r}; available: {', '.join(k.value for k in BackboneKind)}") \
            from None
    for key in ("classes", "mean", "std"):
        if value.get(key) is not None:
            value[key] = list(value[key])
    return BackboneConfig(**value)


class InputAdapter(nn.Module):
    """Target model-space images -> the backbone's input space: pixels, channels, size, its normalisation."""

    def __init__(self, real: RealData, *, channels: int, size: tuple[int, int], mean, std) -> None:
        super().__init__()
        self.zca = real.zca
        self.register_buffer("src_mean", torch.tensor(real.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("src_std", torch.tensor(real.std).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.channels, self.size = channels, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.zca.inverse(x) if self.zca is not None else x * self.src_std + self.src_mean
        x = x.clamp(0.0, 1.0)
        if x.shape[1] != self.channels:
            if x.shape[1] != 1:
                raise UserError(f"the backbone reads {self.channels}-channel images; the target has {x.shape[1]}")
            x = x.expand(-1, self.channels, -1, -1)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return (x - self.mean) / self.std


class FeatureBackbone(nn.Module):
    """``net`` read as a feature extractor: (B, C, H, W) target model space -> (B, D) float32."""

    def __init__(self, net: nn.Module, *, adapter: nn.Module | None, mode: str) -> None:
        super().__init__()
        self.net, self.adapter, self.mode = net, adapter, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from dd_bench.models import embed

        x = self.adapter(x) if self.adapter is not None else x
        out = embed(self.net, x) if self.mode == "embed" else self.net(x)
        return out.flatten(1).float()


@dataclass
class Backbone:
    module: FeatureBackbone  # frozen, eval mode
    identity: dict[str, Any]  # kind, names, file and SHA-256, bytes, key: what the set records
    exclude: tuple[str, ...] = ()  # layers of module.net the adapters leave alone (an unused classifier)
    text_head: torch.Tensor | None = None  # (K, D) normalised class-text embeddings (open_clip), or None

    @property
    def feature_dim(self) -> int:
        return int(self.identity["feature_dim"])


def _state_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    return read_weights_file(path, option="backbone.file", expected=what)


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str,
               drop_unexpected: tuple[str, ...] = ()) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(drop_unexpected)}
    try:
        result = module.load_state_dict(state, strict=not drop_unexpected)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise UserError(f"backbone.file={path} does not match {what}: "
                        f"{' '.join(s.strip() for s in first[:2])}") from None
    if drop_unexpected and (result.missing_keys or result.unexpected_keys):
        raise UserError(f"backbone.file={path} does not match {what}: missing {result.missing_keys[:3]}, "
                        f"unexpected {result.unexpected_keys[:3]}")


def _file_identity(cfg: BackboneConfig, path: Path) -> dict[str, Any]:
    return {"kind": str(cfg.kind), "model": cfg.model, "file": str(path), "sha256": file_sha256(path),
            "file_bytes": path.stat().st_size, "model_config": cfg.model_config}


def _adapter(real: RealData, cfg: BackboneConfig, *, channels: int, size: tuple[int, int], mean, std) -> InputAdapter:
    size = (cfg.image_size, cfg.image_size) if cfg.image_size else tuple(size)
    return InputAdapter(real, channels=channels, size=size, mean=tuple(cfg.mean or mean), std=tuple(cfg.std or std))


def _open_clip(real: RealData, cfg: BackboneConfig) -> Backbone:
    try:
        import open_clip
    except ImportError:
        raise UserError("backbone.kind=open_clip needs the open_clip package: pip install 'dd-bench[hello]' "
                        "(open-clip-torch)") from None
    if not cfg.model or not cfg.file:
        raise UserError("backbone.kind=open_clip needs backbone.model (e.g. ViT-B-32) and backbone.file "
                        "(a local checkpoint; nothing is downloaded)")
    if cfg.model_config:
        if not Path(cfg.model_config).is_file():
            raise UserFileNotFoundError(f"backbone.model_config={cfg.model_config} does not exist")
        open_clip.add_model_config(cfg.model_config)
    if cfg.model not in open_clip.list_models():
        raise UserError(f"Unknown open_clip model '{cfg.model}' (give backbone.model_config=JSON for your own); "
                        f"available: {', '.join(open_clip.list_models()[:12])}, ...")
    path = Path(cfg.file)
    what = f"an open_clip {cfg.model} state dict"
    state = read_state_dict(path, what)
    with torch.random.fork_rng(devices=[]):  # the throw-away init draws from the global RNG
        model = open_clip.create_model(cfg.model, pretrained=None, device="cpu")
    _load_into(model, state, path, what)
    model.eval()
    visual = model.visual
    size = visual.image_size if isinstance(visual.image_size, (tuple, list)) else (visual.image_size,) * 2
    mean = getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
    std = getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
    adapter = _adapter(real, cfg, channels=3, size=tuple(size), mean=mean, std=std)
    tokenizer = open_clip.get_tokenizer(cfg.model)
    with torch.no_grad():
        text = model.encode_text(tokenizer([f"a photo of a {name}." for name in real.class_names]))
    module = FeatureBackbone(visual, adapter=adapter, mode="forward")
    identity = {**_file_identity(cfg, path), "bytes": _state_bytes(visual), "text_init": True}
    return Backbone(module, identity, text_head=F.normalize(text.float(), dim=-1))


def _timm(real: RealData, cfg: BackboneConfig) -> Backbone:
    import timm

    if not cfg.model or not cfg.file:
        raise UserError("backbone.kind=timm needs backbone.model (a timm name) and backbone.file (a local checkpoint)")
    path = Path(cfg.file)
    what = f"a timm {cfg.model} state dict"
    state = read_state_dict(path, what)
    with torch.random.fork_rng(devices=[]):
        net = timm.create_model(cfg.model, pretrained=False, num_classes=0)
    heads = tuple(k for k in state if k not in net.state_dict())
    _load_into(net, state, path, what, drop_unexpected=heads or ("\0",))
    pcfg = getattr(net, "pretrained_cfg", {}) or {}
    adapter = _adapter(real, cfg, channels=int(pcfg.get("input_size", (3,))[0]),
                       size=tuple(pcfg.get("input_size", (3, 224, 224))[1:]), mean=pcfg.get("mean", IMAGENET_MEAN),
                       std=pcfg.get("std", IMAGENET_STD))
    return Backbone(FeatureBackbone(net.eval(), adapter=adapter, mode="forward"),
                    {**_file_identity(cfg, path), "bytes": _state_bytes(net)})


def _torchvision(real: RealData, cfg: BackboneConfig) -> Backbone:
    import torchvision

    if not cfg.model or not cfg.file:
        raise UserError("backbone.kind=torchvision needs backbone.model (e.g. resnet18) and backbone.file")
    if cfg.model not in torchvision.models.list_models():
        raise UserError(f"Unknown torchvision model '{cfg.model}'; available: "
                        f"{', '.join(torchvision.models.list_models()[:12])}, ...")
    path = Path(cfg.file)
    what = f"a torchvision {cfg.model} state dict"
    state = read_state_dict(path, what)
    with torch.random.fork_rng(devices=[]):
        net = torchvision.models.get_model(cfg.model, weights=None)
    head = next((n for n in ("fc", "classifier", "heads", "head") if hasattr(net, n)), None)
    if head is None:
        raise UserError(f"torchvision {cfg.model}: no fc / classifier / heads to drop; use backbone.kind=timm")
    setattr(net, head, nn.Identity())
    _load_into(net, state, path, what, drop_unexpected=(f"{head}.",))
    adapter = _adapter(real, cfg, channels=3, size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return Backbone(FeatureBackbone(net.eval(), adapter=adapter, mode="forward"),
                    {**_file_identity(cfg, path), "bytes": _state_bytes(net)})


def _pretraining_data(real: RealData, cfg: BackboneConfig, *, progress: bool, cache_dir: Path | None = None
                      ) -> RealData:
    """The OTHER data a suite backbone is pre-trained on: a class subset of the target, or another dataset."""
    from dataclasses import replace

    if cfg.classes and cfg.dataset:
        raise UserError("backbone: give backbone.classes (a subset of the target) or backbone.dataset, not both")
    if cfg.dataset:
        from dd_bench.data import load_dataset

        other = load_dataset(cfg.dataset, root=cfg.root, cache_dir=cache_dir, progress=progress)
        if other.channels != real.channels or other.image_size != real.image_size:
            raise UserError(f"backbone.dataset={cfg.dataset} has {other.channels}x{other.image_size} images; the "
                            f"target {real.name} has {real.channels}x{real.image_size}: they must match")
        return other.to(real.device).without_test()
    classes = sorted(set(int(c) for c in cfg.classes or []))
    if not classes:
        raise UserError("backbone.kind=suite pre-trains on OTHER data: set backbone.classes=[...] (a subset of the "
                        "target's classes) or backbone.dataset=NAME (with backbone.root)")
    bad = [c for c in classes if not 0 <= c < real.num_classes]
    if bad or len(classes) == real.num_classes:
        raise UserError(f"backbone.classes={classes}: a strict subset of the target's classes 0..{real.num_classes - 1}"
                        f" is needed (all of them would be the target's own data)")
    keep = torch.isin(real.train_labels, torch.tensor(classes, device=real.train_labels.device))
    remap = torch.full((real.num_classes,), -1, dtype=torch.long, device=real.train_labels.device)
    remap[torch.tensor(classes, device=remap.device)] = torch.arange(len(classes), device=remap.device)
    return replace(real, train_images=real.train_images[keep], train_labels=remap[real.train_labels[keep]],
                   test_images=real.test_images[:0], test_labels=real.test_labels[:0],
                   class_names=[real.class_names[c] for c in classes], train_indices=None, val_images=None,
                   val_labels=None)


def _suite(real: RealData, cfg: BackboneConfig, *, cache_dir: Path | None, progress: bool,
           key: str | None = None) -> Backbone:
    from dd_bench.teachers.recipe import get_recipe
    from dd_bench.teachers.store import get_teacher

    other = _pretraining_data(real, cfg, progress=progress, cache_dir=cache_dir)
    teacher = get_teacher(other, get_recipe(cfg.recipe), cache_dir=cache_dir, progress=progress)
    if key and teacher.key != key:
        raise UserError(f"the set's projector needs backbone key {key[:12]}, but this data gives {teacher.key[:12]} "
                        "(another dataset root, backbone.classes or dd-bench version)")
    adapter = None
    if cfg.dataset:  # another dataset's own mean/std: the target's pixels are renormalised for it
        adapter = InputAdapter(real, channels=real.channels, size=real.image_size, mean=other.mean, std=other.std)
    weights = Path(teacher.extra["cache_dir"]) / "weights.safetensors"
    identity = {"kind": "suite", "recipe": cfg.recipe, "key": teacher.key, "classes": cfg.classes,
                "dataset": cfg.dataset, "root": cfg.root, "file": str(weights), "sha256": file_sha256(weights),
                "bytes": teacher.parameter_bytes, "pretrain_images": len(other.train_labels)}
    return Backbone(FeatureBackbone(teacher.module.eval(), adapter=adapter, mode="embed"), identity,
                    exclude=("classifier",))


def _random(real: RealData, cfg: BackboneConfig, *, seed: int) -> Backbone:
    from dd_bench.models import create_model
    from dd_bench.seeding import make_generator
    from dd_bench.teachers.recipe import get_recipe
    from dd_bench.teachers.store import teacher_model_kwargs

    recipe = get_recipe(cfg.recipe)
    net = create_model(recipe.model, generator=make_generator(seed, "projector", "random-backbone"),
                       **teacher_model_kwargs(real, recipe)).to(real.device).eval()
    identity = {"kind": "random", "recipe": cfg.recipe, "seed": seed, "bytes": _state_bytes(net),
                "note": "ablation: a frozen random-init backbone, the lower bound; rebuilt from its seed"}
    return Backbone(FeatureBackbone(net, adapter=None, mode="embed"), identity, exclude=("classifier",))


def load_backbone(real: RealData, cfg: BackboneConfig | dict[str, Any], *, cache_dir: Path | None = None,
                  progress: bool = True, seed: int = 0, expect: dict[str, Any] | None = None) -> Backbone:
    """The backbone ``cfg`` names, frozen, in eval mode on ``real``'s device, with ``feature_dim`` in its identity.

    ``expect``: the identity a set recorded: the backbone found now must be the same (key or file SHA-256)."""
    cfg = backbone_config(cfg)
    if cfg.kind == BackboneKind.suite:
        bb = _suite(real, cfg, cache_dir=cache_dir, progress=progress, key=(expect or {}).get("key"))
    elif cfg.kind == BackboneKind.random:
        bb = _random(real, cfg, seed=int((expect or {}).get("seed", seed)))
    else:
        bb = {BackboneKind.open_clip: _open_clip, BackboneKind.timm: _timm,
              BackboneKind.torchvision: _torchvision}[cfg.kind](real, cfg)
    if expect and expect.get("sha256") and bb.identity.get("sha256") != expect["sha256"]:
        raise UserError(f"the set's projector was fitted on backbone file SHA-256 {expect['sha256'][:12]}; "
                        f"{bb.identity.get('file')} has {str(bb.identity.get('sha256'))[:12]}: another checkpoint")
    bb.module = bb.module.to(real.device).eval()
    for p in bb.module.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        probe = torch.zeros(2, real.channels, *real.image_size, device=real.device)
        bb.identity["feature_dim"] = int(bb.module(probe).shape[1])
    return bb
