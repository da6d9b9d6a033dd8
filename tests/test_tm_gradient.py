"""The matching gradient (exact unrolled vs finite differences; TESLA vs exact), DATM's window and labels, FYI."""

from __future__ import annotations

import pytest
import torch

from dd_bench.augment import DSA
from dd_bench.methods.tm.gradient import InnerStep, matching_gradient, unrolled_gradient
from dd_bench.methods.tm.labels import HardTargets, LearnedTargets, expert_logit_labels
from dd_bench.methods.tm.schedule import start_epoch_upper

K, C, H = 3, 1, 4  # classes, channels, pixels: a tiny problem the finite differences can afford
D = C * H * H


def _forward(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A one-hidden-layer tanh network with flat parameters: (P,) and (B, C, H, W) -> (B, K)."""
    w1 = theta[: 8 * D].view(8, D)
    b1 = theta[8 * D: 8 * D + 8]
    w2 = theta[8 * D + 8: 8 * D + 8 + 8 * K].view(K, 8)
    return torch.tanh(x.flatten(1) @ w1.T + b1) @ w2.T


P = 8 * D + 8 + 8 * K


def _problem(seed: int = 0, n_per_class: int = 2, steps: int = 4, augment: bool = True):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(K * n_per_class, C, H, H, generator=g, dtype=torch.float64)
    labels = torch.arange(K).repeat_interleave(n_per_class)
    theta0 = 0.5 * torch.randn(P, generator=g, dtype=torch.float64)
    target = theta0 + 0.3 * torch.randn(P, generator=g, dtype=torch.float64)
    dsa = DSA("color_crop_cutout_scale_rotate", image_size=H) if augment else None
    plan = []
    for _ in range(steps):
        idx = torch.randperm(len(images), generator=g)[:4]
        params = dsa.sample_params(len(idx), generator=g) if dsa else None
        plan.append(InnerStep(idx, params))
    return images, labels, theta0, target, dsa, plan


def _grads(mode: str, images, labels, theta0, target, dsa, plan, alpha_value=0.5, learned=None):
    x = images.clone().requires_grad_(True)
    alpha = torch.tensor(alpha_value, dtype=torch.float64, requires_grad=True)
    targets = HardTargets(labels) if learned is None else LearnedTargets(learned.clone().requires_grad_(True))
    loss = matching_gradient(mode, forward=_forward, theta0=theta0, theta_target=target, images=x, alpha=alpha,
                             targets_of=targets, plan=plan, augment=dsa)
    return loss, x.grad, alpha.grad, (targets.leaf.grad if learned is not None else None)


def _loss_only(images, alpha_value, labels, theta0, target, dsa, plan, learned=None) -> float:
    x = images.clone().requires_grad_(True)
    alpha = torch.tensor(alpha_value, dtype=torch.float64, requires_grad=True)
    targets = HardTargets(labels) if learned is None else LearnedTargets(learned.clone().requires_grad_(True))
    return unrolled_gradient(forward=_forward, theta0=theta0, theta_target=target, images=x, alpha=alpha,
                             targets_of=targets, plan=plan, augment=dsa)


def test_unrolled_gradient_matches_finite_differences():
    images, labels, theta0, target, dsa, plan = _problem()
    loss, gx, galpha, _ = _grads("unrolled", images, labels, theta0, target, dsa, plan)
    eps = 1e-6
    coords = [(0, 0, 1, 2), (3, 0, 2, 2), (5, 0, 0, 3)]
    for coord in coords:
        plus, minus = images.clone(), images.clone()
        plus[coord] += eps
        minus[coord] -= eps
        fd = (_loss_only(plus, 0.5, labels, theta0, target, dsa, plan)
              - _loss_only(minus, 0.5, labels, theta0, target, dsa, plan)) / (2 * eps)
        assert gx[coord].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)
    fd_alpha = (_loss_only(images, 0.5 + eps, labels, theta0, target, dsa, plan)
                - _loss_only(images, 0.5 - eps, labels, theta0, target, dsa, plan)) / (2 * eps)
    assert galpha.item() == pytest.approx(fd_alpha, rel=1e-4)
    assert loss == pytest.approx(_loss_only(images, 0.5, labels, theta0, target, dsa, plan))


def test_learned_label_gradient_matches_finite_differences():
    images, labels, theta0, target, dsa, plan = _problem(seed=1)
    logits = torch.randn(len(labels), K, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    _, _, _, gy = _grads("unrolled", images, labels, theta0, target, dsa, plan, learned=logits)
    eps = 1e-6
    for coord in [(0, 0), (4, 2)]:
        plus, minus = logits.clone(), logits.clone()
        plus[coord] += eps
        minus[coord] -= eps
        fd = (_loss_only(images, 0.5, labels, theta0, target, dsa, plan, learned=plus)
              - _loss_only(images, 0.5, labels, theta0, target, dsa, plan, learned=minus)) / (2 * eps)
        assert gy[coord].item() == pytest.approx(fd, rel=1e-4, abs=1e-9)


def test_tesla_gradient_approximates_the_exact_one():
    """Measured here: image-gradient cosine ~0.99 with small steps; asserted with slack (> 0.9). The loss value
    is exact (same forward trajectory); alpha's gradient keeps its sign."""
    cosines = []
    for seed in range(3):
        images, labels, theta0, target, dsa, plan = _problem(seed=seed, steps=6)
        exact = _grads("unrolled", images, labels, theta0, target, dsa, plan, alpha_value=0.1)
        approx = _grads("tesla", images, labels, theta0, target, dsa, plan, alpha_value=0.1)
        assert approx[0] == pytest.approx(exact[0], rel=1e-10)
        cosines.append(torch.nn.functional.cosine_similarity(exact[1].flatten(), approx[1].flatten(), dim=0).item())
        assert torch.sign(exact[2]) == torch.sign(approx[2])
    assert min(cosines) > 0.9, cosines


def test_tesla_learned_labels_receive_gradient():
    images, labels, theta0, target, dsa, plan = _problem(seed=2)
    logits = torch.zeros(len(labels), K, dtype=torch.float64)
    exact = _grads("unrolled", images, labels, theta0, target, dsa, plan, alpha_value=0.1, learned=logits)
    approx = _grads("tesla", images, labels, theta0, target, dsa, plan, alpha_value=0.1, learned=logits)
    assert approx[3] is not None and torch.isfinite(approx[3]).all()
    cos = torch.nn.functional.cosine_similarity(exact[3].flatten(), approx[3].flatten(), dim=0)
    assert cos > 0.8


def test_unknown_grad_mode_is_rejected():
    with pytest.raises(ValueError, match="available: recompute, unrolled, tesla"):
        matching_gradient("exact", forward=_forward)


def test_datm_window_grows_linearly_then_stays():
    kw = dict(max_start=20, current_max=10, expansion_end=1000)
    assert start_epoch_upper(0, sequential=True, **kw) == 10
    assert start_epoch_upper(500, sequential=True, **kw) == 15
    assert start_epoch_upper(999, sequential=True, **kw) == 19
    assert start_epoch_upper(1000, sequential=True, **kw) == 20
    assert start_epoch_upper(5000, sequential=True, **kw) == 20
    assert start_epoch_upper(0, sequential=False, **kw) == 20


def test_expert_logit_labels_average_the_right_experts():
    images = torch.zeros(2, 1, 1, 1)
    labels = torch.tensor([0, 1])
    right = lambda x: torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # noqa: E731 - both correct
    wrong = lambda x: torch.tensor([[0.0, 5.0], [0.0, 1.0]])  # noqa: E731 - first wrong, second right
    y = expert_logit_labels(images, labels, [right, wrong])
    torch.testing.assert_close(y[0], torch.tensor([2.0, 0.0]))  # only the right expert
    torch.testing.assert_close(y[1], torch.tensor([0.0, 2.0]))  # mean of both
    y_none = expert_logit_labels(images, torch.tensor([1, 0]), [lambda x: torch.tensor([[1.0, 0.0], [0.0, 1.0]])])
    torch.testing.assert_close(y_none, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # nobody right: all experts


def test_fyi_trains_every_image_beside_its_mirror():
    """With fyi=True each student step sees cat[x, flip(x)] with duplicated labels (batch 2b)."""
    seen = []

    def spy_forward(theta, x):
        seen.append(x.detach().clone())
        return _forward(theta, x)

    images, labels, theta0, target, _, _ = _problem(augment=False)
    plan = [InnerStep(torch.tensor([0, 3]), None)]
    x = images.clone().requires_grad_(True)
    alpha = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)
    unrolled_gradient(forward=spy_forward, theta0=theta0, theta_target=target, images=x, alpha=alpha,
                      targets_of=HardTargets(labels), plan=plan, fyi=True)
    batch = seen[0]
    assert batch.shape[0] == 4
    torch.testing.assert_close(batch[2:], images[[0, 3]].flip(-1))
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_constant_memory_mode_is_flat_in_syn_steps():
    """Saved-for-backward bytes: the unrolled graph grows with the number of student steps, TESLA's does not."""
    from dd_bench.tracking.autograd_memory import SavedTensorMeter

    peaks = {}
    for mode in ("unrolled", "tesla"):
        for steps in (2, 8):
            images, labels, theta0, target, dsa, plan = _problem(seed=0, steps=steps)
            with SavedTensorMeter() as meter:
                _grads(mode, images, labels, theta0, target, dsa, plan, alpha_value=0.1)
            peaks[mode, steps] = meter.peak_bytes
    assert peaks["unrolled", 8] >= 3 * peaks["unrolled", 2], peaks
    assert peaks["tesla", 8] <= 1.2 * peaks["tesla", 2], peaks
    assert peaks["tesla", 8] < peaks["unrolled", 8] / 3, peaks


def test_recompute_mode_is_the_exact_gradient():
    """The reverse sweep equals the unrolled gradient (images, lr and learned labels) up to rounding."""
    images, labels, theta0, target, dsa, plan = _problem(seed=4, steps=6)
    logits = torch.randn(len(labels), K, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    exact = _grads("unrolled", images, labels, theta0, target, dsa, plan, alpha_value=0.3, learned=logits)
    swept = _grads("recompute", images, labels, theta0, target, dsa, plan, alpha_value=0.3, learned=logits)
    assert swept[0] == pytest.approx(exact[0], rel=1e-12)
    for a, b in zip(exact[1:], swept[1:], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-8, atol=1e-12)


def test_recompute_mode_memory_is_flat_in_syn_steps():
    from dd_bench.tracking.autograd_memory import SavedTensorMeter

    peaks = {}
    for steps in (2, 8):
        images, labels, theta0, target, dsa, plan = _problem(seed=0, steps=steps)
        with SavedTensorMeter() as meter:
            _grads("recompute", images, labels, theta0, target, dsa, plan, alpha_value=0.1)
        peaks[steps] = meter.peak_bytes
    assert peaks[8] <= 1.2 * peaks[2], peaks
