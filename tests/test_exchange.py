"""Export and import of distilled sets (dd_bench/exchange) and the Python API ``dd_bench.score``: round trips for
every format, each importer on small files in that repository's layout, and bad input (one line, exit 2, nothing
half-written)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from dd_bench.app.cli import main
from dd_bench.errors import UserError
from dd_bench.exchange import export_synset, import_set
from dd_bench.exchange.pixels import to_pixels
from dd_bench.methods import create_method
from dd_bench.synset import load_synset, read_meta, save_synset


@pytest.fixture(scope="module")
def sets(digits, tmp_path_factory):
    """A float model-space set with soft labels and a learned lr (DATM-like), and a uint8 coreset."""
    root = tmp_path_factory.mktemp("sets")
    real = digits.without_test()
    dm = create_method("dm", iterations=2, batch_real=16).distill(real, ipc=2, seed=0, progress=False)
    dm.soft_labels = torch.randn(len(dm.labels), 10, generator=torch.Generator().manual_seed(0))
    dm.label_kind, dm.learned_lr, dm.label_source = "soft_logits", 0.0123, None
    dm.__post_init__()
    coreset = create_method("random").distill(real, ipc=2, seed=0, progress=False)
    return save_synset(dm, root / "dm"), save_synset(coreset, root / "random")


@pytest.fixture(scope="module")
def digits():
    from dd_bench.data import load_dataset

    return load_dataset("digits", progress=False)


@pytest.mark.parametrize("fmt", ["npz", "pt"])
def test_npz_and_pt_round_trip_exactly(sets, digits, tmp_path, fmt):
    for directory in sets:
        original = load_synset(directory)
        out = export_synset(directory, fmt=fmt, out=tmp_path / f"{directory.name}-{fmt}")
        sheet = (out / "datasheet.json").read_text()
        assert '"licence": "UCI Optical Recognition' in sheet and (out / "README.md").is_file()
        back = load_synset(import_set("npz", out, real=digits, out=tmp_path / f"{directory.name}-{fmt}-in"))
        assert torch.equal(back.images, original.images) and torch.equal(back.labels, original.labels)
        assert back.image_encoding == original.image_encoding and back.learned_lr == original.learned_lr
        if original.soft_labels is not None:
            assert torch.equal(back.soft_labels, original.soft_labels)


def test_npz_holds_pixels_for_users(sets, tmp_path):
    out = export_synset(sets[0], fmt="npz", out=tmp_path / "x")
    with np.load(out / "synset.npz", allow_pickle=False) as f:
        pixels, stored = f["images"], f["images_stored"]
    assert pixels.min() >= 0 and pixels.max() <= 1 and pixels.shape == stored.shape
    meta = read_meta(sets[0])
    expected = to_pixels(torch.from_numpy(stored), encoding="model", image_space=meta["image_space"])
    np.testing.assert_allclose(pixels, expected.numpy())


def test_imagefolder_round_trip_within_one_8_bit_step(sets, digits, tmp_path):
    dm_dir, coreset_dir = sets
    for directory, exact in ((dm_dir, False), (coreset_dir, True)):
        original = load_synset(directory)
        out = export_synset(directory, fmt="imagefolder", out=tmp_path / directory.name)
        assert len(list((out / "train").glob("*/*.png"))) == len(original.labels)
        assert (out / "train" / "003_3").is_dir()
        back = load_synset(import_set("imagefolder", out, real=digits, out=tmp_path / f"{directory.name}-in"))
        assert torch.equal(back.labels, original.labels) and back.image_encoding == "uint8"
        if exact:
            assert torch.equal(back.images, original.images)
        else:
            before = to_pixels(original.images, encoding="model", image_space=original.image_space)
            assert float((back.images.float() / 255 - before).abs().max()) <= 0.5 / 255 + 1e-6


def test_the_same_evaluation_after_a_round_trip(sets, digits, tmp_path):
    from dd_bench.eval import custom_protocol
    from dd_bench.eval.evaluate import evaluate

    protocol = custom_protocol("quick", epochs=3)
    out = export_synset(sets[0], fmt="npz", out=tmp_path / "x")
    back = load_synset(import_set("npz", out, real=digits, out=tmp_path / "in"))
    a, = evaluate(load_synset(sets[0]), real=digits, protocol=protocol, models=["mlp"], seeds=[0], progress=False)
    b, = evaluate(back, real=digits, protocol=protocol, models=["mlp"], seeds=[0], progress=False)
    assert a.accuracies == b.accuracies


def test_hf_export_needs_datasets_or_round_trips(sets, digits, tmp_path):
    try:
        import datasets
    except ImportError:
        with pytest.raises(UserError, match="format=hf needs the datasets package"):
            export_synset(sets[1], fmt="hf", out=tmp_path / "hf")
        assert not (tmp_path / "hf").exists() and not list(tmp_path.glob(".hf.*"))  # nothing half-written
        return
    out = export_synset(sets[1], fmt="hf", out=tmp_path / "hf")
    ds = datasets.load_from_disk(str(out))
    original = load_synset(sets[1])
    images = torch.stack([torch.from_numpy(np.asarray(im)).reshape(8, 8, -1).permute(2, 0, 1) for im in ds["image"]])
    assert torch.equal(images, original.images) and ds["label"] == original.labels.tolist()


def _digits_tensors(n_per_class=2):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(10 * n_per_class, 1, 8, 8, generator=g)
    return images, torch.arange(10).repeat_interleave(n_per_class)


def test_an_mtt_set_without_its_lr_file_imports_and_says_what_that_means(digits, tmp_path, capsys):
    images, labels = _digits_tensors()
    torch.save(images, tmp_path / "images_best.pt")  # as MTT's distill.py saves it: the lr goes to wandb only
    torch.save(labels, tmp_path / "labels_best.pt")
    s = load_synset(import_set("mtt", tmp_path, real=digits, out=tmp_path / "a", space="normalized"))
    assert s.learned_lr is None
    assert "no synthetic_lr_best.pt or lr_best.pt" in capsys.readouterr().err


def test_mtt_datm_and_dc_files_import(digits, tmp_path):
    images, labels = _digits_tensors()
    mtt = tmp_path / "mtt"
    mtt.mkdir()
    torch.save(images, mtt / "images_best.pt")
    torch.save(labels, mtt / "labels_best.pt")
    torch.save(torch.tensor(0.01), mtt / "synthetic_lr_best.pt")
    s = load_synset(import_set("mtt", mtt, real=digits, out=tmp_path / "a", space="normalized"))
    assert torch.equal(s.images, images) and s.learned_lr == pytest.approx(0.01) and s.ipc == 2
    assert s.provenance["imported"]["files_sha256"]["images_best.pt"]
    assert s.provenance["imported"]["files_sha256"]["synthetic_lr_best.pt"]  # the lr is part of what was imported

    datm = tmp_path / "datm"
    datm.mkdir()
    soft = torch.randn(20, 10) + 5 * torch.nn.functional.one_hot(labels, 10)  # learned logits, argmax its class
    torch.save(images, datm / "images_best.pt")
    torch.save(soft, datm / "labels_best.pt")
    torch.save(torch.tensor([0.02]), datm / "lr_best.pt")
    s = load_synset(import_set("datm", datm, real=digits, out=tmp_path / "b", space="normalized"))
    assert torch.equal(s.soft_labels, soft) and torch.equal(s.labels, soft.argmax(1))
    assert s.label_kind == "soft_logits" and s.learned_lr == pytest.approx(0.02)
    # Learning moves some rows' arg-max (DATM learns the logits freely): the class stays the row's class-major block.
    drifted = soft.clone()
    drifted[0, 7], drifted[5, 0] = 100.0, 100.0
    torch.save(drifted, datm / "labels_best.pt")
    s = load_synset(import_set("datm", datm, real=digits, out=tmp_path / "b2", space="normalized"))
    assert torch.equal(s.labels, labels) and torch.equal(s.soft_labels, drifted) and s.ipc == 2
    torch.save(images[:19], datm / "images_best.pt")
    torch.save(drifted[:19], datm / "labels_best.pt")
    with pytest.raises(UserError, match="class-major blocks"):
        import_set("datm", datm, real=digits, out=tmp_path / "b3", space="normalized")

    res = tmp_path / "res_DC_digits_ConvNet_2ipc.pt"
    # As main.py / main_DM.py save it: the accuracies are numpy float64 scalars (evaluate_synset's acc_test).
    accs = {"ConvNet": [np.float64(0.5616), np.float64(0.5485)]}
    torch.save({"data": [[images * 0, labels], [images, labels]], "accs_all_exps": accs}, res)
    s = load_synset(import_set("dc", res, real=digits, out=tmp_path / "c", space="normalized"))
    assert torch.equal(s.images, images)  # the last experiment


def test_bad_imports_fail_in_one_line_and_leave_nothing(digits, tmp_path):
    images, labels = _digits_tensors()
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "images_best.pt").write_bytes(pickle.dumps({"x": object()}))
    torch.save(labels, evil / "labels_best.pt")
    with pytest.raises(UserError, match="weights_only=True"):
        import_set("mtt", evil, real=digits, out=tmp_path / "o1", space="normalized")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    torch.save(torch.randn(20, 3, 32, 32), wrong / "images_best.pt")
    torch.save(labels, wrong / "labels_best.pt")
    with pytest.raises(UserError, match=r"images of shape \(20, 3, 32, 32\) do not fit digits \(N, 1, 8, 8\)"):
        import_set("mtt", wrong, real=digits, out=tmp_path / "o2", space="normalized")
    pixels = tmp_path / "pixels"
    pixels.mkdir()
    torch.save(torch.rand(20, 1, 8, 8), pixels / "images_best.pt")
    torch.save(labels, pixels / "labels_best.pt")
    with pytest.raises(UserError, match="look like pixels in"):
        import_set("mtt", pixels, real=digits, out=tmp_path / "o3", space="normalized")
    with pytest.raises(UserError, match="declare the images' space"):
        import_set("mtt", pixels, real=digits, out=tmp_path / "o4")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(("o", ".o"))]


@pytest.mark.parametrize("args,expected", [
    (["export", "synset=x", "format=tiff", "out=y"], "Unknown export format 'tiff'; available: imagefolder, npz"),
    (["import", "format=kip", "path=x", "out=y"], "Unknown import format 'kip'; available: mtt, datm, dc"),
    (["export", "format=npz"], "export needs synset=, out="),
])
def test_exchange_bad_input_exits_2(args, expected, tmp_path, capsys):
    code = main([*args, f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")])
    text = "".join(capsys.readouterr())
    assert code == 2 and expected in text and "Traceback" not in text


def test_score_api_on_users_tensors(sets, digits):
    import dd_bench
    from dd_bench.eval import get_protocol
    from dd_bench.eval.evaluate import evaluate

    original = load_synset(sets[1])  # uint8 pixels of a random subset
    records = dd_bench.score(original.images, original.labels, dataset="digits", protocol="quick", models=["mlp"],
                             seeds=[0, 1], space="uint8", device="cpu")
    expected, = evaluate(original, real=digits, protocol=get_protocol("quick"), models=["mlp"], seeds=[0, 1],
                         progress=False)
    assert len(records) == 1 and records[0].accuracies == expected.accuracies and records[0].synset is None
    with pytest.raises(UserError, match="images of shape"):
        dd_bench.score(original.images[:, :, :4], original.labels, dataset="digits", space="uint8")

    # First-hour trial: numpy works, the default space refuses 0-255 data, an out-of-range label is named, and
    # score is found by tab completion.
    from_numpy = dd_bench.score(original.images.numpy(), original.labels.numpy(), dataset="digits", protocol="quick",
                                models=["mlp"], seeds=[0, 1], space="uint8", device="cpu")
    assert from_numpy[0].accuracies == expected.accuracies
    with pytest.raises(UserError, match=r"spans \[0, 2\d\d(\.\d+)?\]: beyond \+-50, not normalized values "
                                        r"\(0-255 pixels: declare space=uint8"):
        dd_bench.score(original.images.float() * 1.0001, original.labels, dataset="digits", models=["mlp"], seeds=1)
    with pytest.raises(UserError, match=r"label 10 is outside the class ids 0..9 of digits"):
        dd_bench.score(original.images, original.labels + 1, dataset="digits", space="uint8")
    assert "score" in dir(dd_bench) and "score" in dd_bench.__all__


def test_teacher_labelled_sets_export_self_contained_or_materialised(compose_cfg, tmp_path):
    import json

    from dd_bench.app.tasks import run

    made = run(compose_cfg("task=distill", "method=rded", "method.teacher=digits_convnet_bn_w32_d2",
                           "method.mipc=20", "method.num_crop=2"))
    out = run(compose_cfg("task=export", f"synset={made['synset']}", "format=npz", f"out={tmp_path / 'a'}"))["out"]
    sheet = json.loads((tmp_path / "a" / "datasheet.json").read_text())
    assert sheet["labels"]["export"].startswith("self-contained: the weights") and sheet["assets"]["bytes"] > 0
    (weights,) = (tmp_path / "a" / "assets" / "teachers").glob("*/weights.safetensors")
    assert weights.stat().st_size == sheet["assets"]["bytes"] and out == str(tmp_path / "a")
    run(compose_cfg("task=export", f"synset={made['synset']}", "format=npz", f"out={tmp_path / 'b'}",
                    "materialise=kd-quick"))
    sheet = json.loads((tmp_path / "b" / "datasheet.json").read_text())
    assert "materialised for protocol kd-quick" in sheet["labels"]["export"]
    assert not (tmp_path / "b" / "assets").exists()
    with np.load(tmp_path / "b" / "synset.npz", allow_pickle=False) as f:
        shards = [k for k in f.files if k.startswith("labels.kd-quick") and k.endswith(".logits")]
    assert len(shards) == 200  # one per epoch of kd-quick


def test_export_finds_the_records_beside_the_set_by_default(compose_cfg, tmp_path):
    import json

    from dd_bench.app.tasks import run

    made = run(compose_cfg("task=run", "method=random", "eval=quick", "eval.epochs=2", "models=[mlp]", "seeds=2",
                           "references=[]"))
    out = tmp_path / "export"
    run(compose_cfg("task=export", f"synset={made['synset']}", "format=npz", f"out={out}",
                    f"results={tmp_path / 'elsewhere'}"))  # results= names no directory: the set's own is read
    sheet = json.loads((out / "datasheet.json").read_text())
    assert len(sheet["results"]) == 1 and sheet["results"][0]["model"] == "mlp"
