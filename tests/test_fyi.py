"""FYI (Flip Your Images): DSA(fyi=True) = flip p=0.5 on every call, then one non-flip family (FYI's modified
DiffAugment, cvlab-yonsei/FYI MTT/utils.py); flip_concat = FYI's BatchAug; the mtt-fyi evaluation protocol."""

from __future__ import annotations

import math

import pytest
import torch

from dd_bench.augment import DSA, flip_concat
from dd_bench.augment import dsa as dsa_module
from dd_bench.data import RealData
from dd_bench.eval import custom_protocol, evaluate, get_protocol
from dd_bench.eval.mtt import make_augment
from dd_bench.methods import create_method

FULL = "color_crop_cutout_flip_scale_rotate"
NO_FLIP = "color_crop_cutout_scale_rotate"
N_CALLS = 6000  # calls for the frequency tests: the std of a frequency near 0.2-0.5 is then <= 0.0065


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fyi_dsa(strategy: str = FULL, size: int = 8, **kw) -> DSA:
    return DSA(strategy, image_size=size, fyi=True, **kw)


# ---------------------------------------------------------------- construction, params, description


def test_fyi_draws_from_the_non_flip_families() -> None:
    dsa = fyi_dsa()
    assert dsa.fyi and dsa.families == ("color", "crop", "cutout", "scale", "rotate")
    assert not DSA(FULL, image_size=8).fyi and DSA(FULL, image_size=8).families[3] == "flip"
    assert repr(dsa) == f"DSA({FULL!r}, image_size=(8, 8), fyi=True)"
    assert repr(DSA(FULL, image_size=8)) == f"DSA({FULL!r}, image_size=(8, 8))"
    info = dsa.describe()
    assert info["variant"] == "fyi" and info["always_flip"] and "flip p=0.5" in info["summary"]
    assert DSA(FULL, image_size=8).describe()["variant"] == "dsa"


@pytest.mark.parametrize("strategy", [NO_FLIP, "crop", "color_scale"])
def test_fyi_without_flip_in_strategy_raises(strategy: str) -> None:
    with pytest.raises(ValueError) as err:
        fyi_dsa(strategy)
    msg = str(err.value)
    assert "fyi=True" in msg and "excludes 'flip'" in msg and repr(strategy) in msg and "digits" in msg


def test_fyi_flip_alone_raises() -> None:
    with pytest.raises(ValueError, match="besides 'flip'"):
        fyi_dsa("flip")


@pytest.mark.parametrize("same_on_batch", [False, True])
def test_params_uniform_and_flip_always_present(same_on_batch: bool) -> None:
    dsa = fyi_dsa(size=32)
    m = 1 if same_on_batch else 7
    keys = None
    for seed in range(30):  # whatever family is drawn, the key set is the same (cat_params needs that)
        p = dsa.sample_params(7, generator=gen(seed), same_on_batch=same_on_batch)
        keys = keys or set(p)
        assert set(p) == keys
        assert all(v.shape[0] == m for v in p.values())
        assert p["flip"].dtype == torch.bool
        assert 0 <= int(p["family"][0]) < 5
    assert keys == {"family", "flip", "brightness", "saturation", "contrast", "crop_shift", "cutout_center", "scale",
                    "rotate"}


# ---------------------------------------------------------------- semantics: flip first, then one family


def _expected(dsa: DSA, x: torch.Tensor, p: dict) -> torch.Tensor:
    """FYI's DiffAugment by hand: per-sample flip, then the drawn family alone (as a single-family plain DSA)."""
    flipped = torch.where(p["flip"].view(-1, 1, 1, 1), x.flip(3), x)
    family = dsa.families[int(p["family"][0])]
    single = DSA(family, image_size=x.shape[-1])
    return single.apply(flipped, p | {"family": torch.zeros_like(p["family"])})


def test_apply_flips_then_applies_the_drawn_family() -> None:
    dsa = fyi_dsa()
    x = torch.rand(6, 3, 8, 8)
    seen = set()
    for seed in range(40):
        p = dsa.sample_params(6, generator=gen(seed))
        seen.add(int(p["family"][0]))
        torch.testing.assert_close(dsa.apply(x, p), _expected(dsa, x, p))
    assert seen == set(range(5))


def test_flip_is_applied_before_the_family() -> None:
    """Crop does not commute with the flip: flipping first is what FYI's DiffAugment does."""
    dsa = fyi_dsa()
    x = torch.rand(1, 1, 8, 8) + 1.0
    p = {k: v[:1] for k, v in dsa.sample_params(1, generator=gen()).items()}
    p |= {"family": torch.tensor([dsa.families.index("crop")]), "flip": torch.tensor([True]),
          "crop_shift": torch.tensor([[0, 1]])}
    out = dsa.apply(x, p)
    assert torch.equal(out[..., :-1], x.flip(3)[..., 1:]) and (out[..., -1] == 0).all()  # flip, then shift left
    crop_then_flip = DSA("crop", image_size=8).apply(x, {"family": torch.tensor([0]), "crop_shift": p["crop_shift"]})
    assert not torch.equal(out, crop_then_flip.flip(3))


def test_flip_frequency_every_call_and_independent_of_family() -> None:
    dsa = fyi_dsa()
    g = gen(11)
    params = [dsa.sample_params(4, generator=g) for _ in range(N_CALLS)]
    family = torch.stack([p["family"][0] for p in params])  # (calls,)
    flips = torch.stack([p["flip"] for p in params]).double()  # (calls, 4): every call carries a flip draw
    assert abs(flips.mean() - 0.5) < 0.01  # per sample p = 0.5 (not 0.5 / 6 as in plain DSA)
    per_sample = flips.mean(0)
    assert (per_sample - 0.5).abs().max() < 0.03  # every batch position, not only the first
    assert abs(torch.corrcoef(flips.T)[0, 1]) < 0.05  # drawn per sample, not per batch
    for f in range(5):  # flip rate conditional on each family: independent of the draw
        assert abs(flips[family == f].mean() - 0.5) < 0.03


def test_siamese_flip_is_one_draw_per_batch() -> None:
    dsa = fyi_dsa()
    g = gen(3)
    flips = torch.cat([dsa.sample_params(9, generator=g, same_on_batch=True)["flip"] for _ in range(N_CALLS)])
    assert flips.shape == (N_CALLS,)  # (1,) per call, broadcast over the batch (FYI's batchmode randf[:] = randf[0])
    assert abs(flips.double().mean() - 0.5) < 0.025


def test_family_frequencies_uniform_over_non_flip_families() -> None:
    dsa = fyi_dsa()
    g = gen(12)
    family = torch.cat([dsa.sample_params(2, generator=g)["family"][:1] for _ in range(N_CALLS)])
    freq = torch.bincount(family, minlength=5).double() / N_CALLS
    assert len(freq) == 5 and (freq - 0.2).abs().max() < 6 * math.sqrt(0.2 * 0.8 / N_CALLS)


def test_realised_flip_rate_is_one_half() -> None:
    """On images, not params: an asymmetric image is mirrored in ~half the outputs under a color-only strategy."""
    dsa = fyi_dsa("color_flip", size=4)
    x = torch.zeros(4000, 1, 4, 4)
    x[..., 0] = 1.0  # left column bright; saturation is the identity on 1 channel, contrast keeps the order
    p = dsa.sample_params(len(x), generator=gen(5))
    p["brightness"] = torch.zeros_like(p["brightness"])
    out = dsa.apply(x, p)
    mirrored = out[..., -1, 0, -1] > out[..., -1, 0, 0]
    assert abs(mirrored.double().mean() - 0.5) < 0.03 and torch.equal(mirrored.flatten(), p["flip"])


# ---------------------------------------------------------------- replay, Siamese, cat_params, gradcheck, RNG


def test_replay_and_determinism() -> None:
    dsa = fyi_dsa()
    x = torch.rand(5, 3, 8, 8)
    p = dsa.sample_params(5, generator=gen(7))
    assert torch.equal(dsa.apply(x, p), dsa.apply(x, p))
    assert torch.equal(dsa(x, generator=gen(7)), dsa.apply(x, p))


def test_siamese_same_on_batch_broadcasts() -> None:
    dsa = fyi_dsa()
    a, b = torch.rand(5, 3, 8, 8), torch.rand(3, 3, 8, 8)
    for seed in range(10):
        p = dsa.sample_params(1, generator=gen(seed), same_on_batch=True)
        assert all(v.shape[0] == 1 for v in p.values())
        joint = dsa.apply(torch.cat([a, b]), p)
        torch.testing.assert_close(joint, torch.cat([dsa.apply(a, p), dsa.apply(b, p)]))
        torch.testing.assert_close(dsa.apply(a, p), dsa.apply(a, DSA.cat_params([p], [5])))


def test_cat_params_of_several_calls_equal_separate_calls() -> None:
    dsa = fyi_dsa()
    xs = [torch.rand(n, 3, 8, 8) for n in (3, 1, 4, 2, 5)]
    ps = [dsa.sample_params(len(x), generator=gen(i)) for i, x in enumerate(xs)]
    for i, p in enumerate(ps):  # every family once, so the grouped path is exercised
        p["family"] = torch.full_like(p["family"], i)
    ps[1] = dsa.sample_params(1, generator=gen(99), same_on_batch=True)
    cat = DSA.cat_params(ps, [len(x) for x in xs])
    expected = torch.cat([dsa.apply(x, p) for x, p in zip(xs, ps, strict=True)])
    torch.testing.assert_close(dsa.apply(torch.cat(xs), cat), expected)
    perm = torch.randperm(len(expected), generator=gen())
    torch.testing.assert_close(dsa.apply(torch.cat(xs)[perm], {k: v[perm] for k, v in cat.items()}), expected[perm])


def test_apply_rejects_a_flip_mask_of_the_wrong_length() -> None:
    dsa = fyi_dsa()
    p = dsa.sample_params(1, generator=gen(), same_on_batch=True)
    p["flip"] = torch.tensor([True, False, True])
    with pytest.raises(ValueError, match="flip params are for 3 samples"):
        dsa.apply(torch.rand(4, 3, 8, 8), p)


@pytest.mark.parametrize("family", range(5))
def test_gradcheck(family: int) -> None:
    dsa = DSA(FULL, image_size=5, fyi=True)
    p = dsa.sample_params(3, generator=gen(family))
    p["family"] = torch.full_like(p["family"], family)
    p["flip"] = torch.tensor([True, False, True])
    x = torch.rand(3, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


def test_gradcheck_mixed_families() -> None:
    dsa = DSA(FULL, image_size=5, fyi=True)
    p = dsa.sample_params(5, generator=gen())
    p["family"] = torch.tensor([4, 0, 3, 1, 2])
    x = torch.rand(5, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


def test_global_rng_untouched() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    dsa = fyi_dsa()
    x = torch.rand(4, 3, 8, 8, generator=gen(9))
    for seed in range(20):
        g = gen(seed)
        dsa.apply(x, dsa.sample_params(4, generator=g, same_on_batch=True))
        dsa(x, generator=g)
    assert torch.equal(torch.get_rng_state(), state)


def test_plain_dsa_draws_unchanged_by_the_feature() -> None:
    """fyi=False keeps the flip inside the draw: 6 families, flip key only from the strategy loop."""
    dsa = DSA(FULL, image_size=8)
    g = gen(11)
    family = torch.cat([dsa.sample_params(1, generator=g)["family"] for _ in range(N_CALLS)])
    assert set(family.tolist()) == set(range(6))


# ---------------------------------------------------------------- flip_concat (FYI's BatchAug)


@pytest.mark.parametrize("soft", [False, True])
def test_flip_concat_shapes_mirror_and_labels(soft: bool) -> None:
    x = torch.rand(4, 3, 5, 7)
    y = torch.rand(4, 10) if soft else torch.tensor([0, 3, 3, 9])
    xx, yy = flip_concat(x, y)
    assert xx.shape == (8, 3, 5, 7) and yy.shape == (8, *y.shape[1:])
    assert torch.equal(xx[:4], x) and torch.equal(xx[4:], x.flip(-1))
    assert torch.equal(xx[4:, ..., 0], x[..., -1])  # column 0 of the mirror is the last column of the image
    assert torch.equal(yy[:4], y) and torch.equal(yy[4:], y)


def test_flip_concat_gradient_from_both_copies() -> None:
    x = torch.rand(2, 1, 3, 4, requires_grad=True)
    w = torch.rand(4, 1, 3, 4)  # a distinct weight for every output position
    xx, _ = flip_concat(x, torch.tensor([1, 2]))
    (xx * w).sum().backward()
    # pixel (i, j) is at (i, j) in the copy and at (i, W-1-j) in the mirror: it collects both weights
    torch.testing.assert_close(x.grad, w[:2] + w[2:].flip(-1))
    xd = torch.rand(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: flip_concat(t, torch.zeros(2, dtype=torch.long))[0], (xd,))


def test_flip_concat_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="B, C, H, W"):
        flip_concat(torch.rand(3, 8, 8), torch.zeros(3))
    with pytest.raises(ValueError, match="B = 2"):
        flip_concat(torch.rand(2, 1, 8, 8), torch.zeros(3))


# ---------------------------------------------------------------- the mtt-fyi protocol and the evaluator


def test_mtt_fyi_protocol_fields() -> None:
    p, mtt = get_protocol("mtt-fyi"), get_protocol("mtt")
    assert p.name == "mtt-fyi" and p.version == 1 and p.augment == "dsa_fyi" and not p.ranked
    assert "FYI" in p.description and "flip p=0.5" in p.description
    same = ("epochs", "batch_size", "lr", "use_learned_lr", "momentum", "weight_decay", "decay_factor",
            "soft_label_loss", "test_batch_size")
    assert all(getattr(p, f) == getattr(mtt, f) for f in same)
    assert (p.passes, p.decay_epoch) == (1001, 501)
    assert custom_protocol("mtt-fyi", epochs=3).augment == "dsa_fyi"


def tiny_cifar(strategy: str = FULL) -> RealData:
    """A CIFAR-like random dataset: 3x8x8 uint8 images, 2 classes, a DSA strategy with flip."""
    g = gen(0)
    return RealData(
        name="tiny_cifar", train_images=torch.randint(0, 256, (20, 3, 8, 8), dtype=torch.uint8, generator=g),
        train_labels=torch.arange(20) % 2, test_images=torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8,
                                                                     generator=g),
        test_labels=torch.arange(10) % 2, class_names=["a", "b"], mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
        dsa_strategy=strategy)


def test_make_augment_builds_the_fyi_dsa() -> None:
    aug = make_augment(tiny_cifar(), get_protocol("mtt-fyi"))
    assert isinstance(aug, DSA) and aug.fyi and aug.strategy == FULL and aug.image_size == (8, 8)
    plain = make_augment(tiny_cifar(), get_protocol("mtt"))
    assert isinstance(plain, DSA) and not plain.fyi


def test_evaluate_mtt_fyi_trains_with_the_fyi_dsa(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tiny_cifar()
    synset = create_method("random").distill(real, ipc=2, seed=0, progress=False)
    built: list[DSA] = []
    applied: list[dict] = []
    original_init, original_apply = DSA.__init__, DSA.apply

    def spy_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        built.append(self)

    def spy_apply(self, x, params):
        applied.append(params)
        return original_apply(self, x, params)

    monkeypatch.setattr(dsa_module.DSA, "__init__", spy_init)
    monkeypatch.setattr(dsa_module.DSA, "apply", spy_apply)
    protocol = custom_protocol("mtt-fyi", epochs=2)
    (res,) = evaluate(synset, real=real, protocol=protocol, models=["mlp"], seeds=[0], progress=False)
    assert res.protocol == "mtt-fyi+custom" and len(res.accuracies) == 1
    assert len(built) == 1 and built[0].fyi and built[0].strategy == FULL
    assert len(applied) == protocol.passes and all("flip" in p and 0 <= int(p["family"][0]) < 5 for p in applied)


def test_mtt_fyi_on_a_dataset_without_flip_fails_clearly(digits) -> None:
    synset = create_method("random").distill(digits, ipc=1, seed=0, progress=False)
    with pytest.raises(ValueError) as err:
        evaluate(synset, real=digits, protocol=get_protocol("mtt-fyi"), models=["mlp"], seeds=[0], progress=False)
    msg = str(err.value)
    assert "mtt-fyi" in msg and "'digits'" in msg and "excludes 'flip'" in msg
