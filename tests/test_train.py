"""The shared training layer: losses against their formulas, schedules against torch and the papers, label
sources see the augmented batch, every seed is checked for divergence."""

from __future__ import annotations

import math

import pytest
import torch

from dd_bench.augment import DSA
from dd_bench.labels import HardLabels, Targets
from dd_bench.train import Cosine, HalfCosine, Loss, OptimizerSpec, StepDecay, kd_kl, train_networks
from dd_bench.train.losses import Loss as LossCls


def test_kd_loss_matches_the_formula_without_a_t_squared_factor():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(6, 5, generator=g, dtype=torch.float64)
    teacher = torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = 30.0
    p = torch.softmax(teacher / t, dim=-1)
    q = torch.softmax(student / t, dim=-1)
    by_hand = (p * (p.log() - q.log())).sum(-1).mean()  # KL(p || q), batchmean
    assert kd_kl(student, teacher, t) == pytest.approx(float(by_hand), rel=1e-9)
    assert Loss("kl", temperature=t)(student, teacher) == pytest.approx(float(by_hand), rel=1e-9)


def test_soft_ce_and_ce_agree_on_one_hot_targets():
    g = torch.Generator().manual_seed(1)
    logits, classes = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 2])
    one_hot = torch.nn.functional.one_hot(classes, 3).float()
    assert Loss("soft_ce")(logits, one_hot) == pytest.approx(float(Loss("ce")(logits, classes)), rel=1e-6)


def test_unknown_losses_and_optimizers_name_the_options():
    from dd_bench.errors import UserError

    with pytest.raises(UserError, match="available: ce, soft_ce, kl"):
        LossCls("mse")
    with pytest.raises(UserError, match="available: sgd, adam, adamw"):
        OptimizerSpec("lion")


def test_cosine_equals_torch_cosine_annealing_per_epoch():
    epochs, lr0 = 10, 1e-3
    opt = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    for e in range(epochs):
        assert Cosine(t_max=epochs).lr(e, lr0) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_half_cosine_is_the_smoothed_schedule_of_section_1_5():
    # lr(e) = lr0 * 0.5 * (1 + cos(pi * e / (E * eta))): eta = 2 ends at half of lr0, eta = 1 is the plain cosine.
    assert HalfCosine(epochs=300, eta=2).lr(0, 1.0) == 1.0
    assert HalfCosine(epochs=300, eta=2).lr(300, 1.0) == pytest.approx(0.5)
    assert HalfCosine(epochs=300, eta=2).lr(150, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert HalfCosine(epochs=300, eta=1).lr(123, 1.0) == pytest.approx(Cosine(t_max=300).lr(123, 1.0))


def test_step_decay_is_the_official_rule():
    s = StepDecay(decay_epoch=501, factor=0.1)
    assert s.lr(501, 0.01) == 0.01 and s.lr(502, 0.01) == pytest.approx(0.001)
    assert s.fresh_optimizer(502) and not s.fresh_optimizer(501) and not s.fresh_optimizer(503)


class Recording:
    """A label source that records what the loop hands it."""

    name = "recording"

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels, self.calls = labels, []

    def targets(self, x_aug, idx, epoch, aug_params) -> Targets:
        self.calls.append((x_aug.detach().clone(), idx.clone(), epoch, aug_params))
        return Targets(self.labels[idx], Loss("ce"))


@pytest.mark.parametrize("batched", [False, True])
def test_label_sources_see_the_augmented_batch(digits, batched):
    images = digits.to_model_space(digits.train_images[:20])
    source = Recording(digits.train_labels[:20])
    dsa = DSA(digits.dsa_strategy, image_size=digits.image_size)
    train_networks(model="mlp", images=images, labels=source, num_classes=10, passes=2, batch_size=8,
                   optimizer=OptimizerSpec("adamw", weight_decay=0.01), lr=1e-3, schedule=Cosine(t_max=2), seeds=[0],
                   augment=dsa, batched=batched, progress=False)
    assert [c[2] for c in source.calls] == [0, 0, 0, 1, 1, 1]  # 3 batches per pass (8 + 8 + 4)
    x_aug, idx, _, params = source.calls[0]
    assert params is not None and len(idx) == 8
    replay = dsa.apply(images[idx], params)  # the targets were asked for the augmented images
    torch.testing.assert_close(x_aug, replay)


def test_every_seed_is_checked_for_divergence(digits):
    images = digits.to_model_space(digits.train_images[:16])

    class PoisonSeed0(HardLabels):
        def targets(self, x_aug, idx, epoch, aug_params):
            return Targets(torch.full((len(idx), 10), float("nan")), Loss("soft_ce"))

    good = HardLabels(digits.train_labels[:16])
    with pytest.raises(FloatingPointError, match=r"seed\(s\) \[0\]"):
        train_networks(model="mlp", images=[images, images], labels=[PoisonSeed0(good.labels), good],
                       num_classes=10, passes=1, batch_size=16, optimizer=OptimizerSpec(), lr=0.01,
                       schedule=StepDecay(decay_epoch=0), seeds=[0, 1], augment=None, batched=False,
                       progress=False)


def test_warmup_cosine_equals_torchvisions_sequential_lr():
    from dd_bench.train import WarmupCosine

    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.2)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=5)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100 - 5)
    seq = torch.optim.lr_scheduler.SequentialLR(opt, schedulers=[warm, cos], milestones=[5])
    ours = WarmupCosine(100, 5, 0.01)
    for epoch in range(100):
        assert ours.lr(epoch, 0.2) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6, abs=1e-12), epoch
        opt.step()
        seq.step()


def test_the_t_squared_factor_scales_kl_only():
    from dd_bench.eval.kd import T2Scaled
    from dd_bench.labels import MixedLabels
    from dd_bench.labels.static import StaticLogits

    z, s = torch.randn(4, 10), torch.randn(4, 10)
    scaled = T2Scaled(StaticLogits(z, temperature=20.0), 400.0).targets(torch.zeros(4, 1), torch.arange(4), 0, None)
    assert float(scaled.loss(s, scaled.values)) == pytest.approx(400.0 * float(kd_kl(s, z, 20.0)), rel=1e-5)
    hard = T2Scaled(MixedLabels(torch.arange(4), 10), 400.0).targets(torch.zeros(4, 1), torch.arange(4), 0, None)
    assert hard.loss.scale == 1.0 and hard.loss.kind == "soft_ce"
