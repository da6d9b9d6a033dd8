"""INFER (decoupled-methods.md §3): the K budget, storage of parts not composites, static logits under MixUp and
bad input. No quality test yet: on digits IPC 2 under kd-quick (3 ConvNet students, distill seed 0, teachers
{w64, w32}) INFER scored 75.4 % against 78.9 % for one random real subset of the same IPC with hard labels (distill
seeds 0-1; 67.4 % for the reference row's per-student subsets 0-2): it does not beat random there yet."""

from __future__ import annotations

import pytest
import torch

from dd_bench.errors import UserError
from dd_bench.labels.static import StaticLogits
from dd_bench.methods import create_method
from dd_bench.methods.infer import base_sets_per_ipc, instance_plan, smallest_ipc
from dd_bench.synset import load_synset, read_meta, save_synset

DIGITS_OPTIONS = {"teachers": ["digits_convnet_bn_w64_d2", "digits_convnet_bn_w32_d2"], "iterations": 300,
                  "jitter": 1, "first_bn_multiplier": 1.0}


def test_k_for_the_cards_examples():
    # CIFAR (M = 4 teachers): C10 ipc10 -> 7, ipc50 -> 35; C100 ipc10 -> 9, ipc50 -> 48, ipc100 -> 96.
    assert [base_sets_per_ipc(i, 4, 10) for i in (10, 50)] == [7, 35]
    assert [base_sets_per_ipc(i, 4, 100) for i in (10, 50, 100)] == [9, 48, 96]
    assert [base_sets_per_ipc(i, 3, 1000) for i in (10, 50)] == [9, 49]  # ImageNet, M = 3
    assert base_sets_per_ipc(1, 4, 10) == 0
    # Digits (C = 10): the smallest valid IPC is 2 for any M < 10.
    assert {smallest_ipc(m, 10) for m in range(1, 10)} == {2}
    # Per class: the K base images, then K composites per teacher (ipc_id order: m = j // K - 1, k = j % K).
    assert instance_plan(2, 2) == [(0, -1), (1, -1), (0, 0), (1, 0), (0, 1), (1, 1)]


def test_stores_parts_not_composites_and_rebuilds_them_at_load(digits, tmp_path):
    method = create_method("infer", **{**DIGITS_OPTIONS, "iterations": 5})
    synset = method.distill(digits, ipc=2, seed=0, progress=False)
    k, m, c = 1, 2, 10
    assert synset.images.shape == (c * (m + 1) * k, 1, 8, 8)
    base, ufc = synset.extras["infer.base"], synset.extras["infer.ufc"]
    assert base.dtype == torch.uint8 and base.shape == (k * c, 1, 8, 8)
    assert ufc.dtype == torch.float32 and ufc.shape == (m * k, 1, 8, 8) and ufc.abs().sum() > 0
    # Stored bytes = base images + compensators + logits (+ class ids), by hand.
    storage = synset.storage()
    assert storage["images_bytes"] == k * c * 64 * 1 + m * k * 64 * 4
    assert storage["labels_bytes"] == 30 * 8 + 30 * 10 * 4
    assert storage["extras_bytes"] == 0
    assert storage["images_bytes"] < synset.images.numel() * 4  # the 30 composites are never stored
    # The first instance of each class is its base image unchanged; the others are base + its compensator.
    model = digits.to_model_space(base)
    assert torch.allclose(synset.images[0], model[0])
    assert torch.allclose(synset.images[1], torch.clamp(model[0] + ufc[0], synset.images.min(), synset.images.max()))
    save_synset(synset, tmp_path / "s")
    meta = read_meta(tmp_path / "s")
    assert meta["composition"]["kind"] == "infer_ufc" and meta["storage"]["images_bytes"] == storage["images_bytes"]
    from safetensors.torch import load_file

    assert "images" not in load_file(str(tmp_path / "s" / "synset.safetensors"))
    loaded = load_synset(tmp_path / "s")
    assert torch.equal(loaded.images, synset.images)
    assert torch.equal(loaded.soft_labels, synset.soft_labels) and loaded.label_source == "static"
    # Static logits = the teachers' mean logits on the clean instances.
    from dd_bench.teachers.spec import resolve_teacher

    teachers = [resolve_teacher(digits, recipe=r, progress=False).module.eval() for r in DIGITS_OPTIONS["teachers"]]
    with torch.no_grad():
        expected = torch.stack([t(synset.images) for t in teachers]).mean(0)
    torch.testing.assert_close(synset.soft_labels, expected)
    dyn = create_method("infer_dyn", **{**DIGITS_OPTIONS, "iterations": 5}).distill(digits, ipc=2, seed=0,
                                                                                   progress=False)
    assert torch.equal(dyn.images, synset.images) and dyn.label_source == "teacher" and dyn.soft_labels is None
    assert dyn.storage()["labels_bytes"] == 30 * 8


def test_static_logits_are_interpolated_under_mixup():
    z = torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    source = StaticLogits(z, temperature=30.0)
    params = {"mix.lam": torch.tensor([0.25, 0.25, 0.25]), "mix.perm": torch.tensor([2, 0, 1])}
    t = source.targets(torch.zeros(3, 1, 2, 2), torch.tensor([0, 1, 2]), 0, params)
    assert torch.allclose(t.values, torch.tensor([[1.75, 1.5], [0.75, 0.75], [0.5, 2.75]]))
    assert t.loss.kind == "kl" and t.loss.temperature == 30.0


def test_an_ipc_without_base_sets_fails_in_one_line(tmp_path, capsys):
    from dd_bench.cli import main

    with pytest.raises(UserError, match="the smallest valid ipc is 2"):
        create_method("infer", **DIGITS_OPTIONS).check_ipc(1, 10)
    argv = ["distill", "method=infer", "ipc=1", "method.teachers=[digits_convnet_bn_w32_d2]",
            f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "h")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smallest valid ipc is 2" in err[0], err
