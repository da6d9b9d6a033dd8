"""Teachers: trained by their recipe, cached by key, resumable (resume == uninterrupted), validation-aware, and
local weight files checked with clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch

import dd_bench.teachers.store as store
from dd_bench.data import split_validation
from dd_bench.errors import UserError
from dd_bench.teachers import TEACHER_RECIPES, TeacherRecipe, get_recipe, get_teacher, load_teacher_weights

TINY = TeacherRecipe(model="convnet_bn", model_kwargs={"width": 8, "depth": 2}, epochs=3, lr=0.01, batch_size=128,
                     crop_pad=1)


def _state(teacher) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in teacher.module.state_dict().items()}


def test_recipes_follow_the_cards():
    sre2l = get_recipe("sre2l_cifar")
    assert (sre2l.model, sre2l.optimizer, sre2l.lr, sre2l.momentum, sre2l.weight_decay, sre2l.epochs,
            sre2l.batch_size, sre2l.schedule) == ("resnet18_cifar", "sgd", 0.1, 0.9, 5e-4, 200, 128, "cosine")
    cvdd = get_recipe("cvdd_cifar")
    assert (cvdd.optimizer, cvdd.lr, cvdd.weight_decay, cvdd.batch_size, cvdd.epochs) == ("adam", 1e-3, 1e-4, 512, 200)
    assert len(TEACHER_RECIPES.list("digits_convnet_bn_*")) == 4
    with pytest.raises(UserError, match="Unknown teacher optimizer 'lion'; available: sgd, adam, adamw"):
        TeacherRecipe(optimizer="lion")


def test_resume_equals_uninterrupted_and_the_cache_is_reused(digits, tmp_path, monkeypatch):
    whole = _state(get_teacher(digits, TINY, cache_dir=tmp_path / "a", progress=False))
    original = store.train_epoch
    calls = {"n": 0}

    def crash_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "train_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        get_teacher(digits, TINY, cache_dir=tmp_path / "b", progress=False)
    monkeypatch.setattr(store, "train_epoch", original)
    resumed = _state(get_teacher(digits, TINY, cache_dir=tmp_path / "b", progress=False))
    assert resumed.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(resumed[name], whole[name], rtol=0, atol=0)

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cached teacher was trained again")

    monkeypatch.setattr(store, "train_epoch", must_not_train)
    again = get_teacher(digits, TINY, cache_dir=tmp_path / "b", progress=False)
    assert again.source == "trained" and again.validation_accuracy is None  # no split: no accuracy recorded


def test_teachers_never_see_the_validation_split(digits, tmp_path, monkeypatch):
    reduced, val = split_validation(digits, fraction=0.1, seed=0)
    assert TINY.key(reduced) != TINY.key(digits)  # the split is part of the key
    seen = []
    original = store.train_epoch

    def log_access(module, *, images, **kwargs):
        seen.append(images)
        return original(module, images=images, **kwargs)

    monkeypatch.setattr(store, "train_epoch", log_access)
    teacher = get_teacher(reduced, TINY, cache_dir=tmp_path, progress=False)
    assert seen and all(images is reduced.train_images for images in seen)
    assert len(reduced.train_images) == len(digits.train_images) - len(val["indices"])
    assert set(reduced.train_indices.tolist()).isdisjoint(val["indices"].tolist())
    assert teacher.validation_accuracy is not None and 0 <= teacher.validation_accuracy <= 100


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_weight_files_load_or_fail_clearly(digits, tmp_path):
    from safetensors.torch import save_file

    teacher = get_teacher(digits, TINY, cache_dir=tmp_path / "cache", progress=False)
    path = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in teacher.module.state_dict().items()}, str(path))
    loaded = load_teacher_weights(path, model="convnet_bn", real=digits, model_kwargs={"width": 8, "depth": 2})
    x = digits.to_model_space(digits.test_images[:16])
    torch.testing.assert_close(loaded.module(x), teacher.module(x))
    assert loaded.source == "file" and loaded.parameter_bytes == teacher.parameter_bytes

    torch_file = tmp_path / "teacher.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in teacher.module.state_dict().items()}}, torch_file)
    assert load_teacher_weights(torch_file, model="convnet_bn", real=digits,
                                model_kwargs={"width": 8, "depth": 2}).source == "file"

    with pytest.raises(UserError, match=r"missing\.pt does not exist; expected a convnet_bn state dict for 10 classes"):
        load_teacher_weights(tmp_path / "missing.pt", model="convnet_bn", real=digits)
    with pytest.raises(UserError, match="does not fit.*expected a convnet_bn state dict"):
        load_teacher_weights(path, model="convnet_bn", real=digits, model_kwargs={"width": 16, "depth": 2})
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(object()))
    with pytest.raises(UserError, match="could not be read"):
        load_teacher_weights(evil, model="convnet_bn", real=digits)
    reduced, _ = split_validation(digits, fraction=0.1, seed=0)
    with pytest.raises(UserError, match="validation split"):
        load_teacher_weights(path, model="convnet_bn", real=reduced, model_kwargs={"width": 8, "depth": 2})


def test_crop_flip_replays_and_drops_flip_for_digits(digits):
    from dd_bench.augment.crop_flip import RandomCropFlip

    aug = store._augment(digits, TINY)
    assert isinstance(aug, RandomCropFlip) and not aug.flip and aug.pad == 1
    x = digits.to_model_space(digits.train_images[:5])
    params = aug.sample_params(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(aug.apply(x, params), aug.apply(x.clone(), params))
    black = digits.to_model_space(torch.zeros(1, 1, 1, 1, dtype=torch.uint8))
    shifted = aug.apply(x, {"dy": torch.zeros(5, dtype=torch.long), "dx": torch.zeros(5, dtype=torch.long),
                            "flip": torch.zeros(5, dtype=torch.bool)})
    torch.testing.assert_close(shifted[:, :, 0, :], black.flatten()[0].expand(5, 1, 8))  # the padded top row
    torch.testing.assert_close(shifted[:, :, 1:, 1:], x[:, :, :-1, :-1])


def test_warm_up_and_resized_crops_train_a_teacher_that_learns(digits, tmp_path, monkeypatch):
    """The Tiny-ImageNet recipe's parts (linear warm-up then cosine, RandomResizedCrop + flip) on a tiny teacher:
    the lr follows the schedule epoch by epoch and the teacher ends well above chance (10 classes)."""
    from dd_bench.teachers import accuracy
    from dd_bench.train import optimizers

    recipe = TeacherRecipe(model="convnet_bn", model_kwargs={"width": 16, "depth": 2}, epochs=6, lr=0.05,
                           batch_size=64, schedule="warmup_cosine", warmup_epochs=2, augment="resized_crop_flip")
    seen = []
    original = optimizers.set_lr
    monkeypatch.setattr(store, "set_lr", lambda opt, lr: (seen.append(lr), original(opt, lr))[1])
    teacher = get_teacher(digits, recipe, cache_dir=tmp_path, progress=False)
    assert seen[:3] == pytest.approx([0.05 * 0.01, 0.05 * (0.01 + 0.99 / 2), 0.05])
    assert accuracy(teacher.module, digits.test_images, digits.test_labels, digits) > 50.0
