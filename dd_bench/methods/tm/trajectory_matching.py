"""Trajectory matching: one core with switches for MTT, FTD, DATM, TESLA's gradient and FYI's flip.

Learnable: synthetic images X (model space: mean/std or ZCA), the student lr alpha, and for DATM soft-label
logits Y. Every iteration samples an expert ``e`` and a start epoch ``s`` (``[min_start_epoch, upper)``,
upper exclusive), runs ``syn_steps`` student SGD steps from ``tau_e[s]`` on DSA-augmented synthetic mini-batches
of ``batch_syn``, and matches ``tau_e[s + expert_epochs]`` (dd_bench/methods/tm/gradient.py). Switches:

* ``grad_mode``: ``auto`` (the default: the faster of the two exact modes for the shape, within the device's
  memory; dd_bench/methods/tm/grad_mode.py), ``recompute`` (exact with ``tesla``'s flat memory, by a reverse sweep
  that recomputes each student step), ``unrolled`` (exact, the papers' way: memory grows with N) or ``tesla``
  (constant memory, approximate);
* ``labels``: ``hard`` or ``learned`` (DATM: logits initialised from the experts, learned with SGD);
* ``init``: ``real``, ``noise`` or ``correct`` (DATM: real images the experts classify correctly);
* ``sequential_generation`` + ``current_max_start_epoch`` / ``expansion_end_epoch``: DATM's growing window;
* ``update_threshold``: DATM skips the update of an iteration whose loss exceeds it;
* ``ema_decay`` > 0: FTD's EMA of X, which the set stores as ``images`` (the raw X rides along as an extra);
* ``fyi``: FYI's flipped concatenation inside the matching loop and flip-aware DSA (experts too);
* ``expert_sampling``: ``without_replacement`` (each expert once per pass over shuffled experts, the official
  loaders' default; dd_bench/methods/tm/schedule.py) or ``with_replacement`` (their ``--load_all``);
* experts: SGD (MTT) or GSAM (FTD, DATM), trained once and cached (dd_bench/experts), or imported official
  ``replay_buffer_*.pt`` files (``expert_buffers``).
"""

from __future__ import annotations

import dataclasses
import enum
import glob
import math
import time
from pathlib import Path
from typing import Any

import torch

from dd_bench.augment import DSA
from dd_bench.data import RealData
from dd_bench.data.subsets import class_balanced_indices
from dd_bench.errors import UserError, UserFileNotFoundError
from dd_bench.experts import ExpertRecipe, FlatModel, get_experts, import_replay_buffers
from dd_bench.experts.recipe import ExpertOptimizer
from dd_bench.io import json_sha256
from dd_bench.methods.base import Synthesizer, hard_labels
from dd_bench.methods.loop import run_iterations
from dd_bench.methods.tm.grad_mode import (
    choose_grad_mode,
    device_memory_bytes,
    dsa_family_augments,
    unrolled_graph_bytes,
)
from dd_bench.methods.tm.gradient import GradMode, InnerStep, matching_gradient
from dd_bench.methods.tm.labels import (
    HardTargets,
    LearnedTargets,
    correctly_classified_init,
    expert_logit_labels,
    single_expert_logit_labels,
)
from dd_bench.methods.tm.schedule import ExpertSampler, ExpertSampling, start_epoch_upper
from dd_bench.methods.tm.selection import CheckpointSelector
from dd_bench.models import create_model
from dd_bench.seeding import make_generator
from dd_bench.synset import SyntheticSet


class Init(enum.StrEnum):
    real = "real"  # a random real subset
    noise = "noise"  # standard normal in model space
    correct = "correct"  # DATM: real images the experts classify correctly


class Labels(enum.StrEnum):
    hard = "hard"
    learned = "learned"  # DATM: soft labels learned as logits


def _validation_field(selector: CheckpointSelector | None) -> dict[str, str]:
    """The last validation-split accuracy of the checkpoint selection (never the test-selected one), for the bar
    and the distillation curves; empty before the first check or without selection."""
    if selector is None or not selector.curve or selector.curve[-1][1] is None:
        return {}
    return {"val_acc": f"{selector.curve[-1][1]:.2f}"}


class TrajectoryMatching(Synthesizer):
    name = "trajectory_matching"
    TEST_OPTIONS = {"iterations": 2, "syn_steps": 2, "max_start_epoch": 1, "expert_epochs": 1, "num_experts": 1,
                    "expert_train_epochs": 2, "expert_model_width": 8}

    @dataclasses.dataclass
    class Config:
        iterations: int = 5000
        syn_steps: int = 20  # N: student steps per iteration
        expert_epochs: int = 3  # M: the target is M expert epochs after the start
        min_start_epoch: int = 0
        max_start_epoch: int = 25  # exclusive upper bound of the sampled start epoch
        lr_img: float = 1000.0  # SGD (momentum 0.5) on the images, model-space units
        lr_lr: float = 1e-5  # SGD (momentum 0.5) on the student lr
        # initial student lr (alpha, then learned), not a teacher's: the name is MTT's official flag. Kept (not
        # renamed): option names are hashed into set identities, so a rename would change every set hash.
        lr_teacher: float = 0.01
        batch_syn: int = 0  # synthetic images per student step; 0 = all
        init: Init = Init.real
        labels: Labels = Labels.hard
        lr_label: float = 10.0  # DATM lr_y: SGD on the label logits
        label_momentum: float = 0.9
        sequential_generation: bool = False  # DATM's growing start-epoch window
        current_max_start_epoch: int = 0
        expansion_end_epoch: int = 0  # iterations over which the window grows
        update_threshold: float | None = None  # DATM: skip the update when the loss exceeds this
        ema_decay: float = 0.0  # FTD: EMA of the images (0 = off)
        # Each expert once per pass over shuffled experts (the official default), or with replacement (--load_all)
        expert_sampling: ExpertSampling = ExpertSampling.without_replacement
        # auto (the faster exact mode that fits) | recompute (exact, flat memory) | unrolled (exact) | tesla (approx.)
        grad_mode: GradMode = GradMode.auto
        fyi: bool = False  # FYI: flip concatenation in the matching loop + flip-aware DSA (experts too)
        dsa: bool = True
        num_experts: int = 100
        expert_train_epochs: int = 50
        expert_optimizer: ExpertOptimizer = ExpertOptimizer.sgd  # sgd (MTT) | gsam (FTD, DATM)
        expert_lr: float = 0.01
        expert_rho: float = 0.01  # GSAM
        expert_alpha: float = 0.3  # GSAM
        expert_batch: int = 256
        expert_seed: int = 0
        expert_model: str = "convnet"
        expert_model_width: int = 128  # ConvNet width (128 in every paper setting)
        expert_buffers: str | None = None  # glob of official replay_buffer_*.pt files to import instead
        checkpoint_every: int = 100
        # Checkpoint selection on the validation split (dd_bench/methods/tm/selection.py): 0 = the last iterate.
        eval_every: int = 0  # score the set every this many iterations (and after the last)
        eval_from: int = 0  # earlier iterations are not candidates (FYI: 5000)
        eval_networks: int = 2  # fresh networks per check
        eval_model: str = "convnet"
        eval_protocol: str = "mtt"
        eval_epochs: int | None = None  # the check's epochs instead of the protocol's (CPU, tests)
        # Also select on the TEST split as the papers do, only to report that set's score in its own labelled,
        # never-ranked column (acc_test_selected); the set itself stays the validation-selected one.
        paper_selection: bool = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        c = self.cfg
        if c.max_start_epoch <= c.min_start_epoch:
            raise UserError(f"max_start_epoch ({c.max_start_epoch}) must exceed min_start_epoch ({c.min_start_epoch})")
        if c.expert_buffers is None and c.expert_train_epochs < c.max_start_epoch - 1 + c.expert_epochs:
            raise UserError(f"experts trained {c.expert_train_epochs} epochs cannot reach start epoch "
                             f"{c.max_start_epoch - 1} + expert_epochs {c.expert_epochs}; raise expert_train_epochs")
        if not 0.0 <= c.ema_decay < 1.0:
            raise UserError(f"ema_decay must be in [0, 1); got {c.ema_decay}")
        bad_epochs = c.eval_epochs is not None and c.eval_epochs < 0
        if c.eval_every < 0 or c.eval_networks < 1 or c.eval_from < 0 or bad_epochs:
            raise UserError(f"eval_every >= 0 (0: the last iterate), eval_networks >= 1, eval_from >= 0 and "
                            f"eval_epochs >= 0 are required; got {c.eval_every}, {c.eval_networks}, {c.eval_from}, "
                            f"{c.eval_epochs}")
        if c.eval_every > 0:  # an unknown protocol fails here, naming the options, not at the first check
            from dd_bench.eval.protocol import get_protocol

            get_protocol(c.eval_protocol)

    @property
    def set_name(self) -> str:
        return f"{self.name}_fyi" if self.cfg.fyi else self.name

    def expert_recipe(self) -> ExpertRecipe:
        c = self.cfg
        return ExpertRecipe(model=c.expert_model, model_kwargs={"width": c.expert_model_width},
                            epochs=c.expert_train_epochs, optimizer=c.expert_optimizer, lr=c.expert_lr,
                            batch_size=c.expert_batch, rho=c.expert_rho, alpha=c.expert_alpha,
                            augment=("dsa_fyi" if c.fyi else "dsa") if c.dsa else "none", seed=c.expert_seed)

    def load_experts(self, real: RealData, *, progress: bool, cache_dir: Path | None = None):
        c = self.cfg
        if c.expert_buffers is not None:
            paths = sorted(Path(p) for p in glob.glob(c.expert_buffers))
            if not paths:
                raise UserFileNotFoundError(f"expert_buffers='{c.expert_buffers}' matches no file")
            return import_replay_buffers(paths, model=c.expert_model, num_classes=real.num_classes,
                                         in_channels=real.channels, image_size=real.image_size,
                                         model_kwargs={"width": c.expert_model_width})
        return get_experts(real, self.expert_recipe(), num_experts=c.num_experts, progress=progress,
                           cache_dir=cache_dir)

    def resolve_options(self, *, real: RealData, ipc: int) -> dict[str, Any]:
        """``grad_mode=auto`` -> ``unrolled`` or ``recompute`` for this shape and device (grad_mode.py)."""
        c = self.cfg
        if c.grad_mode != GradMode.auto:
            return {}
        device = torch.device(real.device)
        module = create_model(c.expert_model, num_classes=real.num_classes, in_channels=real.channels,
                              image_size=real.image_size, width=c.expert_model_width)
        flat = FlatModel(module).to(device)
        n_syn = real.num_classes * self.instances_per_class(ipc, real.num_classes)
        batch = min(c.batch_syn or n_syn, n_syn)
        if c.fyi:  # FYI halves batch_syn, then the flipped copy doubles it again
            batch = 2 * max(1, batch // 2)
        dsa = DSA(real.dsa_strategy, image_size=real.image_size, fyi=c.fyi) if c.dsa else None
        g = make_generator(0, "grad_mode", "probe", device=device)  # the probe's own stream: no run is touched
        size = unrolled_graph_bytes(forward=flat.forward, theta=flat.flatten(module).to(device),
                                    image_shape=(real.channels, *real.image_size), num_classes=real.num_classes,
                                    batch=batch, steps=c.syn_steps,
                                    augments=dsa_family_augments(dsa, g) if dsa is not None else ())
        mode = choose_grad_mode(unrolled_bytes=size, device_memory_bytes=device_memory_bytes(device),
                                device_type=device.type)
        self.cfg = dataclasses.replace(c, grad_mode=GradMode(mode))
        return {"grad_mode": mode}

    def _resume_key(self, real: RealData, ipc: int, seed: int, experts_key: str) -> str:
        # Not iterations: no schedule depends on the total, so a longer run may resume a shorter one's state; a
        # checkpoint past this run's iterations is never used (a resume never returns another config's result).
        cfg = {k: v for k, v in self.config_dict().items() if k not in ("iterations", "checkpoint_every")}
        return json_sha256({"cfg": cfg, "data": real.fingerprint(), "ipc": ipc, "seed": seed,
                            "experts": experts_key}, 16)

    def distill(self, real: RealData, *, ipc: int, seed: int, progress: bool = True,
                checkpoint_dir: Path | None = None, cache_dir: Path | None = None,
                paper_test: tuple[torch.Tensor, torch.Tensor] | None = None) -> SyntheticSet:
        """``paper_test``: the test split (images, labels), handed by the workflow to the checkpoint selector alone
        when ``paper_selection`` is set (the ``real`` a method receives has no test split)."""
        self.resolve_options(real=real, ipc=ipc)  # a direct call with grad_mode=auto runs (and records) a mode
        c, device, k = self.cfg, real.device, real.num_classes
        began = time.perf_counter()
        if c.paper_selection and (c.eval_every <= 0 or paper_test is None):
            raise UserError("paper_selection tracks the papers' test-selected checkpoint beside the validation-"
                            "selected one: it needs eval_every > 0 and the test split, which `dd-bench run` / "
                            "`distill` hand to the selector")
        selector = (CheckpointSelector(real, every=c.eval_every, start=c.eval_from, iterations=c.iterations,
                                       networks=c.eval_networks, model=c.eval_model, protocol=c.eval_protocol,
                                       epochs=c.eval_epochs, paper_test=paper_test if c.paper_selection else None)
                    if c.eval_every > 0 else None)
        experts = self.load_experts(real, progress=progress, cache_dir=cache_dir)
        traj = experts.params  # (E, T+1, P) float32, CPU
        if traj.shape[1] < c.max_start_epoch + c.expert_epochs:
            raise UserError(f"the experts have {traj.shape[1] - 1} epochs; start epochs up to "
                             f"{c.max_start_epoch - 1} + expert_epochs {c.expert_epochs} need more")
        flat = experts.flat_model().to(device)
        g_init = make_generator(seed, "method", self.name, "init")
        g_sample = make_generator(seed, "method", self.name, "sample")  # expert, start epoch, batch order
        g_aug = make_generator(seed, "method", self.name, "aug", device=device)
        labels = hard_labels(k, ipc, device)  # (K*ipc,)

        def classifier(e: int):
            theta = traj[e, -1].to(device)
            return lambda x: flat.forward(theta, x)

        init_info: dict[str, Any] = {}
        if c.init == "noise":
            images = torch.randn((k * ipc, real.channels, *real.image_size), generator=g_init).to(device)
        else:
            if c.init == "real":
                idx = class_balanced_indices(real.train_labels, ipc, k, generator=g_init)
            else:
                idx, init_info = correctly_classified_init(
                    real, ipc=ipc, classifiers=[classifier(e) for e in range(len(traj))], generator=g_init)
            images = real.to_model_space(real.train_images[idx])
        images = images.clone().requires_grad_(True)  # X: (K*ipc, C, H, W)
        alpha = torch.tensor(c.lr_teacher, device=device, requires_grad=True)
        optimisers = {"images": torch.optim.SGD([images], lr=c.lr_img, momentum=0.5),
                      "alpha": torch.optim.SGD([alpha], lr=c.lr_lr, momentum=0.5)}
        if c.labels == "learned":
            # DATM.py: random real images take expert 0's logits as they are; correctly-classified (and noise, where
            # DATM has no rule) images the mean over the experts that classify each image correctly.
            logits = (single_expert_logit_labels(images.detach(), classifier(0)) if c.init == "real" else
                      expert_logit_labels(images.detach(), labels, [classifier(e) for e in range(len(traj))]))
            init_info["label_init"] = "expert 0" if c.init == "real" else "mean over correct experts"
            targets = LearnedTargets(logits.clone().requires_grad_(True))
            optimisers["labels"] = torch.optim.SGD([targets.leaf], lr=c.lr_label, momentum=c.label_momentum)
        else:
            targets = HardTargets(labels)
        leaves = {"images": images, "alpha": alpha, **({"labels": targets.leaf} if targets.leaf is not None else {})}
        ema = images.detach().clone() if c.ema_decay > 0 else None
        augment = DSA(real.dsa_strategy, image_size=real.image_size, fyi=c.fyi) if c.dsa else None
        n_syn = len(images)
        batch = c.batch_syn or n_syn
        if c.fyi:  # the flipped copy doubles the batch: FYI halves batch_syn to keep the step's size
            batch = max(1, batch // 2)

        state: dict[str, Any] = {"iteration": 0, "skipped": 0, "losses": []}  # JSON, checkpointed
        experts_sampler = ExpertSampler(len(traj), c.expert_sampling, g_sample)

        def step(it: int) -> float:
            upper = start_epoch_upper(it, max_start=c.max_start_epoch, current_max=c.current_max_start_epoch,
                                      expansion_end=c.expansion_end_epoch, sequential=c.sequential_generation)
            start = int(torch.randint(c.min_start_epoch, max(upper, c.min_start_epoch + 1), (1,), generator=g_sample))
            e = experts_sampler.next()
            plan = self._plan(n_syn, batch, augment, g_sample, g_aug, device)
            for opt in optimisers.values():
                opt.zero_grad(set_to_none=True)
            loss = matching_gradient(
                c.grad_mode, forward=flat.forward, theta0=traj[e, start].to(device),
                theta_target=traj[e, start + c.expert_epochs].to(device), images=images, alpha=alpha,
                targets_of=targets, plan=plan, augment=augment, fyi=c.fyi)
            skip = c.update_threshold is not None and loss > c.update_threshold
            if math.isfinite(loss) and not skip:
                for opt in optimisers.values():
                    opt.step()
            state["skipped"] += int(skip)
            return loss

        def current() -> dict[str, torch.Tensor]:
            return {**leaves, **({"ema": ema} if ema is not None else {})}

        def after_step(it: int, loss: float) -> None:
            if ema is not None:
                with torch.no_grad():
                    ema.mul_(c.ema_decay).add_(images.detach(), alpha=1.0 - c.ema_decay)
            state["iteration"] = it + 1
            state["losses"] = (state["losses"] + [loss])[-100:]
            if selector is not None and selector.due(it + 1):
                selector.check(it + 1, lambda: self._result(real, ipc, images, alpha, targets, ema, labels, {}),
                               current())

        def save_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            tensors = {"g_sample": g_sample.get_state(), "g_aug": g_aug.get_state()}
            for name, opt in optimisers.items():
                buf = opt.state.get(leaves[name], {}).get("momentum_buffer")
                if buf is not None:
                    tensors[f"momentum.{name}"] = buf
            if ema is not None:
                tensors["ema"] = ema
            extra: dict[str, Any] = {}
            if selector is not None:
                best, extra["selection"] = selector.state()
                tensors.update(best)
            return tensors, {"skipped": state["skipped"], "losses": state["losses"],
                             "experts": experts_sampler.state(), **extra}

        def restore_state(tensors: dict[str, torch.Tensor], saved: dict[str, Any]) -> None:
            self._restore(tensors, leaves, optimisers, ema, (g_sample, g_aug), device)
            state.update(iteration=saved["iteration"], skipped=saved["skipped"], losses=saved["losses"])
            experts_sampler.load_state(saved["experts"])
            if selector is not None:
                selector.load_state(tensors, saved["selection"])

        status = run_iterations(
            iterations=c.iterations, leaves=leaves, step=step, save_state=save_state, restore_state=restore_state,
            checkpoint_dir=checkpoint_dir, checkpoint_every=c.checkpoint_every,
            config_hash=self._resume_key(real, ipc, seed, experts.key), progress=progress,
            desc=f"{self.set_name} ipc{ipc}", after_step=after_step,
            postfix=lambda it, loss: {"loss": f"{loss:.3f}", "lr": f"{float(alpha.detach()):.4g}",
                                      "skipped": state["skipped"], **_validation_field(selector)})
        if init_info:
            status["init"] = init_info
        if selector is not None and selector.best:
            with torch.no_grad():  # the best validation checkpoint becomes the set
                for name, tensor in current().items():
                    tensor.copy_(selector.best[name].to(tensor.device))
        paper_extras: dict[str, torch.Tensor] = {}
        if selector is not None:
            status["selection"] = selector.summary(time.perf_counter() - began)
            if selector.test_best:  # the papers' test-selected state rides along, for its own column only
                best = selector.test_best
                paper_extras = {"paper_selected.images": best["ema" if ema is not None else "images"].clone(),
                                "paper_selected.learned_lr": best["alpha"].reshape(1).clone()}
                if "labels" in best:
                    paper_extras["paper_selected.soft_labels"] = best["labels"].clone()
        status["expert_sampling"] = {"mode": str(c.expert_sampling), "uses": experts_sampler.counts}
        status.update(skipped_updates=state["skipped"], iterations_done=state["iteration"],
                      mean_loss_last_100=sum(state["losses"]) / max(1, len(state["losses"])),
                      experts={"key": experts.key, "source": experts.source, "count": int(traj.shape[0]),
                               "epochs": int(traj.shape[1] - 1)})
        synset = self._result(real, ipc, images, alpha, targets, ema, labels, status)
        synset.extras.update({k: v.to(device) for k, v in paper_extras.items()})
        return synset

    def _plan(self, n_syn: int, batch: int, augment: DSA | None, g_sample: torch.Generator,
              g_aug: torch.Generator, device: torch.device) -> list[InnerStep]:
        """Batch indices and DSA params of every student step: chunks of a fresh permutation per iteration,
        a new permutation when one is used up (MTT's indices_chunks)."""
        chunks: list[torch.Tensor] = []
        plan = []
        for _ in range(self.cfg.syn_steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(n_syn, generator=g_sample), batch))
            idx = chunks.pop(0).to(device)
            n_aug = len(idx) * (2 if self.cfg.fyi else 1)
            plan.append(InnerStep(idx, augment.sample_params(n_aug, generator=g_aug) if augment else None))
        return plan

    @staticmethod
    def _restore(tensors: dict, leaves: dict, optimisers: dict, ema: torch.Tensor | None,
                 generators: tuple[torch.Generator, torch.Generator], device: torch.device) -> None:
        """Everything but the leaves (restored by the loop): momenta, the EMA, the generators."""
        with torch.no_grad():
            if ema is not None:
                ema.copy_(tensors["ema"].to(device))
        for name, opt in optimisers.items():
            if f"momentum.{name}" in tensors:
                opt.state[leaves[name]]["momentum_buffer"] = tensors[f"momentum.{name}"].to(device)
        for g, name in zip(generators, ("g_sample", "g_aug"), strict=True):
            g.set_state(tensors[name].cpu())  # generator states are CPU byte tensors on every device

    def _result(self, real: RealData, ipc: int, images: torch.Tensor, alpha: torch.Tensor, targets: Any,
                ema: torch.Tensor | None, labels: torch.Tensor, status: dict) -> SyntheticSet:
        extras = {"images_raw": images.detach().clone()} if ema is not None else {}
        soft = {"soft_labels": targets.leaf.detach().clone(), "label_kind": "soft_logits"} \
            if targets.leaf is not None else {}
        synset = self.new_synset(real, ipc=ipc, images=(ema if ema is not None else images).detach(), labels=labels,
                                 learned_lr=float(alpha.detach()), extras=extras,
                                 provenance={"distill_status": status}, **soft)
        synset.method = self.set_name
        return synset
