"""The shared evaluator: batched == sequential, the protocol's schedule, soft labels, compatibility, references."""

from __future__ import annotations

import pytest
import torch

from dd_bench.augment import DSA
from dd_bench.eval import check_compatible, custom_protocol, evaluate, get_protocol, reference_result
from dd_bench.eval.mtt import train_networks
from dd_bench.eval.protocol import PROTOCOLS
from dd_bench.methods import create_method
from dd_bench.synset import SynsetError


def _tiny_set(digits, ipc=2):
    return create_method("random").distill(digits, ipc=ipc, seed=0, progress=False)


@pytest.mark.parametrize("model", ["convnet", "mlp"])
@pytest.mark.parametrize("augment", [True, False])
def test_batched_and_sequential_agree_after_three_steps(digits, model, augment):
    x = digits.to_model_space(digits.train_images[:40])
    y = digits.train_labels[:40]
    protocol = custom_protocol("mtt", batch_size=16)
    dsa = DSA(digits.dsa_strategy, image_size=digits.image_size) if augment else None
    kw = dict(model=model, images=x, targets=y, num_classes=10, protocol=protocol, lr=0.05, seeds=[0, 1, 2],
              augment=dsa, max_steps=3, progress=False)
    batched = train_networks(batched=True, **kw)
    sequential = train_networks(batched=False, **kw)
    assert batched.batched and not sequential.batched
    for i in range(3):
        a, b = batched.seed_parameters(i), sequential.seed_parameters(i)
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6)
    # and the seeds really are different networks
    assert not torch.allclose(batched.seed_parameters(0)["classifier.weight"],
                              batched.seed_parameters(1)["classifier.weight"])


def test_mtt_protocol_is_the_official_recipe():
    p = get_protocol("mtt")
    assert (p.passes, p.decay_epoch, p.batch_size, p.lr, p.momentum, p.weight_decay, p.decay_factor) == \
        (1001, 501, 256, 0.01, 0.9, 5e-4, 0.1)
    assert p.ranked and p.augment == "dsa"
    assert p.lr_for(0.03) == 0.03 and p.lr_for(None) == 0.01
    quick = get_protocol("quick")
    assert quick.passes == 300 and quick.decay_epoch == 150 and not quick.ranked
    assert get_protocol("mtt-datm").batch_size == 128 and not get_protocol("mtt-datm").ranked
    with pytest.raises(ValueError, match="available: dc, kd, kd-cvdd, kd-cvdd-eta2, kd-infer, kd-infer-dyn, "
                                         "kd-quick, kd-rded, kd-sre2l-tiny, "
                                         "mtt, mtt-datm, "
                                         "mtt-ftd-warm, mtt-fyi, quick"):
        get_protocol("mttt")
    custom = custom_protocol("mtt", epochs=10)
    assert custom.name == "mtt+custom" and not custom.ranked
    with pytest.raises(ValueError, match=r"Unknown field\(s\) \[.epoch.\] for protocol .mtt."):
        custom_protocol("mtt", epoch=10)
    assert set(PROTOCOLS.list()) >= {"mtt", "quick", "mtt-datm"}


def test_lr_decays_once_with_a_fresh_optimiser(digits, monkeypatch):
    """The lr used by every step: lr for passes 0..decay_epoch, lr*0.1 afterwards, momentum reset at the switch."""
    seen = []
    original_step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append((self.param_groups[0]["lr"], id(self), len(self.state)))
        return original_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    protocol = custom_protocol("mtt", epochs=6, batch_size=100)  # one step per pass; decay after pass 4
    x = digits.to_model_space(digits.train_images[:20])
    train_networks(model="mlp", images=x, targets=digits.train_labels[:20], num_classes=10, protocol=protocol,
                   lr=0.1, seeds=[0], augment=None, batched=False, progress=False)
    lrs = [round(lr, 6) for lr, _, _ in seen]
    assert lrs == [0.1] * 5 + [0.01] * 2
    assert seen[4][1] != seen[5][1] and seen[5][2] == 0  # a new SGD with empty momentum state


def test_evaluate_reports_per_seed_results(digits):
    synset = _tiny_set(digits)
    protocol = custom_protocol("quick", epochs=20)
    (res,) = evaluate(synset, real=digits, protocol=protocol, models=["mlp"], seeds=[0, 1, 2], progress=False)
    assert len(res.accuracies) == 3 and all(0 <= a <= 100 for a in res.accuracies)
    assert res.acc_std > 0 and res.eval_seconds > 0 and res.peak_memory["kind"] == "cpu_process_peak_rss"
    (again,) = evaluate(synset, real=digits, protocol=protocol, models=["mlp"], seeds=[0, 1, 2], progress=False)
    assert again.accuracies == res.accuracies  # seeded: the same seeds give the same networks


def test_soft_labels_train_with_soft_cross_entropy(digits):
    synset = _tiny_set(digits)
    synset.images = digits.to_model_space(synset.images)
    synset.image_encoding = "model"
    synset.soft_labels = torch.nn.functional.one_hot(synset.labels, 10).float() * 20  # ~hard logits
    synset.label_kind = "soft_logits"
    protocol = custom_protocol("quick", epochs=20)
    (soft,) = evaluate(synset, real=digits, protocol=protocol, models=["mlp"], seeds=[0], progress=False)
    synset.soft_labels, synset.label_kind = None, "hard"
    (hard,) = evaluate(synset, real=digits, protocol=protocol, models=["mlp"], seeds=[0], progress=False)
    assert abs(soft.accuracies[0] - hard.accuracies[0]) < 5.0


def test_incompatible_sets_fail_before_training(digits):
    synset = _tiny_set(digits)
    synset.dataset = "cifar10"
    with pytest.raises(SynsetError, match="distilled from 'cifar10'"):
        check_compatible(synset, digits)
    synset = _tiny_set(digits)
    synset.images = digits.to_model_space(synset.images)
    synset.image_encoding = "model"
    synset.image_space = {"space": "zca", "sha256": "x"}
    with pytest.raises(SynsetError, match="dataset.zca=true"):
        check_compatible(synset, digits)


def test_references_are_cached_and_record_subsets(digits, tmp_path):
    protocol = custom_protocol("quick", epochs=5)
    first, cached = reference_result("random_subset", digits, protocol=protocol, model="mlp", seeds=[0, 1],
                                     ipc=1, cache_dir=tmp_path, progress=False)
    assert not cached
    subsets = first.extra["subset_indices"]
    assert len(subsets) == 2 and len(subsets[0]) == 10 and subsets[0] != subsets[1]
    labels = digits.train_labels[torch.tensor(subsets[0])]
    assert sorted(labels.tolist()) == list(range(10))  # one image per class
    second, cached = reference_result("random_subset", digits, protocol=protocol, model="mlp", seeds=[0, 1],
                                      ipc=1, cache_dir=tmp_path, progress=False)
    assert cached and second.accuracies == first.accuracies
    with pytest.raises(ValueError, match="available: full_data, random_subset"):
        reference_result("everything", digits, protocol=protocol, model="mlp", seeds=[0], cache_dir=tmp_path)


def test_a_negative_learned_lr_is_reported_clearly(digits):
    synset = _tiny_set(digits)
    synset.learned_lr = -0.002
    with pytest.raises(SynsetError, match="learned lr is -0.002"):
        evaluate(synset, real=digits, protocol=custom_protocol("quick", epochs=1), models=["mlp"], seeds=[0],
                 progress=False)


def test_every_protocol_is_one_type_that_trains_and_answers():
    """One protocol type: each registered protocol trains and scores itself and answers what callers ask, so no
    caller outside dd_bench/eval switches on its family."""
    import re
    from pathlib import Path

    from dd_bench.eval import EvalProtocol

    for name in PROTOCOLS.list():
        p = get_protocol(name)
        assert isinstance(p, EvalProtocol) and callable(p.train_and_score)
        assert p.cpu_protocol in PROTOCOLS and get_protocol(p.cpu_protocol).trains_by_kd == p.trains_by_kd
        assert p.scores_paper_selection is not p.trains_by_kd
    root = Path(__file__).resolve().parent.parent / "dd_bench"
    switches = [f"{path.relative_to(root)}:{i}" for path in root.rglob("*.py") if path.parent.name != "eval"
                for i, line in enumerate(path.read_text().splitlines(), 1) if re.search(r"\.family\s*[!=]=", line)]
    assert switches == []


def test_moved_names_keep_their_old_import_paths():
    import importlib

    from dd_bench.augment.crop_flip import NoCrop
    from dd_bench.eval import kd, mtt, protocol, trainer

    evaluate_module = importlib.import_module("dd_bench.eval.evaluate")  # the package exports a function of its name

    assert kd.NoCrop is NoCrop
    assert trainer.train_networks is mtt.train_networks and evaluate_module.make_augment is mtt.make_augment
    assert protocol.DatasetRuleProtocol is mtt.DatasetRuleProtocol and protocol.KDProtocol is kd.KDProtocol
    assert protocol.Augment is mtt.Augment and protocol.WarmStartProtocol is mtt.WarmStartProtocol
