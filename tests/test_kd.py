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


def test_cutmix_pastes_one_box_and_mixes_labels_by_its_area(digits):
    from dd_bench.augment.mix import CutMix

    mix = CutMix(alpha=1.0, image_size=(8, 8))
    params = mix.sample_params(6, generator=torch.Generator().manual_seed(5))
    y0, y1, x0, x1 = (int(params[k][0]) for k in ("y0", "y1", "x0", "x1"))
    assert all(torch.all(params[k] == params[k][0]) for k in ("y0", "y1", "x0", "x1"))  # one box per batch
    area = (y1 - y0) * (x1 - x0)
    assert float(params["lam"][0]) == pytest.approx(1 - area / 64)
    x = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 8, 8).contiguous()
    out = mix.apply(x, params)
    perm = params["perm"]
    for i in range(6):
        assert torch.all(out[i, :, y0:y1, x0:x1] == perm[i].float())
        assert float(out[i].sum()) == pytest.approx(i * (64 - area) + float(perm[i]) * area)


def test_paper_comparison_kd_protocols_follow_their_cards(digits):
    rded, infer = get_protocol("kd-rded"), get_protocol("kd-infer")
    assert (rded.epochs, rded.schedule, rded.eta, rded.mix, rded.mix_alpha, rded.temperature, rded.ranked) == \
        (300, "half_cosine", 2.0, "cutmix", 1.0, 20.0, False)
    assert [rded.batch_for(10 * ipc, 10) for ipc in (1, 10, 50)] == [10, 50, 100]
    assert [rded.batch_for(100 * ipc, 100) for ipc in (1, 10, 50)] == [20, 100, 200]
    assert (infer.epochs, infer.batch_size, infer.mix, infer.temperature) == (400, 64, "mixup", 30.0)
    # val_static.py / val_dyn.py test every 10 epochs and report the max: the best-during-training column.
    dyn = get_protocol("kd-infer-dyn")
    assert (infer.best_every, infer.best_from, dyn.epochs, dyn.best_every, dyn.best_from) == (10, 0.0, 80, 10, 0.0)
    aug = rded.augment(digits)
    x = digits.to_model_space(digits.train_images[:4])
    params = aug.sample_params(4, generator=torch.Generator().manual_seed(0))
    assert {"crop.top", "mix.y0", "mix.lam"} <= set(params) and aug.apply(x, params).shape == x.shape


def test_static_logits_are_interpolated_under_mixup():
    from dd_bench.labels.static import StaticLogits

    z = torch.randn(4, 10)
    params = {"mix.lam": torch.full((4,), 0.25), "mix.perm": torch.tensor([1, 0, 3, 2])}
    t = StaticLogits(z, temperature=30.0).targets(torch.zeros(4, 1, 8, 8), torch.arange(4), 0, params)
    torch.testing.assert_close(t.values, 0.25 * z + 0.75 * z[[1, 0, 3, 2]])
    assert t.loss == Loss("kl", temperature=30.0)


def test_sre2l_tiny_protocol_and_teacher_follow_the_authors_scripts():
    from dd_bench.teachers import get_recipe
    from dd_bench.train import WarmupCosine

    p = get_protocol("kd-sre2l-tiny")
    assert (p.epochs, p.batch_size, p.optimizer, p.lr, p.momentum, p.weight_decay, p.mix, p.temperature,
            p.kl_t_squared, p.crop, p.ranked) == (100, 256, "sgd", 0.2, 0.9, 1e-4, "none", 20.0, True,
                                                  "resized_crop", False)
    assert p.lr_schedule() == WarmupCosine(100, 5, 0.01)
    t = get_recipe("sre2l_tiny")
    assert (t.model, t.epochs, t.lr, t.weight_decay, t.batch_size, t.schedule, t.warmup_epochs, t.augment) == \
        ("resnet18_cifar", 50, 0.2, 1e-4, 256, "warmup_cosine", 5, "resized_crop_flip")


@pytest.mark.parametrize("batched", [False, True])
def test_the_best_during_training_is_recorded_beside_the_final_number_without_changing_it(digits, batched):
    import dataclasses

    synset = create_method("random").distill(digits, ipc=1, seed=0, progress=False)
    plain = custom_protocol("kd-quick", epochs=6)
    tracked = dataclasses.replace(plain, best_every=2, best_from=0.5)
    kw = dict(real=digits, models=["mlp"], seeds=[0, 1], progress=False, batched=batched)
    (a,) = evaluate(synset, protocol=plain, **kw)
    (b,) = evaluate(synset, protocol=tracked, **kw)
    assert b.accuracies == a.accuracies  # scoring along the way neither trains nor draws random numbers
    best = b.extra["best_during_training"]
    assert best["epochs_checked"] == [6] and "never ranked" in best["note"]  # index 3 is not > 0.5 * 6
    assert all(x >= y for x, y in zip(best["accuracies"], b.accuracies, strict=True))
    assert "best_during_training" not in a.extra
    assert get_protocol("kd-rded").best_every == 10


def test_best_during_training_checks_follow_rdeds_validation_loop():
    """RDED's validation/main.py:176-181 checks after epoch index e when e % 10 == 9 and e > 0.8 * epochs."""
    from dd_bench.eval.kd import best_checks

    def rded(epochs: int) -> list[int]:
        return [e + 1 for e in range(epochs) if (e % 10 == 9 or e == epochs - 1) and e > epochs * 0.8]

    assert best_checks(300, every=10, after=0.8) == rded(300) == list(range(250, 301, 10))
    assert best_checks(200, every=10, after=0.8) == rded(200) == [170, 180, 190, 200]
    rded_protocol = get_protocol("kd-rded")
    assert best_checks(rded_protocol.epochs, every=rded_protocol.best_every, after=rded_protocol.best_from) == rded(300)
    assert best_checks(400, every=10, after=0.0)[:2] == [10, 20] and best_checks(400, every=0, after=0.8) == []
