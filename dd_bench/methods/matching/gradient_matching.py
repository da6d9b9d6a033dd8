"""DC and DSA: dataset condensation by gradient matching (Zhao, Mopuri & Bilen, ICLR 2021) and its Siamese
augmentation (Zhao & Bilen, ICML 2021); VICO-UoE/DatasetCondensation ``main.py`` and ``utils.py`` (53f63a6).

One **iteration** (``main.py`` L136-206): a freshly initialised network; ``outer_loop`` times: per class, the
gradient of the CE loss of a real batch of that class (``batch_real`` images, detached) and of the class's
synthetic images (kept in the graph), their distance summed over classes, one SGD step on the images (lr 0.1,
momentum 0.5); then, except after the last outer loop, ``inner_loop`` epochs of the network on the synthetic set
(SGD lr 0.01 without momentum, batch 256, shuffled; DSA per sample for DSA). ``outer_loop`` and ``inner_loop`` come
from the IPC (``get_loops``, utils.py:275-294); an IPC the table does not define is refused unless both are given.

* **Distance** (``match_loss`` / ``distance_wb``, utils.py:218-272): ``ours`` sums, over layers, ``sum_i (1 -
  cos(g_real_i, g_syn_i))`` with ``i`` the output units (a conv's out channels, a linear layer's rows, a 3-D
  norm weight's channels), and ignores 1-D tensors (biases, norm scales); ``mse`` the squared distance and ``cos``
  one minus the cosine of the concatenated gradients.
* **BatchNorm** (L161-177): for a network with BatchNorm, every outer loop first runs ``16`` real images per class
  through it in train mode (updating the running statistics), then freezes its BN layers in eval mode for the
  matching; the inner loop trains in train mode again. The default ConvNet (instance norm) has none.
* **Initialisation**: DC's published runs use noise (``--init`` default ``noise``: standard normal in model space),
  DSA's README commands pass ``--init real`` (a random real image per slot).
* **Siamese DSA** (L183-186): the official code re-seeds the global RNG so that the real batch and the synthetic
  images draw the same parameters, one set for the whole batch (``param.Siamese``: ``theta[:] = theta[0]``). Here
  one parameter draw (``sample_params(1, same_on_batch=True)``) from an explicit generator is applied to both; the
  global RNG is never touched.

Iterations count image updates rounds as ``main.py``'s recorded set does: its accuracies are measured at
``it == Iteration`` before that iteration's update, i.e. after ``Iteration`` rounds.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dd_bench.augment import DSA
from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.errors import UserError
from dd_bench.methods.base import METHODS, Synthesizer, hard_labels
from dd_bench.methods.loop import (
    generator_states,
    momentum_state,
    restore_generators,
    restore_momentum,
    resume_key,
    run_iterations,
)
from dd_bench.models import create_model
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet

# get_loops (utils.py:275-294): ipc -> (outer_loop, inner_loop).
LOOPS: dict[int, tuple[int, int]] = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15),
                                     50: (50, 10)}
BN_IMAGES_PER_CLASS = 16  # main.py L167 BNSizePC: real images per class that set the frozen BN statistics


class Distance(enum.StrEnum):
    ours = "ours"  # layer-wise, per output unit (the paper's)
    mse = "mse"
    cos = "cos"


class Init(enum.StrEnum):
    noise = "noise"
    real = "real"


def loops_for(ipc: int, outer_loop: int | None = None, inner_loop: int | None = None) -> tuple[int, int]:
    """(outer_loop, inner_loop) for ``ipc``: both given, or the official table; anything else fails in one line."""
    if outer_loop is not None and inner_loop is not None:
        if outer_loop < 1 or inner_loop < 0:
            raise UserError(f"gradient matching: outer_loop must be >= 1 and inner_loop >= 0; got {outer_loop}, "
                            f"{inner_loop}")
        return outer_loop, inner_loop
    if outer_loop is not None or inner_loop is not None:
        raise UserError("gradient matching: give both outer_loop and inner_loop, or neither (the official table)")
    if ipc not in LOOPS:
        raise UserError(f"gradient matching: the official get_loops defines ipc {', '.join(map(str, LOOPS))}; got "
                        f"ipc {ipc} (set method.outer_loop and method.inner_loop to run it anyway)")
    return LOOPS[ipc]


def layer_distance(g_real: torch.Tensor, g_syn: torch.Tensor) -> torch.Tensor:
    """``distance_wb``: sum over output units of 1 - cosine, a tensor's first dimension being the units; 0 for 1-D
    tensors (biases, norm weights), which the paper's distance leaves out."""
    if g_real.ndim == 1:
        return g_real.new_zeros(())
    a, b = g_real.reshape(g_real.shape[0], -1), g_syn.reshape(g_syn.shape[0], -1)
    # the official 1e-6 goes on the product of the norms, not on each norm
    return (1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-6)).sum()


def match_distance(g_syn: list[torch.Tensor], g_real: list[torch.Tensor], metric: Distance | str) -> torch.Tensor:
    """``match_loss`` of two gradient lists (one tensor per parameter, the same shapes)."""
    if metric == Distance.ours:
        return torch.stack([layer_distance(r, s) for r, s in zip(g_real, g_syn, strict=True)]).sum()
    real = torch.cat([g.reshape(-1) for g in g_real])
    syn = torch.cat([g.reshape(-1) for g in g_syn])
    if metric == Distance.mse:
        return ((syn - real) ** 2).sum()
    if metric == Distance.cos:
        return 1 - (real * syn).sum() / (real.norm() * syn.norm() + 1e-6)
    raise UserError(f"Unknown distance '{metric}'; available: {', '.join(d.value for d in Distance)}")


def _has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@METHODS.register("dc")
class DatasetCondensation(Synthesizer):
    name = "dc"
    # Explicit loops (get_loops has no ipc 2) that also run the inner loop; an MLP keeps it about a second.
    TEST_OPTIONS = {"iterations": 2, "batch_real": 16, "outer_loop": 2, "inner_loop": 1, "model": "mlp"}

    @dataclasses.dataclass
    class Config:
        model: str = "convnet"  # the network whose gradients are matched, fresh every iteration
        iterations: int = 1000  # main.py --Iteration
        lr_img: float = 0.1  # SGD on the images (model-space units)
        momentum: float = 0.5
        lr_net: float = 0.01  # the inner loop's SGD (no momentum)
        batch_real: int = 256  # real images per class per outer loop (all of a smaller class)
        batch_train: int = 256  # the inner loop's batch
        init: Init = Init.noise
        distance: Distance = Distance.ours
        dsa: bool = False  # Siamese DSA with the dataset's strategy (method=dsa)
        outer_loop: int | None = None  # None: get_loops(ipc)
        inner_loop: int | None = None
        checkpoint_every: int = 100  # iterations between atomic checkpoints (when a checkpoint dir is given)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        if c.iterations < 0 or c.batch_real < 1 or c.batch_train < 1 or not c.lr_img > 0 or not c.lr_net > 0:
            raise UserError(f"{self.name}: iterations >= 0, batch_real >= 1, batch_train >= 1, lr_img > 0 and "
                            f"lr_net > 0 are required; got {c.iterations}, {c.batch_real}, {c.batch_train}, "
                            f"{c.lr_img}, {c.lr_net}")
        if c.checkpoint_every < 1:
            raise UserError(f"{self.name}: checkpoint_every must be >= 1; got {c.checkpoint_every}")


    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None) -> SyntheticSet:
        cfg, device, k = self.cfg, real.device, real.num_classes
        outer, inner = loops_for(ipc, cfg.outer_loop, cfg.inner_loop)  # before any work
        streams = ("method", self.name)
        g_init, g_net = make_generator(seed, *streams, "init"), make_generator(seed, *streams, "net")
        g_real, g_order = make_generator(seed, *streams, "real"), make_generator(seed, *streams, "order")
        g_aug = make_generator(seed, *streams, "aug", device=device)
        labels = hard_labels(k, ipc, device)  # (K*ipc,) class-major, as label_syn
        if cfg.init == Init.real:
            idx = class_balanced_indices(real.train_labels, ipc, k, generator=g_init)
            images = real.to_model_space(real.train_images[idx])
        else:
            images = torch.randn((k * ipc, real.channels, *real.image_size), generator=g_init).to(device)
        images = images.clone().requires_grad_(True)  # (K*ipc, C, H, W) model space
        opt_img = torch.optim.SGD([images], lr=cfg.lr_img, momentum=cfg.momentum)
        dsa = DSA(real.dsa_strategy, image_size=real.image_size) if cfg.dsa else None
        class_idx = [real.indices_of_class(c).cpu() for c in range(k)]
        model_kwargs = dict(num_classes=k, in_channels=real.channels, image_size=real.image_size)

        def real_batch(c: int, n: int) -> torch.Tensor:
            pick = class_idx[c][torch.randperm(len(class_idx[c]), generator=g_real)[:n]]
            return real.to_model_space(real.train_images[pick.to(device)])

        def freeze_bn(net: nn.Module) -> None:
            net.train()
            with torch.no_grad():
                net(torch.cat([real_batch(c, BN_IMAGES_PER_CLASS) for c in range(k)]))
            for m in net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

        def train_inner(net: nn.Module, opt_net: torch.optim.Optimizer) -> None:
            net.train()
            x_all, y_all = images.detach(), labels
            for _ in range(inner):
                order = torch.randperm(len(x_all), generator=g_order).to(device)
                for start in range(0, len(order), cfg.batch_train):
                    batch = order[start:start + cfg.batch_train]
                    x = x_all[batch]
                    if dsa is not None:  # per-sample parameters, as DiffAugment without a seed
                        x = dsa.apply(x, dsa.sample_params(len(x), generator=g_aug))
                    loss = F.cross_entropy(net(x), y_all[batch])
                    opt_net.zero_grad(set_to_none=True)
                    loss.backward()
                    opt_net.step()

        def step(it: int) -> float:
            net = create_model(cfg.model, generator=g_net, **model_kwargs).to(device)
            net.train()
            params = [p for p in net.parameters() if p.requires_grad]
            opt_net = torch.optim.SGD(params, lr=cfg.lr_net)
            bn = _has_batchnorm(net)
            total = 0.0
            for ol in range(outer):
                if bn:
                    freeze_bn(net)
                loss = images.new_zeros(())
                for c in range(k):
                    x_real, x_syn = real_batch(c, cfg.batch_real), images[c * ipc:(c + 1) * ipc]
                    if dsa is not None:
                        shared = dsa.sample_params(1, generator=g_aug, same_on_batch=True)  # one draw for both
                        x_real, x_syn = dsa.apply(x_real, shared), dsa.apply(x_syn, shared)
                    y_real = torch.full((len(x_real),), c, device=device)
                    g_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(net(x_real), y_real), params)]
                    g_syn = torch.autograd.grad(F.cross_entropy(net(x_syn), labels[c * ipc:(c + 1) * ipc]), params,
                                                create_graph=True)
                    loss = loss + match_distance(g_syn, g_real, cfg.distance)
                (grad,) = torch.autograd.grad(loss, [images])  # the images only: the network's grads stay clean
                opt_img.zero_grad(set_to_none=True)
                images.grad = grad
                opt_img.step()
                total += loss.item()
                if ol == outer - 1:
                    break
                train_inner(net, opt_net)
            return total / (k * outer)

        generators = {"net": g_net, "real": g_real, "order": g_order, "aug": g_aug}

        def save_state() -> tuple[dict[str, torch.Tensor], dict]:
            return {**generator_states(generators), **momentum_state(opt_img, images)}, {}

        def restore_state(tensors: dict[str, torch.Tensor], state: dict) -> None:
            restore_momentum(opt_img, images, tensors)
            restore_generators(generators, tensors)

        status = run_iterations(
            iterations=cfg.iterations, leaves={"images": images}, step=step, save_state=save_state,
            restore_state=restore_state, checkpoint_dir=checkpoint_dir, checkpoint_every=cfg.checkpoint_every,
            config_hash=resume_key(self.config_dict(), fingerprint=real.fingerprint(), ipc=ipc, seed=seed),
            progress=progress, desc=f"{self.name} ipc{ipc}",
            postfix=lambda it, loss: {"loss": f"{loss:.4g}"})
        return self.new_synset(real, ipc=ipc, images=images.detach(), labels=labels,
                               provenance={"distill_status": {**status, "outer_loop": outer, "inner_loop": inner}})


@METHODS.register("dsa")
class SiameseAugmentedCondensation(DatasetCondensation):
    """DSA: DC with Siamese augmentation, initialised from real images (the README's ``--init real --method DSA
    --dsa_strategy color_crop_cutout_flip_scale_rotate``; the strategy is the dataset's DSA strategy here)."""

    name = "dsa"

    @dataclasses.dataclass
    class Config(DatasetCondensation.Config):
        init: Init = Init.real
        dsa: bool = True
