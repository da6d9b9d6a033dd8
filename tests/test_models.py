"""Model zoo tests, parametrised over the registry so every newly registered model gets the smoke tests for free."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch
from torch import nn

from dd_bench.models import (
    MODELS,
    UnsupportedResolution,
    compatible_models,
    create_model,
    embed,
    feature_dim,
    list_models,
    supports_vmap,
)

NATIVE = MODELS.list()
# Candidate (C, H, W) input shapes, smallest first: 8x8 digits, MNIST, CIFAR, Tiny-ImageNet.
SHAPES = ((1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64))
NUM_CLASSES = 5
BATCH = 2


@functools.cache
def _compatible(shape: tuple[int, int, int]) -> frozenset[str]:
    return frozenset(compatible_models(in_channels=shape[0], image_size=shape[1:]))


def smallest_shape(name: str) -> tuple[int, int, int]:
    return next(shape for shape in SHAPES if name in _compatible(shape))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, shape: tuple[int, int, int], **kwargs) -> nn.Module:
    return create_model(name, num_classes=NUM_CLASSES, in_channels=shape[0], image_size=shape[1:], **kwargs)


# ---- registry-wide smoke tests ----------------------------------------------------------------------------------


def test_registry_names_and_listing() -> None:
    assert set(NATIVE) >= {
        "convnet", "convnet_bn", "convnetd4", "convnetd5", "resnet18", "resnet18_bn", "resnet18_cifar",
        "vgg11", "vgg11_bn", "alexnet", "lenet", "mlp",
    }  # fmt: skip
    assert all(name == name.lower() for name in NATIVE)
    assert list_models() == NATIVE + ["timm.<any timm model>"]
    assert list_models("convnet*") == ["convnet", "convnet_bn", "convnetd4", "convnetd5"]
    assert list_models("timm.*") == ["timm.<any timm model>"]


@pytest.mark.parametrize("name", NATIVE)
def test_factory_signature(name: str) -> None:
    params = inspect.signature(MODELS.get(name)).parameters
    for arg in ("num_classes", "in_channels", "image_size"):
        assert params[arg].kind is inspect.Parameter.KEYWORD_ONLY
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@pytest.mark.parametrize("name", NATIVE)
def test_forward_backward_smallest_size(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_seeding(*args, **kwargs):
        raise AssertionError("models must never seed the global RNG")

    monkeypatch.setattr(torch, "manual_seed", no_seeding)
    monkeypatch.setattr(torch, "seed", no_seeding)
    shape = smallest_shape(name)
    model = build(name, shape)
    monkeypatch.undo()
    x = torch.randn(BATCH, *shape)
    out = model(x)
    assert out.shape == (BATCH, NUM_CLASSES)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", NATIVE)
def test_cifar_forward_and_embed(name: str) -> None:
    """Every model of the DC cross-architecture pool runs on CIFAR, and classifier(embed(x)) == model(x)."""
    model = build(name, (3, 32, 32)).eval()
    x = torch.randn(BATCH, 3, 32, 32)
    with torch.no_grad():
        features = embed(model, x)
        assert features.shape == (BATCH, feature_dim(model))
        torch.testing.assert_close(model.classifier(features), model(x))


@pytest.mark.parametrize("name", NATIVE)
def test_supports_vmap(name: str) -> None:
    model = build(name, smallest_shape(name))
    has_bn = name.endswith("_bn") or name.endswith("_cifar")  # the 32x32-adapted torchvision zoo uses BatchNorm
    assert supports_vmap(model) is not has_bn


@pytest.mark.parametrize("name", NATIVE)
def test_generator_init_is_reproducible_and_leaves_global_rng_alone(name: str) -> None:
    shape = smallest_shape(name)
    state = torch.get_rng_state()
    a = build(name, shape, generator=torch.Generator().manual_seed(1))
    b = build(name, shape, generator=torch.Generator().manual_seed(1))
    c = build(name, shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.get_rng_state(), state)
    state_b, state_c = b.state_dict(), c.state_dict()
    for key, value in a.state_dict().items():
        assert torch.equal(value, state_b[key]), key
    assert any(not torch.equal(value, state_c[key]) for key, value in a.named_parameters())


# ---- ConvNet and friends: parameter counts, resolution handling ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shape", "num_classes", "expected"),
    [
        ("convnet", (3, 32, 32), 10, 320_010),  # CIFAR-10 (MTT / DC)
        ("convnet", (3, 32, 32), 100, 504_420),  # CIFAR-100
        ("convnetd4", (3, 64, 64), 200, 857_160),  # Tiny-ImageNet
        ("convnet", (1, 28, 28), 10, 317_706),  # MNIST: 28x28 treated as 32x32 -> Linear(2048, K)
        # The rest of the DC zoo on CIFAR-10 (GroupNorm(C, C) has the same 2C parameters as BatchNorm).
        ("resnet18", (3, 32, 32), 10, 11_173_962),
        ("resnet18_bn", (3, 32, 32), 10, 11_173_962),
        ("resnet18_cifar", (3, 32, 32), 10, 11_173_962),  # torchvision's 11,181,642 minus 7x7 + 3x3 conv1
        ("vgg11", (3, 32, 32), 10, 9_231_114),
        ("alexnet", (3, 32, 32), 10, 1_872_202),
        ("lenet", (3, 32, 32), 10, 62_006),
        ("mlp", (3, 32, 32), 10, 411_146),
    ],
)
def test_param_counts(name: str, shape: tuple[int, int, int], num_classes: int, expected: int) -> None:
    model = create_model(name, num_classes=num_classes, in_channels=shape[0], image_size=shape[1:])
    assert n_params(model) == expected


def test_convnet_layout() -> None:
    model = build("convnet", (3, 32, 32))
    norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 3 and all(n.num_groups == n.num_channels == 128 and n.affine for n in norms)
    assert sum(isinstance(m, nn.AvgPool2d) for m in model.modules()) == 3
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert model.classifier.in_features == 128 * 4 * 4
    assert build("convnet_bn", (3, 32, 32)).classifier.in_features == 2048
    plain = build("convnet", (3, 32, 32), norm="none")
    assert not any(isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)) for m in plain.modules())


def test_convnet_on_8x8_digits() -> None:
    model = build("convnet", (1, 8, 8))
    assert model.classifier.in_features == 128  # 8 -> 4 -> 2 -> 1
    assert model.features[0].padding == (1, 1)  # only 1-channel 28x28 gets DC's extra padding
    assert smallest_shape("convnet") == smallest_shape("mlp") == (1, 8, 8)


def test_mnist_first_conv_padding() -> None:
    assert build("convnet", (1, 28, 28)).features[0].padding == (3, 3)
    assert build("vgg11", (1, 28, 28)).features[0].padding == (3, 3)
    assert build("alexnet", (1, 28, 28)).features[0].padding == (4, 4)
    assert build("lenet", (1, 28, 28)).features[0].padding == (2, 2)


@pytest.mark.parametrize(
    ("name", "shape", "kwargs", "match"),
    [
        ("resnet18", (1, 8, 8), {}, r"resnet18 needs 32x32.*avg_pool2d\(4\).*got 8x8.*Options for 1x8x8: .*convnet"),
        ("resnet18_bn", (3, 64, 64), {}, r"got 64x64, which gives a 8x8 feature map"),
        ("vgg11", (3, 64, 64), {}, r"vgg11 needs 32x32.*Linear\(512, K\)"),
        ("alexnet", (1, 8, 8), {}, r"alexnet needs 32x32"),
        ("lenet", (3, 64, 64), {}, r"lenet needs 32x32"),
        ("convnet", (1, 8, 8), {"depth": 4}, r"depth 4 .* only allow depth <= 3"),
        ("convnetd4", (1, 8, 8), {}, r"only allow depth <= 3.*Options for 1x8x8: convnet, convnet_bn, .*mlp"),
    ],
)
def test_resolution_errors(name: str, shape: tuple[int, int, int], kwargs: dict, match: str) -> None:
    with pytest.raises(UnsupportedResolution, match=match) as err:
        build(name, shape, **kwargs)
    assert isinstance(err.value, ValueError)
    options = str(err.value).rsplit(": ", 1)[1].split(", ")
    assert "mlp" in options
    assert (name in options) == bool(kwargs)  # options are judged with default kwargs


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="Unknown norm 'layer' for convnet; options: batch, instance, none"):
        build("convnet", (3, 32, 32), norm="layer")
    with pytest.raises(ValueError, match="options: batch, instance"):
        build("resnet18", (3, 32, 32), norm="none")
    with pytest.raises(ValueError, match="image_size must be"):
        create_model("mlp", num_classes=2, in_channels=1, image_size=(8,))
    model = create_model("mlp", num_classes=2, in_channels=1, image_size=[8, 8])  # Hydra passes lists
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


def test_unknown_name_lists_options() -> None:
    with pytest.raises(ValueError, match=r"Unknown model 'convnett'; available: alexnet, convnet, .*timm\.<any"):
        build("convnett", (3, 32, 32))


# ---- vmap over stacked parameter sets -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs"), [("convnet", {"width": 8}), ("mlp", {"width": 16})])
def test_vmap_over_stacked_params_matches_separate_calls(name: str, kwargs: dict) -> None:
    shape = (1, 8, 8)
    models = [build(name, shape, generator=torch.Generator().manual_seed(s), **kwargs) for s in range(3)]
    assert all(supports_vmap(m) for m in models)
    params, buffers = torch.func.stack_module_state(models)  # each leaf: (3, *param_shape)
    base = build(name, shape, **kwargs).to("meta")
    x = torch.randn(4, *shape)

    def run(p: dict, b: dict, inputs: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(base, (p, b), (inputs,))

    batched = torch.func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)  # (3, 4, K)
    separate = torch.stack([m(x) for m in models])
    torch.testing.assert_close(batched, separate, rtol=1e-5, atol=1e-6)


# ---- timm passthrough ---------------------------------------------------------------------------------------------


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm.models._builder as builder

    def fail(*args, **kwargs):
        raise AssertionError("timm tried to load pretrained weights")

    monkeypatch.setattr(builder, "load_pretrained", fail)


@pytest.mark.usefixtures("no_downloads")
def test_timm_resnet18_passthrough() -> None:
    model = build("timm.resnet18", (3, 32, 32))
    x = torch.randn(BATCH, 3, 32, 32)
    assert model(x).shape == (BATCH, NUM_CLASSES)
    assert embed(model, x).shape == (BATCH, feature_dim(model)) == (BATCH, 512)
    assert not supports_vmap(model)
    grey = create_model("timm.resnet18", num_classes=3, in_channels=1, image_size=(32, 32))
    assert grey(torch.randn(BATCH, 1, 32, 32)).shape == (BATCH, 3)


@pytest.mark.usefixtures("no_downloads")
def test_timm_passes_img_size_to_transformers() -> None:
    model = build("timm.vit_tiny_patch16_224", (3, 32, 32), depth=1)  # 2x2 patch grid instead of 14x14
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, NUM_CLASSES)
    assert supports_vmap(model)


def test_timm_unknown_name_and_no_pretrained() -> None:
    with pytest.raises(ValueError, match=r"Unknown timm model 'resnet18x'.*close matches: timm\.resnet18"):
        build("timm.resnet18x", (3, 32, 32))
    with pytest.raises(ValueError, match="pretrained=False"):
        build("timm.resnet18", (3, 32, 32), pretrained=True)


@pytest.mark.parametrize("name", ["resnet50_cifar", "mobilenetv2_cifar", "shufflenetv2_cifar", "efficientnet_b0_cifar",
                                  "densenet121_cifar", "shufflenetg2_cifar"])
def test_the_cifar_zoo_keeps_32x32_through_the_stem(name: str) -> None:
    """The CIFAR adaptation: a stride-1 first convolution and no stem max-pool (kuangliu/pytorch-cifar)."""
    model = create_model(name, num_classes=10, in_channels=3, image_size=(32, 32)).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shapes = []
    handle = convs[1].register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape[-2:])))
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    handle.remove()
    assert convs[0].stride == (1, 1) and shapes == [(32, 32)]
    assert not any(isinstance(m, (nn.Dropout, nn.MaxPool2d)) and getattr(m, "p", 0) for m in model.modules())


def test_shufflenetg2_has_the_kuangliu_shape() -> None:
    """ShuffleNetG2 (kuangliu/pytorch-cifar): 16 bottlenecks, [200, 400, 800] channels, 32 -> 16 -> 8 -> 4 maps,
    the stem's block with one group; and the channel shuffle interleaves the groups."""
    from dd_bench.models.shufflenet_cifar import ShuffleBottleneck, channel_shuffle

    model = create_model("shufflenetg2_cifar", num_classes=10, in_channels=3, image_size=(32, 32)).eval()
    blocks = [m for m in model.modules() if isinstance(m, ShuffleBottleneck)]
    assert len(blocks) == 16 and blocks[0].conv1.groups == 1 and blocks[1].conv1.groups == 2
    sizes = []
    for i in (3, 11, 15):
        blocks[i].register_forward_hook(lambda m, inp, out: sizes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sizes == [(200, 16, 16), (400, 8, 8), (800, 4, 4)]
    x = torch.arange(4.0).view(1, 4, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 2.0, 1.0, 3.0]


def test_convnet_relu_in_place_gives_the_out_of_place_logits_and_gradients() -> None:
    """The ConvNet's ReLU runs in place (as DC/MTT's): logits and parameter gradients equal the out-of-place twin's."""
    import copy

    torch.manual_seed(0)
    net = create_model("convnet", in_channels=1, num_classes=10, image_size=(28, 28))
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 3 and all(m.inplace for m in relus)
    twin = copy.deepcopy(net)
    for i, m in enumerate(twin.features):
        if isinstance(m, nn.ReLU):
            twin.features[i] = nn.ReLU(inplace=False)
    x, y = torch.randn(8, 1, 28, 28), torch.arange(8)
    grads = []
    for model in (net, twin):
        logits = model(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        grads.append((logits.detach(), [p.grad for p in model.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1], strict=True))
    with torch.no_grad():
        assert torch.equal(net.eval()(x), twin.eval()(x))


def test_grad_cam_at_a_layer_followed_by_an_in_place_relu_sees_the_layer_s_own_map() -> None:
    """Grad-CAM hooked on the ConvNet's norm layer (an in-place ReLU follows it) equals the out-of-place twin's."""
    import copy

    from dd_bench.methods.decoupled.cam import class_activation_maps

    torch.manual_seed(0)
    net = create_model("convnet", in_channels=3, num_classes=10, image_size=(32, 32))
    twin = copy.deepcopy(net)
    for i, m in enumerate(twin.features):
        if isinstance(m, nn.ReLU):
            twin.features[i] = nn.ReLU(inplace=False)
    x, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    for layer in ("features.5", "features.6"):  # block 2's norm layer, then its ReLU
        assert torch.equal(class_activation_maps(net, x, labels, layer=layer),
                           class_activation_maps(twin, x, labels, layer=layer))
