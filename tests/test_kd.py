"""The kd family: its frozen recipe, MixUp replayed on the labels, label sources on the mixed batch."""

from __future__ import annotations

import pytest
import torch

from dd_bench.augment.mix import KDAugment, MixUp
from dd_bench.eval import custom_protocol, evaluate, get_protocol
from dd_bench.labels import MixedLabels, Targets, TeacherLogits
from dd_bench.methods import create_method
from dd_bench.train import Cosine, Loss


def test_kd_v1_is_sre2ls_cifar_recipe():
    kd = get_protocol("kd")
    assert (kd.family, kd.ranked, kd.epochs, kd.batch_size, kd.optimizer, kd.lr, kd.weight_decay, kd.schedule,
            kd.mix, kd.mix_alpha, kd.temperature) == ("kd", True, 400, 128, "adamw", 1e-3, 0.01, "cosine", "mixup",
                                                       0.8, 30.0)
    assert isinstance(kd.lr_schedule(), Cosine) and kd.lr_schedule().t_max == 400
    quick = get_protocol("kd-quick")
    assert not quick.ranked and quick.family == "kd" and get_protocol("mtt").family == "mtt"
    assert "family" in kd.to_dict() and "family" not in get_protocol("mtt").to_dict()  # mtt hashes unchanged


def test_mixup_is_replayed_on_hard_labels(digits):
    aug = get_protocol("kd").augment(digits)
    assert isinstance(aug, KDAugment) and not aug.crop.flip  # digits: no flip
    x = digits.to_model_space(digits.train_images[:6])
    params = aug.sample_params(6, generator=torch.Generator().manual_seed(3))
    lam, perm = float(params["mix.lam"][0]), params["mix.perm"]
    assert torch.all(params["mix.lam"] == lam) and sorted(perm.tolist()) == list(range(6))
    cropped = aug.crop.apply(x, {k[5:]: v for k, v in params.items() if k.startswith("crop.")})
    torch.testing.assert_close(aug.apply(x, params), lam * cropped + (1 - lam) * cropped[perm])
    labels = digits.train_labels[:6]
    t = MixedLabels(labels, 10).targets(x, torch.arange(6), 0, params)
    one_hot = torch.nn.functional.one_hot(labels, 10).float()
    torch.testing.assert_close(t.values, lam * one_hot + (1 - lam) * one_hot[perm])
    assert t.loss.kind == "soft_ce"


def test_mix_params_concatenate_per_group():
    mix = MixUp(alpha=0.8)
    a = {"mix.lam": torch.full((3,), 0.2), "mix.perm": torch.tensor([2, 0, 1])}
    b = {"mix.lam": torch.full((2,), 0.7), "mix.perm": torch.tensor([1, 0])}
    cat = KDAugment.cat_params([a, b], [3, 2])
    assert cat["mix.perm"].tolist() == [2, 0, 1, 4, 3] and cat["mix.lam"].tolist() == pytest.approx([.2] * 3 + [.7] * 2)
    x = torch.arange(5.0).view(5, 1, 1, 1)
    assert mix.apply(x, {"lam": cat["mix.lam"], "perm": cat["mix.perm"]}).flatten().tolist() == \
        pytest.approx([0.2 * 0 + 0.8 * 2, 0.2 * 1 + 0.8 * 0, 0.2 * 2 + 0.8 * 1, 0.7 * 3 + 0.3 * 4, 0.7 * 4 + 0.3 * 3])


def test_a_teacher_label_source_sees_the_mixed_batch_and_uses_kl(digits):
    seen = []

    class Spy(TeacherLogits):
        def targets(self, x_aug, idx, epoch, aug_params) -> Targets:
            seen.append((x_aug.clone(), aug_params))
            return super().targets(x_aug, idx, epoch, aug_params)

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    source = Spy([net], temperature=30.0)
    t = source.targets(torch.zeros(2, 1, 8, 8), torch.arange(2), 0, None)
    assert t.loss == Loss("kl", temperature=30.0) and t.values.shape == (2, 10)
    synset = create_method("random").distill(digits, ipc=1, seed=0, progress=False)
    evaluate(synset, real=digits, protocol=custom_protocol("kd-quick", epochs=2), models=["mlp"], seeds=[0],
             progress=False, label_source=source)
    x_aug, params = seen[-1]
    assert "mix.lam" in params and x_aug.shape == (10, 1, 8, 8)


def test_hard_labels_learn_under_kd_quick(digits):
    """The hard-label random row trains under the kd recipe (above chance, 10 classes)."""
    synset = create_method("random").distill(digits, ipc=1, seed=0, progress=False)
    (result,) = evaluate(synset, real=digits, protocol=custom_protocol("kd-quick", epochs=150), models=["convnet"],
                         seeds=[0, 1], progress=False)
    assert min(result.accuracies) > 30.0, result.accuracies


def test_a_label_source_needs_a_kd_protocol(digits):
    from dd_bench.errors import UserError

    synset = create_method("random").distill(digits, ipc=1, seed=0, progress=False)
    with pytest.raises(UserError, match="needs a kd protocol"):
        evaluate(synset, real=digits, protocol=custom_protocol("quick", epochs=1), models=["mlp"], seeds=[0],
                 progress=False, label_source=MixedLabels(synset.labels, 10))
