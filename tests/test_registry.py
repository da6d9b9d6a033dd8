"""The registry contract (factories are created, specs are looked up, one-line errors) and the registries that
replaced name switches: each builds what its switch built."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dd_bench.augment import DSA, NoAugmentation
from dd_bench.augment.crop_flip import NoCrop, RandomCropFlip
from dd_bench.augment.dc_aug import DCAugment
from dd_bench.augment.named import NAMED_AUGMENTS, create_augment
from dd_bench.augment.resized_crop import RandomResizedCropFlip
from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.eval import get_protocol
from dd_bench.eval.kd import CROPS
from dd_bench.eval.mtt import AUGMENT_KINDS, make_augment
from dd_bench.experts.recipe import AUGMENTS as EXPERT_AUGMENTS
from dd_bench.experts.recipe import ExpertRecipe, make_expert_augment
from dd_bench.registry import REGISTRIES, Registry, get_registry, registries, registry_names
from dd_bench.teachers import store as teacher_store
from dd_bench.teachers.recipe import AUGMENTS as TEACHER_AUGMENTS
from dd_bench.teachers.recipe import TeacherRecipe


def with_flip() -> RealData:
    g = torch.Generator().manual_seed(0)
    return RealData(name="tiny_cifar", train_images=torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8, generator=g),
                    train_labels=torch.arange(8) % 2, test_images=torch.zeros(2, 3, 8, 8, dtype=torch.uint8),
                    test_labels=torch.arange(2), class_names=["a", "b"], mean=(0.5,) * 3, std=(0.25,) * 3,
                    dsa_strategy="color_crop_cutout_flip_scale_rotate")


# ---------------------------------------------------------------- the contract


def test_a_spec_registry_refuses_create_and_a_factory_registry_creates():
    specs: Registry = Registry("gadget", kind="spec")
    specs.register("a")(("frozen", 1))
    assert specs.get("a") == ("frozen", 1)
    with pytest.raises(TypeError, match=r"gadget registry holds specs: look one up with get\('a'\)"):
        specs.create("a")
    factories: Registry = Registry("widget")
    factories.register("b")(dict)
    assert factories.create("b", x=1) == {"x": 1} and factories.create("b") is not factories.create("b")
    with pytest.raises(TypeError, match="holds callables"):
        factories.register("c")(("not", "callable"))
    with pytest.raises(ValueError, match="kind="):
        Registry("thing", kind="both")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(REGISTRIES))
def test_every_registry_keeps_the_contract(name):
    registry = get_registry(name)
    assert isinstance(registry, Registry) and registry.kind in ("factory", "spec") and len(registry) > 0
    first = registry.list()[0]
    if registry.kind == "spec":
        with pytest.raises(TypeError, match="holds specs"):
            registry.create(first)
    else:
        assert callable(registry.get(first))
    with pytest.raises(UserError, match=rf"^Unknown {registry.noun} 'no_such_name'; available: "):
        registry.get("no_such_name")
    assert set(registry.list()) <= set(registry_names(name))


def test_the_registry_of_registries():
    assert list(registries()) == list(REGISTRIES)
    with pytest.raises(UserError, match="^Unknown registry 'nope'; available: methods, datasets,"):
        get_registry("nope")


def test_unknown_names_fail_in_one_line_and_order_is_kept_when_asked():
    ordered: Registry = Registry("format", kind="spec", sort=False)
    for name in ("pt", "hf", "npz"):
        ordered.register(name)(name)
    assert ordered.list() == ["pt", "hf", "npz"] and ordered.list("*p*") == ["pt", "npz"]
    with pytest.raises(UserError, match=r"^Unknown format 'zip'; available: pt, hf, npz$"):
        ordered.get("zip")


# ---------------------------------------------------------------- named augmentations


@pytest.mark.parametrize("accepted", [AUGMENT_KINDS, EXPERT_AUGMENTS, TEACHER_AUGMENTS, tuple(CROPS.values())],
                         ids=["mtt", "experts", "teachers", "kd"])
def test_every_recipe_names_registered_augmentations(accepted):
    assert set(accepted) <= set(NAMED_AUGMENTS.list())


def _same(a, b) -> bool:
    return type(a) is type(b) and (a is None or vars(a).keys() == vars(b).keys() and all(
        torch.equal(x, y) if torch.is_tensor(x) else x == y for x, y in zip(vars(a).values(), vars(b).values(),
                                                                           strict=True)))


@pytest.mark.parametrize("name", sorted(AUGMENT_KINDS))
def test_the_mtt_protocols_augmentation_is_what_its_switch_built(digits, name):
    real = with_flip() if name == "dsa_fyi" else digits
    built = make_augment(real, dataclasses.replace(get_protocol("mtt"), augment=name))
    expected = {"none": lambda: None, "dsa": lambda: DSA(real.dsa_strategy, image_size=real.image_size),
                "dsa_fyi": lambda: DSA(real.dsa_strategy, image_size=real.image_size, fyi=True),
                "dc_crop_scale_rotate": lambda: DCAugment("crop_scale_rotate", image_size=real.image_size),
                "dc_crop_noise": lambda: DCAugment("crop_noise", image_size=real.image_size)}[name]()
    assert _same(built, expected), (built, expected)


def test_fyi_on_a_strategy_without_flip_names_the_protocol(digits):
    with pytest.raises(UserError, match="protocol 'mtt-fyi' cannot evaluate on dataset 'digits'"):
        make_augment(digits, get_protocol("mtt-fyi"))


def test_experts_teachers_and_kd_build_what_their_switches_built(digits):
    assert _same(make_expert_augment(digits, ExpertRecipe(augment="none")), NoAugmentation(image_size=(8, 8)))
    assert _same(make_expert_augment(digits, ExpertRecipe()), DSA(digits.dsa_strategy, image_size=(8, 8)))
    crop = teacher_store._augment(digits, TeacherRecipe(model="convnet", crop_pad=2))
    assert isinstance(crop, RandomCropFlip) and (crop.pad, crop.flip) == (2, False)
    resized = teacher_store._augment(with_flip(), TeacherRecipe(model="convnet", augment="resized_crop_flip"))
    assert _same(resized, RandomResizedCropFlip(image_size=(8, 8), flip=True))
    assert teacher_store._augment(digits, TeacherRecipe(model="convnet", augment="none")) is None
    kd = get_protocol("kd")
    assert isinstance(dataclasses.replace(kd, crop="none").augment(digits).crop, NoCrop)
    resized = dataclasses.replace(kd, crop="resized_crop", crop_scale_min=0.5).augment(digits).crop
    assert _same(resized, RandomResizedCropFlip(image_size=(8, 8), scale=(0.5, 1.0), flip=False))
    assert _same(kd.augment(digits).crop, create_augment("crop_flip", real=digits))


def test_an_unknown_augment_lists_the_registered_ones(digits):
    with pytest.raises(UserError, match="^Unknown augment 'flip'; available: crop_flip, dc_crop_noise"):
        create_augment("flip", real=digits)
