"""HeLlO (decoupled-methods.md §6, §7.3), a reconstruction: the projector (LoRA identity at start, bytes by hand, the
backbone as an asset), the open_clip loading path, the online projector label source, the compressed-FKD
baselines, refusing the target teacher, and its label quality on digits."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from dd_bench.errors import UserError, UserFileNotFoundError
from dd_bench.labels.quantised import (
    compressed_bytes_per_row,
    int8_roundtrip,
    probabilities_as_logits,
    topk_renorm_roundtrip,
    topk_smooth_probabilities,
)
from dd_bench.labels.sources import check_label_source, resolve_labels
from dd_bench.methods import METHODS, create_method
from dd_bench.projector.backbone import load_backbone
from dd_bench.projector.lora import adaptable_layers
from dd_bench.projector.projector import Projector, lora_parameter_count, projector_bytes
from dd_bench.seeding import make_generator
from dd_bench.synset import load_synset, save_synset
from tests.conftest import preset_options

SUITE = {"kind": "suite", "recipe": "digits_convnet_bn_w32_d2", "classes": [0, 1, 2, 3, 4]}


def _projector(digits, rank=4):
    backbone = load_backbone(digits, SUITE, progress=False)
    return Projector(backbone, num_classes=10, rank=rank, alpha=float(rank),
                     generator=make_generator(0, "test", "lora")), backbone


def test_lora_adapters_start_as_the_identity(digits):
    projector, _ = _projector(digits)
    frozen = load_backbone(digits, SUITE, progress=False).module  # the same backbone without adapters
    x = digits.to_model_space(digits.train_images[:16])
    assert projector.layers == ["features.0", "features.4"]  # both convs; the unused classifier is left alone
    assert all(float(p.detach().abs().max()) > 0 for n, p in projector.trainable().items() if n.endswith("lora_A"))
    with torch.no_grad():
        assert torch.equal(projector.backbone(x), frozen(x))
        projector.head.weight.normal_(generator=torch.Generator().manual_seed(0))
        expected = projector.head(torch.nn.functional.normalize(frozen(x), dim=-1))
        assert torch.equal(projector(x), expected)
    # Only the adapters and the head train; the backbone's own weights are frozen.
    trainable = {n for n, p in projector.named_parameters() if p.requires_grad}
    assert trainable == {f"backbone.net.{n}" for n in ("features.0.lora_A", "features.0.lora_B", "features.4.lora_A",
                                                       "features.4.lora_B")} | {"head.weight", "head.bias"}


def test_adapter_and_head_bytes_by_hand_and_the_backbone_is_an_asset(digits):
    projector, backbone = _projector(digits)
    stored = projector.stored_tensors(torch.float16)
    # Digits ConvNet-BN w32 d2 on 1-channel 8x8: conv 1->32 and conv 32->32, both 3x3; rank 4 on each:
    # r * k^2 * (in + out) = 4 * 9 * 33 + 4 * 9 * 64 = 3492 adapter parameters; head 10 x 128 + 10 = 1290.
    assert projector_bytes(stored) == {"projector.adapters": 3492 * 2, "projector.head": 1290 * 2}
    assert lora_parameter_count([("conv", (32, 1, 3, 3)), ("conv", (32, 32, 3, 3))], 4) == 3492
    frozen = load_backbone(digits, SUITE, progress=False).module.net  # without adapters
    assert backbone.identity["bytes"] == sum(t.numel() * t.element_size() for t in frozen.state_dict().values())
    assert len(backbone.identity["sha256"]) == 64  # of the cached weights file: the asset's identity


def test_projector_bytes_are_under_one_percent_of_fkd_labels_at_cifar100_ipc10():
    """Analytically, at the CIFAR-100 IPC 10 preset's shape: fp16 adapters of its rank on every conv / linear of
    the CIFAR ResNet-18 plus a 512 x 100 head, against 300 epochs of fp16 FKD logits for 1,000 images."""
    from dd_bench.models import create_model
    from dd_bench.resources import CONF_DIR

    text = (CONF_DIR / "experiment" / "hello_cifar100_ipc10.yaml").read_text()
    rank = int(next(line.split(":")[1].split("#")[0] for line in text.splitlines() if line.strip().startswith("rank:")))
    net = create_model("resnet18_cifar", num_classes=100, in_channels=3, image_size=(32, 32))
    layers = adaptable_layers(net, exclude=("classifier",))
    shapes = [("linear" if isinstance(net.get_submodule(n), torch.nn.Linear) else "conv",
               tuple(net.get_submodule(n).weight.shape)) for n in layers]
    adapters = lora_parameter_count(shapes, rank)
    head = 512 * 100 + 100
    projector = 2 * (adapters + head)
    fkd_logits = 300 * 1000 * 100 * 2  # the logits alone; the stored augmentation records come on top
    print(f"CIFAR-100 IPC 10, rank {rank}: projector {projector} B vs FKD logits {fkd_logits} B "
          f"({100 * projector / fkd_logits:.2f} %)")
    assert projector < 0.01 * fkd_logits


OPEN_CLIP_TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16,
                                                  "patch_size": 8},
                  "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def test_open_clip_checkpoint_loads_by_path_through_the_real_code(digits, tmp_path):
    open_clip = pytest.importorskip("open_clip")
    from safetensors.torch import save_file

    config = tmp_path / "ddb-tiny-clip.json"
    config.write_text(json.dumps(OPEN_CLIP_TINY))
    open_clip.add_model_config(str(config))
    model = open_clip.create_model("ddb-tiny-clip", pretrained=None).eval()
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    cfg = {"kind": "open_clip", "model": "ddb-tiny-clip", "file": str(weights), "model_config": str(config)}
    backbone = load_backbone(digits, cfg, progress=False)
    x = digits.to_model_space(digits.train_images[:4])
    pixels = digits.to_pixel_space(x).expand(-1, 3, -1, -1)
    pixels = torch.nn.functional.interpolate(pixels, size=(16, 16), mode="bilinear", align_corners=False)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(backbone.module(x), model.visual((pixels - mean) / std), atol=1e-5)
    assert backbone.feature_dim == 16 and backbone.text_head.shape == (10, 16)
    assert backbone.identity["sha256"] and backbone.identity["kind"] == "open_clip"
    with pytest.raises(UserFileNotFoundError, match="does not exist"):
        load_backbone(digits, {**cfg, "file": str(tmp_path / "absent.safetensors")}, progress=False)
    torch.save({"visual.conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(UserError, match="does not match an open_clip ddb-tiny-clip"):
        load_backbone(digits, {**cfg, "file": str(tmp_path / "wrong.pt")}, progress=False)


def test_the_target_teacher_is_refused_as_backbone():
    with pytest.raises(UserError, match="target teacher itself"):
        create_method("hello", teacher="digits_convnet_bn_w64_d2",
                      backbone={"kind": "suite", "recipe": "digits_convnet_bn_w64_d2"})
    with pytest.raises(UserError, match="OTHER data"):
        create_method("hello", teacher="digits_convnet_bn_w64_d2", backbone={"kind": "suite"})
    with pytest.raises(UserError, match="Unknown backbone kind 'clip'; available: suite, open_clip"):
        create_method("hello", backbone={"kind": "clip"})


def test_all_of_the_targets_classes_is_not_other_data(digits):
    with pytest.raises(UserError, match="strict subset"):
        load_backbone(digits, {**SUITE, "classes": list(range(10))}, progress=False)


def test_end_to_end_the_online_projector_is_deterministic(digits, tmp_path):
    from dd_bench.eval import get_protocol

    method = create_method("hello", **METHODS.get("hello").TEST_OPTIONS)
    synset = method.distill(digits.without_test(), ipc=1, seed=0, progress=False)
    assert synset.label_source == "projector" and synset.storage()["extras_bytes"] == 0  # charged as labels
    directory = save_synset(synset, tmp_path / "set")
    loaded = load_synset(directory)
    protocol = get_protocol("kd-quick")
    x = digits.to_model_space(digits.train_images[:32])
    first, second = (resolve_labels("projector", synset=loaded, real=digits, protocol=protocol, progress=False)
                     for _ in range(2))
    assert torch.equal(first.source.logits(x), second.source.logits(x))
    assert first.stored == {"class_ids": 80, **projector_bytes(loaded.extras)}
    assert list(first.assets) == ["backbone:suite:digits_convnet_bn_w32_d2"]
    assert first.identity.startswith("projector:suite:")


def test_compressed_fkd_labels_by_hand():
    z = torch.tensor([[4.0, -2.0, 1.0, 0.5], [0.1, 0.2, -0.3, 0.0]])
    q = int8_roundtrip(z)
    scale = z.abs().amax(1, keepdim=True) / 127
    assert torch.all((q - z).abs() <= scale / 2 + 1e-3)
    top = topk_renorm_roundtrip(z, 2)  # fkd_top<k>_renorm: the old fkd_top<k>, unchanged
    assert torch.equal(top.topk(2, dim=1).indices.sort(1).values, torch.tensor([[0, 2], [0, 1]]))
    assert torch.allclose(torch.softmax(top, 1)[0, [1, 3]], torch.zeros(2))
    kept = torch.softmax(z, 1)[0, [0, 2]]
    assert torch.allclose(torch.softmax(top, 1)[0, [0, 2]], kept / kept.sum(), atol=1e-3)  # FKD's marginal_renorm
    for k in ("top5", "top5_renorm"):  # k fp16 values + k class indices (1 byte below 256 classes, else 2)
        assert compressed_bytes_per_row(k, 100) == 15 and compressed_bytes_per_row(k, 1000) == 20
    assert compressed_bytes_per_row("int8", 100) == 102
    for name in ("fkd_top5", "fkd_top5_renorm"):
        check_label_source(name)
    for bad in ("fkd_topx", "fkd_top0", "fkd_top5_smooth", "fkd_renorm5"):
        with pytest.raises(UserError, match=rf"Unknown label source '{bad}'.*fkd_top<k>, fkd_top<k>_renorm"):
            check_label_source(bad)


def test_marginal_smoothing_keeps_the_teachers_top_k_and_spreads_the_rest_uniformly():
    """FKD's marginal_smoothing_k<k> (FKD/utils_FKD.py:138-162) at the protocol's T: the row sums to 1, the top-k
    entries equal the teacher's probabilities (to fp16), the rest are equal; the kl loss at T sees exactly it."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(6, 100, generator=g) * 3
    for temperature, k in ((1.0, 5), (4.0, 10), (20.0, 1)):
        teacher = torch.softmax(z / temperature, 1)
        p = topk_smooth_probabilities(z, k, temperature=temperature)
        assert torch.allclose(p.sum(1), torch.ones(6), atol=1e-6)
        values, index = teacher.topk(k, dim=1)
        assert torch.allclose(p.gather(1, index), values, rtol=1e-3)  # stored as fp16
        rest = torch.ones_like(p, dtype=torch.bool).scatter_(1, index, False)
        tail = p[rest].view(6, 100 - k)
        assert torch.allclose(tail, tail[:, :1].expand_as(tail), rtol=1e-6)
        assert torch.allclose(tail[:, 0], (1 - values.half().float().sum(1)) / (100 - k), rtol=1e-4)
        logits = probabilities_as_logits(p, temperature=temperature)  # what the kl loss at T is given
        assert torch.allclose(torch.softmax(logits / temperature, 1), p, atol=1e-6)
    # k >= K: the full softmax (RDED's keep_top_k returns p unchanged), still summing to 1
    assert torch.allclose(topk_smooth_probabilities(z[:, :4], 9, temperature=2.0), torch.softmax(z[:, :4] / 2, 1),
                          atol=1e-3)


def test_the_smoothed_top_k_has_a_new_record_identity_and_the_renorm_keeps_the_old_behaviour():
    from dd_bench.eval import get_protocol
    from dd_bench.labels.fkd import fkd_key
    from dd_bench.labels.sources import label_identity

    kd = get_protocol("kd-quick")
    meta = {"labels": {"source": "teacher"}, "label_kind": "hard"}
    old = f"fkd_top5:{fkd_key(kd)}"  # what fkd_top5 (then the renorm form) hashed as before
    smooth, renorm = label_identity(meta, "fkd_top5", kd), label_identity(meta, "fkd_top5_renorm", kd)
    assert smooth == f"fkd_top5_smooth:{fkd_key(kd)}" and renorm == f"fkd_top5_renorm:{fkd_key(kd)}"
    assert len({old, smooth, renorm, label_identity(meta, "fkd_top10", kd)}) == 4
    assert label_identity(meta, "fkd_int8", kd) == f"fkd_int8:{fkd_key(kd)}"  # unchanged


def test_projector_labels_keep_most_of_the_online_teachers_label_quality(digits, tmp_path):
    """Measured (digits preset, IPC 1, kd-quick, students 0-2, distill seed 0), the same images four ways:
    projector 67.6 %, online teacher 67.4 %, stored FKD 54.6 %, hard 70.1 %. On these (real, RDED-selected)
    images soft labels of any kind score below hard labels, so the issue's "half the hard-to-FKD gap" has no
    gap to measure; what holds is that the projector (9.4 KiB of adapters + head) beats the 111 KiB of stored FKD
    labels and keeps most of what the online teacher adds over them: asserted as at least half, with slack for
    3 students."""
    from dd_bench.eval import get_protocol
    from dd_bench.eval.evaluate import evaluate
    from dd_bench.labels.relabel import relabel_to_disk

    synset = create_method("hello", **preset_options("hello")).distill(digits.without_test(), ipc=1, seed=0,
                                                                        progress=False)
    directory = save_synset(synset, tmp_path / "set")
    protocol = get_protocol("kd-quick")
    relabel_to_disk(synset_dir=directory, real=digits, protocol=protocol, progress=False)
    loaded = load_synset(directory)
    acc, stored = {}, {}
    for source in ("projector", "teacher", "fkd"):
        (result,) = evaluate(loaded, real=digits, protocol=protocol, models=["convnet"], seeds=[0, 1, 2],
                             label_source=source, progress=False)
        acc[source] = statistics.fmean(result.accuracies)
        stored[source] = result.extra["storage"]["labels_bytes"]
    print(f"digits IPC 1 kd-quick: {acc}; label bytes {stored}")
    assert stored["projector"] < stored["fkd"]
    assert acc["projector"] - acc["fkd"] >= 0.5 * (acc["teacher"] - acc["fkd"])
    assert acc["projector"] > acc["fkd"] + 3.0


def test_label_sources_score_the_same_images_once_per_source(compose_cfg, digits):
    from dd_bench.app.tasks import run

    overrides = [f"method.{k}={v}" for k, v in METHODS.get("hello").TEST_OPTIONS.items() if k != "backbone"]
    cfg = compose_cfg("task=run", "method=hello", "ipc=1", "seeds=1", "references=[]", "eval=kd-quick",
                      "eval.epochs=2", "label_sources=[projector,hard,fkd_top2,fkd_top2_renorm]", *overrides)
    records = run(cfg)["records"]
    assert [r["storage"]["label_source"] for r in records] == ["projector", "hard", "fkd_top2", "fkd_top2_renorm"]
    assert len({r["set_hash"] for r in records}) == 1 and len({r["record_hash"] for r in records}) == 4
    by_source = {r["storage"]["label_source"]: r["storage"] for r in records}
    assert by_source["fkd_top2"]["labels_bytes"] == by_source["fkd_top2_renorm"]["labels_bytes"]  # same pairs
    identities = [r["extra"]["label_identity"].split(":")[0] for r in records[2:]]
    assert identities == ["fkd_top2_smooth", "fkd_top2_renorm"]  # never the old fkd_top2 records
    assert by_source["projector"]["labels_bytes"] > by_source["hard"]["labels_bytes"] == 80
    assert by_source["projector"]["eval_assets_bytes"] > 0 and by_source["hard"]["eval_assets_bytes"] == 0
    assert all("reconstruction" in r["config"]["method"] for r in records)
    cfg = compose_cfg("task=run", "method=hello", "label_sources=[hard,hard]", *overrides)
    with pytest.raises(UserError, match="names a source twice"):
        run(cfg)


def test_an_interrupted_fit_resumes_to_the_same_set(digits, tmp_path, monkeypatch):
    import dd_bench.methods.decoupled.hello as hello_module

    opts = {**METHODS.get("hello").TEST_OPTIONS, "fit_steps": 6, "image_steps": 4, "checkpoint_every": 2}
    real = digits.without_test()
    whole = create_method("hello", **opts).distill(real, ipc=1, seed=0, progress=False)
    calls = {"n": 0}
    original = hello_module.kd_kl

    def crash_on_fifth(*a, **k):  # one call per step: the 5th is fitting step 4, after the checkpoint at 4
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(hello_module, "kd_kl", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        create_method("hello", **opts).distill(real, ipc=1, seed=0, progress=False, checkpoint_dir=tmp_path)
    monkeypatch.setattr(hello_module, "kd_kl", original)
    resumed = create_method("hello", **opts).distill(real, ipc=1, seed=0, progress=False, checkpoint_dir=tmp_path)
    assert resumed.provenance["distill_status"]["fit"]["resumed_from"] == 4
    torch.testing.assert_close(resumed.images, whole.images, rtol=1e-5, atol=1e-6)
    for name, t in whole.extras.items():
        torch.testing.assert_close(resumed.extras[name], t, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind,model", [("timm", "resnet10t"), ("torchvision", "resnet18")])
def test_timm_and_torchvision_checkpoints_load_by_path(digits, tmp_path, kind, model):
    if kind == "timm":
        import timm

        net = timm.create_model(model, pretrained=False, num_classes=7)  # its head is dropped at load
    else:
        import torchvision

        net = torchvision.models.get_model(model, weights=None)
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    cfg = {"kind": kind, "model": model, "file": str(path), "image_size": 32}
    backbone = load_backbone(digits, cfg, progress=False)
    assert backbone.feature_dim == 512 and backbone.identity["sha256"]
    projector = Projector(backbone, num_classes=10, rank=2, alpha=2.0, generator=make_generator(0, "t"))
    assert len(projector.layers) > 10 and not any("fc" == n or n.startswith("head") for n in projector.layers)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match=f"does not match a {kind} {model} state dict"):
        load_backbone(digits, {**cfg, "file": str(tmp_path / "bad.pt")}, progress=False)


def test_a_pickled_object_is_not_a_backbone(digits, tmp_path):
    import pickle

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"weight": object()}))
    with pytest.raises(UserError, match="could not be read"):
        load_backbone(digits, {"kind": "timm", "model": "resnet10t", "file": str(path)}, progress=False)


def test_a_suite_backbone_pretrained_on_another_dataset(tmp_path):
    """MNIST target, Fashion-MNIST backbone (fake files in the torchvision layout): the target's pixels reach the
    backbone renormalised with Fashion-MNIST's mean and std."""
    from dd_bench.data import load_dataset
    from tests.test_data import _write_idx

    _write_idx(tmp_path / "mnist", "MNIST", gz=True)
    _write_idx(tmp_path / "fashion", "FashionMNIST", gz=True)
    target = load_dataset("mnist", root=tmp_path / "mnist", cache_dir=tmp_path / "cache", progress=False)
    cfg = {"kind": "suite", "recipe": "digits_convnet_bn_w32_d2", "dataset": "fashion_mnist",
           "root": str(tmp_path / "fashion")}
    backbone = load_backbone(target, cfg, cache_dir=tmp_path / "cache", progress=False)
    assert backbone.identity["dataset"] == "fashion_mnist" and backbone.identity["pretrain_images"] == 7
    x = target.to_model_space(target.train_images[:3])
    fashion = load_dataset("fashion_mnist", root=tmp_path / "fashion", cache_dir=tmp_path / "cache", progress=False)
    expected = fashion.to_model_space(target.train_images[:3])  # the same pixels in the backbone's own space
    torch.testing.assert_close(backbone.module.adapter(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="backbone.dataset=fashion_mnist has 1x.*must match"):
        from dd_bench.data import load_dataset as load

        load_backbone(load("digits", progress=False), cfg, cache_dir=tmp_path / "cache", progress=False)


def test_the_random_backbone_is_the_labelled_lower_bound(digits):
    backbone = load_backbone(digits, {"kind": "random", "recipe": "digits_convnet_bn_w32_d2"}, seed=3,
                             progress=False)
    again = load_backbone(digits, {"kind": "random", "recipe": "digits_convnet_bn_w32_d2"}, progress=False,
                          expect=backbone.identity)  # rebuilt from the recorded seed
    x = digits.to_model_space(digits.train_images[:4])
    with torch.no_grad():
        assert torch.equal(backbone.module(x), again.module(x))
    assert "lower bound" in backbone.identity["note"] and backbone.identity["bytes"] > 0
