"""RDED under RDED's protocol: the presets, the observer recipe, kd-rded v2 (Tiny batch, test transform, no weight
decay on biases and BN), and the protocol and teacher identities that must (or must not) move."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from dd_bench.eval.protocol import get_protocol
from dd_bench.eval.scoring import eval_transform
from dd_bench.io import json_sha256
from dd_bench.teachers.recipe import get_recipe
from dd_bench.train import OptimizerSpec
from dd_bench.train.schedules import StepLR

EXPERIMENTS = sorted((Path(__file__).resolve().parent.parent / "conf" / "experiment").glob("rded_*.yaml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_rded_experiment_evaluates_under_rdeds_protocol_with_rdeds_observer(compose_cfg, path):
    cfg = compose_cfg("task=run", f"experiment={path.stem}")
    assert cfg.eval.name == "kd-rded" and cfg.method.teacher == "rded_observer_cifar"
    text = path.read_text()
    assert "eval=kd" in text and "READING" in text  # the ranked number one override away; the recipe's status
    assert compose_cfg("task=run", f"experiment={path.stem}", "eval=kd").eval.name == "kd"


def test_the_rded_observer_is_a_labelled_reading_of_torchvisions_reference():
    observer = get_recipe("rded_observer_cifar")
    assert (observer.model, observer.optimizer, observer.lr, observer.momentum, observer.weight_decay) == \
        ("resnet18_cifar", "sgd", 0.1, 0.9, 1e-4)
    assert (observer.epochs, observer.batch_size, observer.schedule, observer.step_size, observer.gamma,
            observer.augment) == (90, 32, "step", 30, 0.1, "resized_crop_flip")
    assert [StepLR(30, 0.1).lr(e, 0.1) for e in (0, 29, 30, 60, 89)] == pytest.approx([0.1, 0.1, 0.01, 1e-3, 1e-3])
    # The step fields are only in the identity of recipes that use them: earlier teachers keep their keys.
    assert "step_size" in observer.to_dict() and "step_size" not in get_recipe("sre2l_cifar").to_dict()
    assert json_sha256(get_recipe("sre2l_cifar").to_dict(), 16) == "7b3d62367b573969"


def test_rdeds_conv3_observer_is_the_same_reading_on_convnet_bn_and_loads_a_conv3_file(digits, tmp_path):
    from safetensors.torch import save_file

    from dd_bench.models import create_model
    from dd_bench.teachers.spec import resolve_teacher

    conv3, observer = get_recipe("rded_observer_cifar_conv3"), get_recipe("rded_observer_cifar")
    # RDED's --arch-name conv3 (synthesize/utils.py:183-192): ConvNet, batch norm, relu, avg pooling, depth 3, width 128
    assert (conv3.model, dict(conv3.model_kwargs)) == ("convnet_bn", {"width": 128, "depth": 3})
    assert {k: v for k, v in conv3.to_dict().items() if k not in ("model", "model_kwargs")} == \
        {k: v for k, v in observer.to_dict().items() if k not in ("model", "model_kwargs")}
    net = create_model("convnet_bn", num_classes=10, in_channels=1, image_size=(8, 8), width=128, depth=3)
    save_file(net.state_dict(), str(tmp_path / "conv3.safetensors"))
    teacher = resolve_teacher(digits, recipe="rded_observer_cifar_conv3", weights=tmp_path / "conv3.safetensors")
    assert teacher.source == "file" and teacher.model == "convnet_bn" and teacher.key == "file:conv3.safetensors"
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(teacher.module(x), net.eval()(x))


def test_kd_rded_v2_on_tiny_imagenet_batch_and_eval_transform():
    rded = get_protocol("kd-rded")
    assert rded.version == 3 and rded.no_decay_1d and rded.test_resize_crop  # v2's changes, kept by v3
    # argument.py:252-254: batch 100 on Tiny-ImageNet whatever the IPC; CIFAR keeps its rule.
    assert [rded.batch_for(200 * ipc, 200, "tiny_imagenet") for ipc in (1, 10, 50)] == [100, 100, 100]
    assert [rded.batch_for(100 * ipc, 100, "cifar100") for ipc in (1, 10, 50)] == [20, 100, 200]
    x = torch.rand(3, 3, 64, 64)
    tiny = SimpleNamespace(image_size=(64, 64), to_model_space=lambda t: t * 2.0)
    expected = TF.center_crop(TF.resize(x * 2.0, [72, 72], antialias=True), [64, 64])
    assert torch.allclose(eval_transform(tiny, rded)(x), expected)
    assert not torch.equal(eval_transform(tiny, rded)(x), x * 2.0)
    cifar = SimpleNamespace(image_size=(32, 32), to_model_space=lambda t: t * 2.0)
    y = torch.rand(2, 3, 32, 32)
    assert torch.equal(eval_transform(cifar, rded)(y), y * 2.0)  # 32 // 7 * 8 = 32: the identity
    assert eval_transform(cifar, get_protocol("kd")) is cifar.to_model_space


def test_weight_decay_spares_biases_and_norms_in_both_training_paths():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    opt = OptimizerSpec("adamw", weight_decay=0.01, no_decay_1d=True).make(list(net.parameters()), 1e-3)
    decayed, spared = opt.param_groups
    assert decayed["weight_decay"] == 0.01 and [p.ndim for p in decayed["params"]] == [4, 2]
    assert spared["weight_decay"] == 0.0 and all(p.ndim == 1 for p in spared["params"]) and len(spared["params"]) == 4
    stacked = [torch.zeros(3, *p.shape) for p in net.parameters()]  # 3 seeds along dim 0 (the batched path)
    decayed, spared = OptimizerSpec("adamw", no_decay_1d=True).make(stacked, 1e-3, stacked=True).param_groups
    assert [p.ndim for p in decayed["params"]] == [5, 3] and all(p.ndim == 2 for p in spared["params"])
    (only,) = OptimizerSpec("adamw", weight_decay=0.01).make(list(net.parameters()), 1e-3).param_groups
    assert only["weight_decay"] == 0.01 and len(only["params"]) == 6


def test_new_protocol_versions_change_record_hashes_and_leave_the_others_alone():
    # Hashes of the protocols' identities before this change (git HEAD 694900b): kd-rded and kd-cvdd moved with their
    # versions; the rest (and so the demo's records) did not.
    before = {"kd": "53c85a57828e8b49", "kd-quick": "99cde55d73c0c0c3", "kd-infer": "85e11524f91c5a9f",
              "kd-sre2l-tiny": "4950305982fd3e45", "mtt": "8a8d3b4e73d9d803", "quick": "eb32e62d79ec1a00"}
    for name, digest in before.items():
        assert json_sha256(get_protocol(name).to_dict(), 16) == digest, name
    for name, old in (("kd-rded", "5aa97edac9daca20"), ("kd-cvdd", "4706ab351b7ec01e")):
        assert json_sha256(get_protocol(name).to_dict(), 16) != old and get_protocol(name).version >= 2
