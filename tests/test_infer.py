"""INFER (decoupled-methods.md §3): the K budget, storage of parts not composites, static logits under MixUp, what
the compensators add over their base images, the demo's skip below the smallest IPC, and bad input.

The issue's quality criterion (INFER at IPC 2 beats a random real subset of IPC 2 with hard labels) is not met on
digits and is not asserted: at IPC 2, K = 1 base image per class for any M < 10, half the real images of the random
subset, and a second real digit is worth about as much as the compensators (INFER 71.1 % vs 67.4-78.1 % by draw;
numbers in conf/preset/infer/digits.yaml and in the test below). What is asserted is the method's own claim: the
compensators add accuracy over their base images under the same label source."""

from __future__ import annotations

import dataclasses
import statistics

import pytest
import torch

from dd_bench.errors import UserError
from dd_bench.eval import evaluate, get_protocol
from dd_bench.labels.static import StaticLogits
from dd_bench.methods import create_method
from dd_bench.methods.decoupled.infer import base_sets_per_ipc, instance_plan, smallest_ipc
from dd_bench.synset import load_synset, read_meta, save_synset
from tests.conftest import preset_options

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
    from dd_bench.app.cli import main

    with pytest.raises(UserError, match="the smallest valid ipc is 2"):
        create_method("infer", **DIGITS_OPTIONS).check_ipc(1, 10)
    argv = ["distill", "method=infer", "ipc=1", "method.teachers=[digits_convnet_bn_w32_d2]",
            f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "h")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "smallest valid ipc is 2" in err[0], err


def base_images_only(synset):
    """The set's K base images per class (plan slot teacher -1) with their own stored labels, no compensators."""
    k, m = synset.provenance["k"], len(synset.provenance["teachers"])
    slots = [j for j, (_, teacher) in enumerate(instance_plan(k, m)) if teacher < 0]
    keep = torch.tensor([c * (m + 1) * k + j for c in range(synset.num_classes) for j in slots])
    return dataclasses.replace(synset, images=synset.images[keep], labels=synset.labels[keep],
                               soft_labels=synset.soft_labels[keep], composition=None, extras={})


def test_compensators_beat_their_base_images_under_the_same_labels(digits):
    """Measured with the digits preset at IPC 2 (kd-quick, ConvNet students 0-2, static labels): the full set vs its
    own base images (K = 1 per class) with the same static logits, distill seeds 0 / 1: 75.6 vs 52.7 % and 68.0 vs
    53.9 % (71.8 vs 53.3 % on average). Asserted with about half the margin as slack. Not asserted, measured
    (distill seeds 0-2): INFER 71.1 %; random real subsets of IPC 2 with hard labels 78.1 % (method=random seeds
    0-2) and 67.4 % (the reference row's subsets 0-2)."""
    kd = get_protocol("kd-quick")

    def acc(synset) -> float:
        return statistics.fmean(evaluate(synset, real=digits, protocol=kd, models=["convnet"], seeds=[0, 1, 2],
                                         progress=False)[0].accuracies)

    full, base = [], []
    for seed in (0, 1):
        synset = create_method("infer", **preset_options("infer")).distill(digits, ipc=2, seed=seed, progress=False)
        subset = base_images_only(synset)
        assert len(subset.images) == 10 and torch.equal(subset.labels, torch.arange(10))
        assert torch.equal(subset.soft_labels, synset.soft_labels[::3])
        full.append(acc(synset))
        base.append(acc(subset))
    assert statistics.fmean(full) > statistics.fmean(base) + 9.0, (full, base)


def test_the_demo_skips_infer_below_its_smallest_ipc_and_says_how_to_run_it(tmp_path, capsys):
    from dd_bench.app.cli import main

    assert main([f"results={tmp_path}", "progress=false", "demo.models=[mlp]", "demo.seeds=1",
                 "demo.methods=[infer,random]", "hydra.run.dir=" + str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert ("note: infer skipped at ipc 1: its smallest ipc on digits is 2 (dd-bench run method=infer ipc=2 "
            "eval=kd-quick") in out and "demo.ipcs=[2] adds it" in out
    assert "demo finished in" in out and not list((tmp_path / "synsets").glob("infer-*"))


def test_same_label_kinds_follow_the_scored_sources():
    from dd_bench.labels import same_label_kinds

    static = {"teachers": [{"key": "k"}], "source": "static"}
    assert same_label_kinds(static, ["auto"]) == ("static",)
    assert same_label_kinds(static, ["auto", "teacher", "hard"]) == ("static", "teacher")
    assert same_label_kinds({**static, "source": "fkd"}, ["auto", "fkd_int8"]) == ("teacher",)
    assert same_label_kinds(static, ["hard"]) == () and same_label_kinds({"source": "static"}, ["auto"]) == ()


def test_a_static_set_is_compared_with_random_subsets_under_static_logits_of_its_teachers(digits, tmp_path,
                                                                                         monkeypatch):
    """INFER's same-label-source row: the teachers' mean logits on each random subset's clean images, stored once
    (not the teachers online), with their bytes counted."""
    import dd_bench.labels.static as static_module
    from dd_bench.eval.reference import random_subset_indices
    from dd_bench.pipeline.references import reference_records
    from dd_bench.teachers.spec import resolve_teacher

    seen = []

    class Recording(static_module.StaticLogits):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.logits.clone())

    monkeypatch.setattr(static_module, "StaticLogits", Recording)
    synset = create_method("infer", **{**DIGITS_OPTIONS, "iterations": 3}).distill(digits, ipc=2, seed=0,
                                                                                  progress=False)
    section = synset.labels_section()
    # A protocol of its own (the description is part of the reference key): computed here, never from the cache.
    protocol = dataclasses.replace(get_protocol("kd-quick"), epochs=2, description=f"test {tmp_path}")
    rows = reference_records(real=digits, protocol=protocol, models=["mlp"], seeds=[0, 1], ipcs=[2],
                             results_dir=tmp_path, kinds=("random_subset",), progress=False, teachers=section,
                             teacher_labels=("static", "teacher"))
    by_labels = {r.storage["label_source"]: r for r in rows}
    assert sorted(by_labels) == ["hard", "static", "teacher"]
    static_row = by_labels["static"]
    assert static_row.extra["label_identity"].startswith("static:teacher:")
    assert static_row.storage["labels_bytes"] == 20 * 8 + 20 * 10 * 4  # class ids + fp32 logits
    assert not static_row.storage.get("eval_assets") and static_row.storage["eval_assets_bytes"] == 0
    assert by_labels["teacher"].storage["eval_assets_bytes"] > 0 and len({r.record_hash for r in rows}) == 3
    teachers = [resolve_teacher(digits, recipe=r, progress=False).module.eval() for r in DIGITS_OPTIONS["teachers"]]
    assert len(seen) == 2 and not static_row.extra["from_cache"]
    for seed, logits in zip([0, 1], seen, strict=True):
        x = digits.to_model_space(digits.train_images[random_subset_indices(digits, 2, seed)])
        with torch.no_grad():
            torch.testing.assert_close(logits, torch.stack([t(x) for t in teachers]).mean(0))
