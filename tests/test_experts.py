"""Experts: flat-parameter networks, GSAM, batched == sequential training, the cache, resume, replay buffers."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dd_bench.augment import DSA
from dd_bench.experts import (
    ExpertRecipe,
    ExpertTrajectories,
    FlatModel,
    ReplayBufferError,
    expert_flat_model,
    export_replay_buffers,
    get_experts,
    gsam_step,
    import_replay_buffers,
    init_expert_state,
    make_expert_augment,
    sgd_update,
    store,
    train_expert_epochs,
)
from dd_bench.models import create_model

TINY = {"width": 8}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: one intra-op thread is as fast, and immune to OpenMP barrier stalls (100x slower
    steps) when another process busies the second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(width: int = 8, depth: int = 3, seed: int = 0, **kw):
    torch.manual_seed(seed)  # tests only; library code never touches the global RNG
    return create_model("convnet", num_classes=10, in_channels=1, image_size=(8, 8), width=width, depth=depth, **kw)


# ----------------------------------------------------------------------------------------------- FlatModel


def test_flat_forward_matches_module_and_order() -> None:
    net = _net()
    flat = FlatModel(net)
    theta = flat.flatten(net)
    assert theta.dtype == torch.float32 and theta.shape == (flat.num_params,)
    assert list(flat.param_shapes) == [n for n, _ in net.named_parameters()]
    assert torch.equal(theta, torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    for (name, p), (name2, v) in zip(net.named_parameters(), flat.unflatten(theta).items(), strict=True):
        assert name == name2 and torch.equal(p.detach(), v)
    x = torch.randn(6, 1, 8, 8)
    torch.testing.assert_close(flat.forward(theta, x), net(x), rtol=1e-5, atol=1e-6)
    thetas = torch.stack([theta, flat.flatten(_net(seed=1))])  # (2, P)
    xs = torch.randn(2, 6, 1, 8, 8)
    out = flat.forward_batched(thetas, xs)
    assert out.shape == (2, 6, 10)
    for e in range(2):
        torch.testing.assert_close(out[e], flat.forward(thetas[e], xs[e]), rtol=1e-5, atol=1e-6)
    other = _net(seed=3)
    flat.load_into(other, theta)
    assert torch.equal(flat.flatten(other), theta)


def test_flat_model_rejects_batchnorm() -> None:
    net = create_model("convnet_bn", num_classes=10, in_channels=1, image_size=(8, 8), width=4)
    with pytest.raises(ValueError, match="without BatchNorm running statistics; use convnet"):
        FlatModel(net)


def test_double_backward_through_an_sgd_step_matches_finite_differences() -> None:
    """d/dx of the loss after one SGD step on x (what unrolled trajectory matching differentiates), float64."""
    net = _net(width=4, depth=2)
    flat = FlatModel(net)
    theta = flat.flatten(net).double()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    y, x_test, y_test = (torch.tensor([1, 3]), torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64),
                         torch.tensor([0, 1, 3]))

    def after_one_step(images: torch.Tensor) -> torch.Tensor:
        w = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(flat.forward(w, images), y), w, create_graph=True)
        return F.cross_entropy(flat.forward(w - 0.5 * grad, x_test), y_test)

    (dx,) = torch.autograd.grad(after_one_step(x), x)
    assert torch.isfinite(dx).all() and dx.abs().sum() > 0
    # Central differences along a few directions (a full gradcheck costs 2 evaluations per pixel).
    x0 = x.detach()
    directions = [torch.randn(x.shape, generator=g, dtype=torch.float64) for _ in range(3)]
    directions.append(torch.zeros_like(x0).index_put_((torch.tensor(1), torch.tensor(0), torch.tensor(4),
                                                       torch.tensor(3)), torch.tensor(1.0, dtype=torch.float64)))
    eps = 1e-6
    for v in directions:
        numeric = (after_one_step(x0 + eps * v) - after_one_step(x0 - eps * v)) / (2 * eps)
        torch.testing.assert_close(numeric, (dx * v).sum(), rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------------------------------------------ GSAM


def _reference_gsam(params, loss_of, *, rho, alpha, adaptive, optimizer, eps=1e-12):
    """FTD's buffer/gsam/gsam.py written out per layer, as the official code does it, with torch.optim.SGD."""
    for p in params:
        p.grad = None
    loss_of(params).backward()
    old_g = [p.grad.clone() for p in params]
    with torch.no_grad():
        norm = torch.stack([((p.abs() if adaptive else 1.0) * p.grad).norm() for p in params]).norm()
        scale = rho / (norm + eps)
        e_ws = []
        for p in params:
            e_w = p.grad * scale
            if adaptive:
                e_w *= p.pow(2)
            p.add_(e_w)
            e_ws.append(e_w)
    for p in params:
        p.grad = None
    loss_of(params).backward()
    with torch.no_grad():
        inner = sum((o * p.grad).sum() for o, p in zip(old_g, params, strict=True))
        new_norm = torch.stack([p.grad.norm() for p in params]).norm()
        old_norm = torch.stack([o.norm() for o in old_g]).norm()
        cosine = inner / (new_norm * old_norm + eps)
        for p, o in zip(params, old_g, strict=True):
            vertical = o - cosine * old_norm * p.grad / (new_norm + eps)
            p.grad.add_(vertical, alpha=-alpha)
        for p, e_w in zip(params, e_ws, strict=True):
            p.sub_(e_w)
    optimizer.step()


@pytest.mark.parametrize("adaptive", [True, False])
def test_gsam_step_matches_reference(adaptive: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)
    weight, bias = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)

    def loss_of(layers):  # softmax regression with two "layers"
        return F.cross_entropy(x @ layers[0].T + layers[1], y)

    ref = [weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)]
    sgd = torch.optim.SGD(ref, lr=0.1, momentum=0.9, weight_decay=1e-3)
    w, buf = torch.cat([weight.reshape(-1), bias]), None

    def flat_loss(v: torch.Tensor) -> torch.Tensor:
        return loss_of([v[:12].view(3, 4), v[12:]])

    for _ in range(3):
        _reference_gsam(ref, loss_of, rho=0.05, alpha=0.3, adaptive=adaptive, optimizer=sgd)
        w, buf, _ = gsam_step(w, flat_loss, lr=0.1, rho=0.05, alpha=0.3, adaptive=adaptive, momentum=0.9,
                              weight_decay=1e-3, momentum_buffer=buf)
    torch.testing.assert_close(w, torch.cat([ref[0].detach().reshape(-1), ref[1].detach()]), rtol=1e-10, atol=1e-12)

    # Stacked (E, P) with a summed loss takes each row's own step (per-row norms).
    w2 = torch.stack([w, w.flip(0)])
    stacked, _, _ = gsam_step(w2, lambda v: flat_loss(v[0]) + flat_loss(v[1]), lr=0.1, rho=0.05, alpha=0.3,
                              adaptive=adaptive)
    for e in range(2):
        single, _, _ = gsam_step(w2[e], flat_loss, lr=0.1, rho=0.05, alpha=0.3, adaptive=adaptive)
        torch.testing.assert_close(stacked[e], single, rtol=1e-12, atol=1e-12)


def test_sgd_update_matches_torch_sgd() -> None:
    p = torch.randn(10, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.5, weight_decay=0.01)
    w, buf = p.detach().clone(), None
    for k in range(3):
        d = torch.full((10,), float(k + 1), dtype=torch.float64).sin()
        p.grad = d.clone()
        opt.step()
        w, buf = sgd_update(w, d, lr=0.05, momentum=0.5, weight_decay=0.01, momentum_buffer=buf)
    torch.testing.assert_close(w, p.detach(), rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("optimizer", ["sgd", "gsam"])
def test_batched_equals_sequential(digits, optimizer: str) -> None:
    recipe = ExpertRecipe(model_kwargs=TINY, epochs=1, optimizer=optimizer, momentum=0.9)
    flat = expert_flat_model(digits, recipe)
    results = {}
    for batched in (True, False):
        states = [init_expert_state(digits, recipe, i, flat=flat) for i in range(3)]
        train_expert_epochs(states, real=digits, recipe=recipe, flat=flat, batched=batched, max_steps=3)
        results[batched] = torch.stack([s.theta for s in states])
    assert not torch.equal(results[True][0], results[True][1])  # distinct experts
    assert (results[True] - torch.stack([s.snapshots[0] for s in states])).abs().max() > 1e-4  # they moved
    torch.testing.assert_close(results[True], results[False], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("optimizer,momentum", [("sgd", 0.0), ("sgd", 0.9), ("gsam", 0.9)])
def test_shared_loop_trains_the_flat_reference_trajectory(digits, optimizer: str, momentum: float) -> None:
    """The experts run the shared training loop's step; a hand-written flat-vector loop (MTT's buffer.py order:
    reshuffle, DSA per batch, step) with the pure GSAM/SGD functions gives the same trajectory, bit for bit."""
    from dd_bench.experts.gsam import gradient

    recipe = ExpertRecipe(model_kwargs=TINY, epochs=2, optimizer=optimizer, momentum=momentum, weight_decay=5e-4)
    flat = expert_flat_model(digits, recipe)
    (state,) = train_expert_epochs([init_expert_state(digits, recipe, 0, flat=flat)], real=digits, recipe=recipe,
                                   flat=flat, batched=False)
    ref = init_expert_state(digits, recipe, 0, flat=flat)
    augment, w, buf = make_expert_augment(digits, recipe), ref.theta, None
    for _ in range(recipe.epochs):
        perm = torch.randperm(len(digits.train_labels), generator=ref.data_gen)
        for start in range(0, len(perm), recipe.batch_size):
            idx = perm[start:start + recipe.batch_size]
            x = augment.apply(digits.to_model_space(digits.train_images[idx]),
                              augment.sample_params(len(idx), generator=ref.aug_gen))

            def loss_fn(theta: torch.Tensor, x: torch.Tensor = x, idx: torch.Tensor = idx) -> torch.Tensor:
                return F.cross_entropy(flat.forward(theta, x), digits.train_labels[idx])

            if optimizer == "gsam":
                w, buf, _ = gsam_step(w, loss_fn, lr=recipe.lr, rho=recipe.rho, alpha=recipe.alpha,
                                      adaptive=recipe.adaptive, momentum=momentum,
                                      weight_decay=recipe.weight_decay, momentum_buffer=buf)
            else:
                w, buf = sgd_update(w, gradient(w, loss_fn)[0], lr=recipe.lr, momentum=momentum,
                                    weight_decay=recipe.weight_decay, momentum_buffer=buf)
        ref.snapshots.append(w.clone())
    assert torch.equal(torch.stack(state.snapshots), torch.stack(ref.snapshots))
    assert not torch.equal(state.snapshots[0], state.snapshots[-1])


def test_get_experts_caches_and_grows(digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = ExpertRecipe(model_kwargs=TINY, epochs=2)
    first = get_experts(digits, recipe, num_experts=1, cache_dir=tmp_path, progress=False)
    assert first.params.shape == (1, 3, first.num_params) and first.source == "trained"
    assert not torch.equal(first.params[0, 0], first.params[0, 2])

    trained: list[int] = []
    real_train = store.train_expert_epochs

    def spy(states, **kw):
        trained.extend(s.index for s in states)
        return real_train(states, **kw)

    monkeypatch.setattr(store, "train_expert_epochs", spy)
    grown = get_experts(digits, recipe, num_experts=3, cache_dir=tmp_path, progress=False)
    assert trained == [1, 2] and grown.params.shape[0] == 3
    assert torch.equal(grown.params[0], first.params[0])

    def refuse(*args, **kw):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(store, "train_expert_epochs", refuse)
    again = get_experts(digits, recipe, num_experts=3, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.params, grown.params) and again.key == grown.key
    meta = (tmp_path / "experts" / again.key / "meta.json").read_text()
    assert '"num_params"' in meta and '"0"' in meta and '"2"' in meta
    # A snapshot is the network: the flat forward equals the template module holding those parameters.
    flat, x = again.flat_model(), digits.to_model_space(digits.test_images[:16])
    module = flat.load_into(again.template(), again.params[1, -1])
    torch.testing.assert_close(flat.forward(again.params[1, -1], x), module(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batched", [False, True])
def test_interrupted_run_resumes_to_the_same_trajectories(digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          batched: bool) -> None:
    recipe = ExpertRecipe(model_kwargs=TINY, epochs=3, optimizer="gsam", momentum=0.9)
    kw = {"num_experts": 2, "progress": False, "batched": batched}
    reference = get_experts(digits, recipe, cache_dir=tmp_path / "uninterrupted", **kw)

    real_save = store._save_epoch
    calls = []

    def crash_after_saving(root, state, key):
        real_save(root, state, key)
        calls.append(state.index)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(store, "_save_epoch", crash_after_saving)
    with pytest.raises(KeyboardInterrupt):
        get_experts(digits, recipe, cache_dir=tmp_path / "resumed", **kw)
    monkeypatch.setattr(store, "_save_epoch", real_save)

    fresh = []
    real_init = store.init_expert_state
    monkeypatch.setattr(store, "init_expert_state", lambda *a, **k: fresh.append(a[2]) or real_init(*a, **k))
    resumed = get_experts(digits, recipe, cache_dir=tmp_path / "resumed", **kw)
    assert fresh == []  # every expert continued from its checkpoint or its finished file
    if batched:  # the crash split the vmap group (expert 0 at epoch 2, expert 1 at epoch 1): E=1 vs E=2 rounding
        torch.testing.assert_close(resumed.params, reference.params, rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(resumed.params, reference.params)
    assert not (tmp_path / "resumed" / "experts" / resumed.key / "partial" / "expert_0001").exists()


# -------------------------------------------------------------------------------------------- replay buffers


class _NotATensor:
    """Module level so that pickle can store it; weights_only loading must refuse it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def _tiny_experts(digits, tmp_path: Path, n: int = 3) -> ExpertTrajectories:
    return get_experts(digits, ExpertRecipe(model_kwargs=TINY, epochs=2), num_experts=n, cache_dir=tmp_path,
                       progress=False)


def test_replay_buffer_round_trip(digits, tmp_path: Path) -> None:
    experts = _tiny_experts(digits, tmp_path / "cache")
    paths = export_replay_buffers(experts, tmp_path / "buffers", per_file=2)
    assert [p.name for p in paths] == ["replay_buffer_0.pt", "replay_buffer_1.pt"]
    raw = torch.load(paths[0], weights_only=True)  # the official layout: [expert][epoch][layer] tensors
    template = experts.template()
    assert len(raw) == 2 and len(raw[0]) == 3
    assert [tuple(t.shape) for t in raw[0][0]] == [tuple(p.shape) for p in template.parameters()]
    back = import_replay_buffers(paths, model="convnet", num_classes=10, in_channels=1, image_size=(8, 8),
                                 model_kwargs=TINY)
    assert back.source == "imported" and back.recipe is None
    assert torch.equal(back.params, experts.params)
    assert back.flat_model().num_params == experts.num_params
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_replay_buffers(experts, tmp_path / "buffers")
    assert len(export_replay_buffers(experts, tmp_path / "buffers", overwrite=True)) == 1


def test_replay_buffer_rejects_unsafe_and_mismatched_files(digits, tmp_path: Path) -> None:
    unsafe = tmp_path / "replay_buffer_0.pt"
    torch.save([[[_NotATensor()]]], unsafe)
    kw = {"model": "convnet", "num_classes": 10, "in_channels": 1, "image_size": (8, 8), "model_kwargs": TINY}
    with pytest.raises(ReplayBufferError, match=r"replay_buffer_0\.pt: refused to load.*weights_only=True"):
        import_replay_buffers([unsafe], **kw)

    experts = _tiny_experts(digits, tmp_path / "cache", n=1)
    paths = export_replay_buffers(experts, tmp_path / "buffers")
    with pytest.raises(ReplayBufferError, match=r"replay_buffer_0\.pt: expert 0, epoch 0, layer 'features\.0\.weight': "
                                                r"expected shape \(4, 1, 3, 3\), got \(8, 1, 3, 3\)"):
        import_replay_buffers(paths, **{**kw, "model_kwargs": {"width": 4}})
    broken = tmp_path / "broken.pt"
    torch.save([[[torch.zeros(3)]]], broken)
    with pytest.raises(ReplayBufferError,
                       match="expert 0, epoch 0: expected a list of 14 parameter tensors; got 1 tensors"):
        import_replay_buffers([broken], **kw)
    # buffer.py's p.detach().cpu() on a CPU: every snapshot aliases the final weights (issue 21's trap).
    aliased = tmp_path / "replay_buffer_aliased.pt"
    final = [t.clone() for t in torch.load(paths[0], weights_only=True)[0][-1]]
    torch.save([[final, final, final]], aliased)
    with pytest.raises(ReplayBufferError, match=r"replay_buffer_aliased\.pt: expert 0: all 3 epoch snapshots are "
                                                r"identical .*copying \.cpu\(\)"):
        import_replay_buffers([aliased], **kw)


# ----------------------------------------------------------------------------------------------------- recipe


def test_recipe_key_covers_every_field_and_the_data(digits) -> None:
    base = ExpertRecipe(model_kwargs=TINY, epochs=2)
    key = base.key(digits)
    assert key == ExpertRecipe(model_kwargs=dict(TINY), epochs=2).key(digits)
    changes = {"model": "mlp", "model_kwargs": {"width": 16}, "epochs": 3, "optimizer": "gsam", "lr": 0.02,
               "momentum": 0.5, "weight_decay": 1e-4, "batch_size": 128, "rho": 0.05, "alpha": 0.4,
               "adaptive": False, "augment": "none", "seed": 1}
    assert set(changes) == {f.name for f in dataclasses.fields(ExpertRecipe)}
    keys = {name: dataclasses.replace(base, **{name: value}).key(digits) for name, value in changes.items()}
    assert key not in keys.values() and len(set(keys.values())) == len(changes)
    images = digits.train_images.clone()
    images[0, 0, 0, 0] ^= 1
    assert base.key(dataclasses.replace(digits, train_images=images)) != key
    assert ExpertRecipe.from_dict(base.to_dict()) == base


@pytest.mark.parametrize("bad, match", [
    ({"optimizer": "adam"}, "Unknown expert optimizer 'adam'; available: gsam, sgd"),
    ({"augment": "flip"}, "Unknown expert augment 'flip'; available: dsa, dsa_fyi, none"),
    ({"model": "convnet9"}, "Unknown expert model 'convnet9'; available: .*convnet"),
    ({"epochs": 0}, r"ExpertRecipe.epochs must be an int >= 1; got 0"),
    ({"lr": -1.0}, "ExpertRecipe.lr must be a number > 0"),
    ({"momentum": 1.0}, r"momentum must be a number in \[0, 1\)"),
    ({"optimizer": "gsam", "rho": 0.0}, "rho must be a number, > 0 for optimizer 'gsam'"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
    ({"model_kwargs": {"width": [8]}}, r"model_kwargs\['width'\] must be a JSON scalar"),
])
def test_bad_recipe_values_fail_clearly(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ExpertRecipe(**bad)


def test_get_experts_rejects_batchnorm_before_training(digits, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BatchNorm"):
        get_experts(digits, ExpertRecipe(model="convnet_bn", model_kwargs=TINY, epochs=1), num_experts=1,
                    cache_dir=tmp_path, progress=False)


def test_expert_augment_choices(digits) -> None:
    assert make_expert_augment(digits, ExpertRecipe(augment="none")).sample_params(4, generator=torch.Generator()) == {}
    dsa = make_expert_augment(digits, ExpertRecipe())
    assert isinstance(dsa, DSA) and dsa.strategy == digits.dsa_strategy
    if "fyi" not in inspect.signature(DSA).parameters:
        pytest.skip("DSA(fyi=True) is not in dd_bench/augment/dsa.py yet")
    with_flip = dataclasses.replace(digits, dsa_strategy="color_crop_flip")
    fyi = make_expert_augment(with_flip, ExpertRecipe(augment="dsa_fyi"))
    assert fyi.fyi and "flip" in fyi.sample_params(4, generator=torch.Generator().manual_seed(0))
