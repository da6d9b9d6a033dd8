"""Augmentation tests: kornia-style checklist (smoke, exception, cardinality, feature, gradcheck) per DSA family
and per registry entry, plus the DD-specific checks (replay, Siamese, RNG hygiene) and distribution checks of
the sampled params against DSA's reference definitions (``ParamDiffAug`` / ``rand_*`` in DSA/MTT utils.py)."""

from __future__ import annotations

import math

import pytest
import torch

from dd_bench.augment import (
    ALIGN_CORNERS,
    AUGMENTATIONS,
    DSA,
    FAMILIES,
    NoAugmentation,
    adjust_color,
    batch_crop,
    cutout,
    hflip,
)

N_DIST = 20000  # samples for the distribution tests: the std of a U(0,1) mean is then ~0.002


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def params_of(dsa: DSA, family: str, n: int, *, seed: int = 0, same_on_batch: bool = False) -> dict:
    """Params of one call with the family choice forced to ``family``."""
    p = dsa.sample_params(n, generator=gen(seed), same_on_batch=same_on_batch)
    p["family"] = torch.full_like(p["family"], dsa.families.index(family))
    return p


# ---------------------------------------------------------------- smoke / exception / cardinality


@pytest.mark.parametrize("name", AUGMENTATIONS.list())
def test_registry_smoke(name: str) -> None:
    aug = AUGMENTATIONS.create(name, image_size=8)
    x = torch.rand(4, 3, 8, 8)
    y = aug(x, generator=gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    p = aug.sample_params(4, generator=gen(), same_on_batch=True)
    assert torch.equal(aug.apply(x, p), aug.apply(x, p))


def test_registry_names() -> None:
    assert AUGMENTATIONS.list() == ["dsa", "none"]
    assert isinstance(AUGMENTATIONS.create("dsa", image_size=32), DSA)


@pytest.mark.parametrize("aug", [NoAugmentation(image_size=8), DSA("none", image_size=8)], ids=["registry", "dsa"])
def test_none_is_identity_and_draws_nothing(aug) -> None:
    g = gen()
    state = g.get_state()
    x = torch.rand(3, 1, 8, 8)
    assert aug.sample_params(3, generator=g) == {}
    assert aug.apply(x, {}) is x and aug(x, generator=g) is x
    assert torch.equal(g.get_state(), state)
    assert aug.families == ()


@pytest.mark.parametrize("family", FAMILIES)
def test_smoke(family: str) -> None:
    y = DSA(family, image_size=8)(torch.rand(4, 3, 8, 8), generator=gen())
    assert y.shape == (4, 3, 8, 8) and torch.isfinite(y).all()


BAD_STRATEGIES = [("colour", "colour"), ("", ""), ("color_crop_zoom", "zoom"), ("None", "None")]


@pytest.mark.parametrize("strategy, bad", BAD_STRATEGIES)
def test_bad_strategy_names_value_and_options(strategy: str, bad: str) -> None:
    with pytest.raises(ValueError) as err:
        DSA(strategy, image_size=8)
    msg = str(err.value)
    assert repr(bad) in msg and all(f in msg for f in FAMILIES)


def test_exceptions() -> None:
    with pytest.raises(ValueError, match="repeats"):
        DSA("flip_flip", image_size=8)
    with pytest.raises(ValueError, match="prob_flip"):
        DSA(image_size=8, prob_flip=1.5)
    dsa = DSA(image_size=8)
    p = dsa.sample_params(4, generator=gen())
    with pytest.raises(ValueError, match="image_size"):
        dsa.apply(torch.rand(4, 3, 16, 16), p)
    with pytest.raises(ValueError, match="4 samples"):
        dsa.apply(torch.rand(5, 3, 8, 8), p)
    with pytest.raises(TypeError):
        dsa.apply(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), p)
    with pytest.raises(ValueError, match="leading dimension"):
        DSA.cat_params([p], [3])


EXPECTED_KEYS = {
    "color": {"brightness": ((), torch.float32), "saturation": ((), torch.float32), "contrast": ((), torch.float32)},
    "crop": {"crop_shift": ((2,), torch.int64)},
    "cutout": {"cutout_center": ((2,), torch.int64)},
    "flip": {"flip": ((), torch.bool)},
    "scale": {"scale": ((2,), torch.float32)},
    "rotate": {"rotate": ((), torch.float32)},
}


@pytest.mark.parametrize("same_on_batch", [False, True])
def test_param_cardinality(same_on_batch: bool) -> None:
    dsa = DSA(image_size=32)
    p = dsa.sample_params(7, generator=gen(), same_on_batch=same_on_batch)
    m = 1 if same_on_batch else 7
    expected = {"family": ((), torch.int64)} | {k: v for fam in EXPECTED_KEYS.values() for k, v in fam.items()}
    assert set(p) == set(expected)
    for key, (tail, dtype) in expected.items():
        assert p[key].shape == (m, *tail) and p[key].dtype == dtype, key
    assert (p["family"] == p["family"][0]).all()  # mode 'S': one family per call


@pytest.mark.parametrize("family", FAMILIES)
def test_param_keys_only_of_strategy(family: str) -> None:
    p = DSA(family, image_size=8).sample_params(3, generator=gen())
    assert set(p) == {"family"} | set(EXPECTED_KEYS[family])
    assert (p["family"] == 0).all()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("channels, size", [(1, (8, 8)), (3, (32, 32)), (3, (12, 9))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cardinality(family: str, channels: int, size: tuple[int, int], dtype: torch.dtype) -> None:
    dsa = DSA(family, image_size=size)
    x = torch.rand(5, channels, *size, dtype=dtype)
    y = dsa.apply(x, params_of(dsa, family, 5))
    assert y.shape == x.shape and y.dtype == dtype


# ---------------------------------------------------------------- feature numerics


def reference_crop(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Loop version of DSA's rand_crop: out[b, :, i, j] = x[b, :, i + dy, j + dx], zero outside."""
    out = torch.zeros_like(x)
    _, _, h, w = x.shape
    for b, (dy, dx) in enumerate(shifts.tolist()):
        for i in range(h):
            for j in range(w):
                if 0 <= i + dy < h and 0 <= j + dx < w:
                    out[b, :, i, j] = x[b, :, i + dy, j + dx]
    return out


def reference_cutout(x: torch.Tensor, centers: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Loop version of DSA's rand_cutout: square indices clamped into the image, then zeroed."""
    mask = torch.ones(x.shape[0], *x.shape[2:])
    h, w = x.shape[2:]
    for b, (cy, cx) in enumerate(centers.tolist()):
        for r in range(size[0]):
            for c in range(size[1]):
                mask[b, min(max(r + cy - size[0] // 2, 0), h - 1), min(max(c + cx - size[1] // 2, 0), w - 1)] = 0
    return x * mask.unsqueeze(1)


def test_crop_shift_by_one_zero_fills() -> None:
    x = torch.rand(2, 3, 6, 7) + 1.0  # strictly positive, so zeros can only come from the fill
    y = batch_crop(x, torch.tensor([[1, 0], [0, -1]]))
    assert torch.equal(y[0, :, :-1], x[0, :, 1:]) and (y[0, :, -1] == 0).all()
    assert torch.equal(y[1, :, :, 1:], x[1, :, :, :-1]) and (y[1, :, :, 0] == 0).all()
    assert (batch_crop(x, torch.tensor([[6, 0]])) == 0).all()  # shifted fully out: all vacated


def test_crop_matches_reference_loop() -> None:
    dsa = DSA("crop", image_size=(9, 6))
    x = torch.rand(16, 2, 9, 6)
    p = dsa.sample_params(16, generator=gen(3))
    assert torch.equal(dsa.apply(x, p), reference_crop(x, p["crop_shift"]))


def test_cutout_exact_square() -> None:
    x = torch.rand(4, 2, 8, 8) + 1.0
    y = cutout(x, torch.tensor([[4, 4], [0, 0], [8, 8], [0, 7]]), (4, 4))
    zero = y[:, 0] == 0
    expected = torch.zeros(4, 8, 8, dtype=torch.bool)
    expected[0, 2:6, 2:6] = True  # centre 4, side 4: rows 4-2 .. 4+1
    expected[1, :2, :2] = True  # partial at the top-left corner
    expected[2, 6:, 6:] = True  # centre on the far border (DSA draws it): only 2x2 left
    expected[3, :2, 5:] = True
    assert torch.equal(zero, expected)
    assert torch.equal(y[~expected.unsqueeze(1).expand_as(y)], x[~expected.unsqueeze(1).expand_as(x)])


@pytest.mark.parametrize("size", [(8, 8), (10, 10), (32, 20)])  # even, odd (side 5) and non-square cutouts
def test_cutout_matches_reference_loop(size: tuple[int, int]) -> None:
    dsa = DSA("cutout", image_size=size)
    x = torch.rand(32, 1, *size)
    p = dsa.sample_params(32, generator=gen(5))
    assert torch.equal(dsa.apply(x, p), reference_cutout(x, p["cutout_center"], dsa.cutout_size))


def test_flip_per_sample() -> None:
    x = torch.rand(2, 3, 4, 5)
    y = hflip(x, torch.tensor([True, False]))
    assert torch.equal(y[0], x[0].flip(-1)) and torch.equal(y[1], x[1])


def test_align_corners_identity_and_rot90() -> None:
    assert ALIGN_CORNERS is True
    x = torch.rand(3, 3, 11, 11)
    scale, rotate = DSA("scale", image_size=11), DSA("rotate", image_size=11)
    one = {"family": torch.zeros(1, dtype=torch.long), "scale": torch.ones(1, 2)}
    assert (scale.apply(x, one) - x).abs().max() < 1e-5
    zero = {"family": torch.zeros(1, dtype=torch.long), "rotate": torch.zeros(1)}
    assert (rotate.apply(x, zero) - x).abs().max() < 1e-5
    quarter = {"family": torch.zeros(1, dtype=torch.long), "rotate": torch.tensor([math.pi / 2])}
    assert (rotate.apply(x, quarter) - torch.rot90(x, 1, dims=(2, 3))).abs().max() < 1e-5


def test_scale_acts_on_width_and_shrinks() -> None:
    x = torch.rand(1, 1, 5, 9)
    dsa = DSA("scale", image_size=(5, 9))
    y = dsa.apply(x, {"family": torch.zeros(1, dtype=torch.long), "scale": torch.tensor([[2.0, 1.0]])})
    # Output column j samples input column 2j - 4 (centre fixed, width halved); outside the input is zero.
    assert (y[..., 2:7] - x[..., 0:9:2]).abs().max() < 1e-5
    assert (y[..., :2] == 0).all() and (y[..., 7:] == 0).all()


def test_color_formulas_on_known_tensor() -> None:
    x = torch.tensor([0.0, 0.3, 0.6]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    one = torch.ones(1)
    # brightness +0.1: (0.1, 0.4, 0.7); saturation x2 about the channel mean 0.4: (-0.2, 0.4, 1.0);
    # contrast x0.5 about the image mean 0.4: (0.1, 0.4, 0.7).
    y = adjust_color(x, 0.1 * one, 2.0 * one, 0.5 * one)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([0.1, 0.4, 0.7]), atol=1e-6)
    assert torch.allclose(adjust_color(x, 0 * one, 0 * one, one), x.mean(1, keepdim=True).expand_as(x))
    grey = torch.rand(2, 1, 4, 4)
    assert torch.allclose(adjust_color(grey, torch.zeros(2), torch.rand(2), torch.ones(2)), grey)  # 1 channel


def test_full_strategy_dispatches_to_drawn_family() -> None:
    dsa = DSA(image_size=8)
    x = torch.rand(6, 3, 8, 8)
    for seed in range(12):
        p = dsa.sample_params(6, generator=gen(seed))
        family = dsa.families[p["family"][0]]
        single = DSA(family, image_size=8)
        sub = {k: v for k, v in p.items() if k in EXPECTED_KEYS[family]} | {"family": torch.zeros(6, dtype=torch.long)}
        assert torch.equal(dsa.apply(x, p), single.apply(x, sub))


# ---------------------------------------------------------------- gradcheck, replay, Siamese, RNG hygiene


@pytest.mark.parametrize("family", FAMILIES)
def test_gradcheck(family: str) -> None:
    dsa = DSA(family, image_size=5)
    p = params_of(dsa, family, 2, seed=1)
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


def test_gradcheck_mixed_families() -> None:
    dsa = DSA(image_size=5)
    p = dsa.sample_params(6, generator=gen())
    p["family"] = torch.tensor([5, 0, 3, 1, 4, 2])
    x = torch.rand(6, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsa.apply(t, p), (x,))


@pytest.mark.parametrize("family", FAMILIES)
def test_replay(family: str) -> None:
    dsa = DSA(family, image_size=8)
    x = torch.rand(4, 3, 8, 8)
    p = params_of(dsa, family, 4)
    assert torch.equal(dsa.apply(x, p), dsa.apply(x, p))


@pytest.mark.parametrize("family", FAMILIES)
def test_siamese_same_on_batch(family: str) -> None:
    dsa = DSA(family, image_size=8)
    a, b = torch.rand(5, 3, 8, 8), torch.rand(3, 3, 8, 8)
    p = params_of(dsa, family, 1, same_on_batch=True)
    assert all(v.shape[0] == 1 for v in p.values())
    assert torch.allclose(dsa.apply(torch.cat([a, b]), p), torch.cat([dsa.apply(a, p), dsa.apply(b, p)]), atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_leading_one_broadcasts_to_any_batch(family: str) -> None:
    dsa = DSA(family, image_size=8)
    p = params_of(dsa, family, 1, same_on_batch=True)
    for n in (1, 4, 9):
        x = torch.rand(n, 3, 8, 8)
        expanded = DSA.cat_params([p], [n])
        assert all(v.shape[0] == n for v in expanded.values())
        assert torch.allclose(dsa.apply(x, p), dsa.apply(x, expanded), atol=1e-6)


def test_mixed_families_equal_groups_applied_separately() -> None:
    dsa = DSA(image_size=8)
    xs = [torch.rand(n, 3, 8, 8) for n in (3, 1, 4, 2, 5, 2)]
    ps = [params_of(dsa, fam, len(x), seed=i) for i, (fam, x) in enumerate(zip(FAMILIES, xs, strict=True))]
    ps[1] = params_of(dsa, "crop", 1, same_on_batch=True)  # a leading-dim-1 set among per-sample ones
    cat = DSA.cat_params(ps, [len(x) for x in xs])
    expected = torch.cat([dsa.apply(x, p) for x, p in zip(xs, ps, strict=True)])
    assert torch.allclose(dsa.apply(torch.cat(xs), cat), expected, atol=1e-6)
    perm = torch.randperm(len(expected), generator=gen())  # interleaved families, not contiguous blocks
    shuffled = {k: v[perm] for k, v in cat.items()}
    assert torch.allclose(dsa.apply(torch.cat(xs)[perm], shuffled), expected[perm], atol=1e-6)


def test_global_rng_untouched() -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    dsa = DSA(image_size=8)
    x = torch.rand(4, 3, 8, 8, generator=gen(9))
    for seed in range(20):
        g = gen(seed)
        dsa.apply(x, dsa.sample_params(4, generator=g, same_on_batch=True))
        dsa(x, generator=g)
    assert torch.equal(torch.get_rng_state(), state)
    if cuda_state is not None:
        assert all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), cuda_state, strict=True))


def test_determinism() -> None:
    dsa = DSA(image_size=32)
    p, q, r = (dsa.sample_params(64, generator=gen(s)) for s in (7, 7, 8))
    assert all(torch.equal(p[k], q[k]) for k in p)
    assert not torch.equal(p["scale"], r["scale"])
    g = gen(7)
    x = torch.rand(64, 3, 32, 32)
    assert torch.equal(dsa(x, generator=g), dsa.apply(x, p))


@pytest.mark.requires_gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generator_and_input() -> None:
    dsa = DSA(image_size=8)
    g = torch.Generator(device="cuda").manual_seed(0)
    p = dsa.sample_params(4, generator=g)
    assert all(v.device.type == "cuda" for v in p.values())
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(dsa.apply(x.cuda(), p).cpu(), dsa.apply(x, {k: v.cpu() for k, v in p.items()}), atol=1e-5)


# ---------------------------------------------------------------- distributions vs the reference definitions


@pytest.fixture(scope="module")
def big() -> dict:
    return DSA(image_size=32).sample_params(N_DIST, generator=gen(2024))


def check_uniform(v: torch.Tensor, lo: float, hi: float) -> None:
    """Support within [lo, hi], edges reached, mean and variance of U(lo, hi) within ~6 standard errors."""
    v = v.double()
    width = hi - lo
    assert v.min() >= lo and v.max() <= hi
    assert v.min() < lo + 0.002 * width and v.max() > hi - 0.002 * width
    assert abs(v.mean() - (lo + hi) / 2) < 0.015 * width
    assert abs(v.var() - width**2 / 12) < 0.03 * width**2 / 12


def test_color_distributions(big: dict) -> None:
    check_uniform(big["brightness"], -0.5, 0.5)  # (U - 0.5) * brightness, brightness = 1
    check_uniform(big["saturation"], 0.0, 2.0)  # U * saturation, saturation = 2
    check_uniform(big["contrast"], 0.5, 1.5)  # U + contrast, contrast = 0.5


def test_affine_distributions(big: dict) -> None:
    check_uniform(big["scale"][:, 0], 1 / 1.2, 1.2)
    check_uniform(big["scale"][:, 1], 1 / 1.2, 1.2)
    corr = torch.corrcoef(big["scale"].T.double())[0, 1]
    assert abs(corr) < 0.03  # sx and sy drawn independently
    check_uniform(big["rotate"], -15 * math.pi / 180, 15 * math.pi / 180)  # radians


def check_discrete_uniform(v: torch.Tensor, values: range) -> None:
    counts = torch.bincount(v - values.start, minlength=len(values))
    assert set(v.unique().tolist()) == set(values)
    expected = len(v) / len(values)
    assert (counts - expected).abs().max() < 6 * math.sqrt(expected)


def test_crop_distribution(big: dict) -> None:
    for axis in (0, 1):  # s = int(0.125 * 32 + 0.5) = 4 on both axes, range inclusive
        check_discrete_uniform(big["crop_shift"][:, axis], range(-4, 5))
    p = DSA("crop", image_size=(32, 12)).sample_params(N_DIST, generator=gen(1))
    check_discrete_uniform(p["crop_shift"][:, 0], range(-4, 5))  # along H
    check_discrete_uniform(p["crop_shift"][:, 1], range(-2, 3))  # along W: int(1.5 + 0.5) = 2


def test_cutout_distribution(big: dict) -> None:
    for axis in (0, 1):  # side 16 (even): DSA's randint(0, 32 + 1) -> centres 0..32
        check_discrete_uniform(big["cutout_center"][:, axis], range(0, 33))
    dsa = DSA("cutout", image_size=(10, 28))  # sides 5 (odd) and 14 (even)
    assert dsa.cutout_size == (5, 14)
    p = dsa.sample_params(N_DIST, generator=gen(1))
    check_discrete_uniform(p["cutout_center"][:, 0], range(0, 10))
    check_discrete_uniform(p["cutout_center"][:, 1], range(0, 29))


@pytest.mark.parametrize("prob", [0.5, 0.2])
def test_flip_distribution(prob: float) -> None:
    p = DSA("flip", image_size=8, prob_flip=prob).sample_params(N_DIST, generator=gen(4))
    assert abs(p["flip"].double().mean() - prob) < 0.015


def test_family_choice_uniform_per_call() -> None:
    dsa = DSA(image_size=8)
    g = gen(11)
    calls = 6000
    draws = torch.cat([dsa.sample_params(2, generator=g)["family"] for _ in range(calls)]).view(calls, 2)
    assert (draws[:, 0] == draws[:, 1]).all()  # one family per call, shared by its samples
    freq = torch.bincount(draws[:, 0], minlength=6).double() / calls
    assert (freq - 1 / 6).abs().max() < 0.025
