"""The `mtt` family's numbers are pinned: a reshape of the training layer must not move them.

Values recorded on 2026-12-01 (torch 2.14.1, CPU) from the trainer before the decoupled family's reshape: a random
digits IPC 2 set, `mtt` with 5 passes (decay after pass 3), seeds 0 and 1. Accuracies are exact; the parameter sums
(a fingerprint of the whole trajectory: init, shuffles, DSA draws, SGD, the decay with a fresh optimiser) agree to
1e-6 relative, vmap's reassociation included.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dd_bench.eval import custom_protocol, evaluate
from dd_bench.eval.mtt import make_augment, train_networks
from dd_bench.methods import create_method

PROTOCOL = custom_protocol("mtt", epochs=4)


@pytest.fixture(scope="module")
def random_set(digits):
    return create_method("random").distill(digits, ipc=2, seed=0, progress=False)


def _param_sums(trained) -> list[float]:
    return [float(sum(v.double().sum() for v in trained.seed_parameters(i).values())) for i in range(2)]


@pytest.mark.parametrize("batched", [False, True])
def test_hard_label_accuracies_are_pinned(digits, random_set, batched):
    results = evaluate(random_set, real=digits, protocol=PROTOCOL, models=["convnet", "mlp"], seeds=[0, 1],
                       batched=batched, progress=False)
    assert [r.accuracies for r in results] == [[11.1111, 10.8333], [14.4444, 10.0]]


def test_soft_label_accuracies_are_pinned(digits, random_set):
    g = torch.Generator().manual_seed(0)
    soft = dataclasses.replace(random_set, images=digits.to_model_space(random_set.images), image_encoding="model",
                               soft_labels=torch.randn(len(random_set.labels), 10, generator=g) * 3,
                               label_kind="soft_logits")
    (result,) = evaluate(soft, real=digits, protocol=PROTOCOL, models=["mlp"], seeds=[0, 1], batched=False,
                         progress=False)
    assert result.accuracies == [11.9444, 9.4444]


@pytest.mark.parametrize("model,augment,batched,expected", [
    ("mlp", False, False, [6.379173588938329, 2.052620711923737]),
    ("convnet", True, False, [404.1786251766943, 374.68468739228285]),
    ("convnet", True, True, [404.1786202623835, 374.6846871237372]),
])
def test_trained_parameters_are_pinned(digits, random_set, model, augment, batched, expected):
    trained = train_networks(model=model, images=random_set.images, targets=random_set.labels, num_classes=10,
                             protocol=PROTOCOL, lr=0.01, seeds=[0, 1],
                             augment=make_augment(digits, PROTOCOL) if augment else None,
                             transform=digits.to_model_space, batched=batched, progress=False)
    assert _param_sums(trained) == pytest.approx(expected, rel=1e-6)
