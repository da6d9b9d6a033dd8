"""Stored images as the papers store them (issue 19 item 6, dd_bench/synset/image_store.py, docs/storage.md): uint8 /
JPEG saving charged as stored, evaluation on the decoded pixels, round trips through export, the default set and hash
unchanged, the decoupled paper presets storing JPEG at PIL's default quality, and bad values in one line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from dd_bench.app.cli import main
from dd_bench.app.tasks import plan_distill, run
from dd_bench.errors import UserError
from dd_bench.exchange import export_synset, import_set
from dd_bench.methods import create_method
from dd_bench.synset import load_synset, read_meta, save_synset
from dd_bench.synset.image_store import apply_image_store, encode_jpeg, store_identity

EXPERIMENTS = Path(__file__).resolve().parent.parent / "conf" / "experiment"
JPEG_PRESETS = sorted(p for prefix in ("sre2l_", "cvdd_", "infer_", "rded_") for p in EXPERIMENTS.glob(f"{prefix}*"))


@pytest.fixture(scope="module")
def dm_set(digits):
    return create_method("dm", iterations=2, batch_real=16).distill(digits.without_test(), ipc=2, seed=0,
                                                                    progress=False)


def _pil_jpeg(pixels: torch.Tensor) -> list[bytes]:
    """What the official scripts do with each uint8 image: PIL .save(".jpg") with no quality argument."""
    out = []
    for a in pixels.permute(0, 2, 3, 1).numpy():
        buf = io.BytesIO()
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, format="JPEG")
        out.append(buf.getvalue())
    return out


def _pil_decode(streams: list[bytes]) -> torch.Tensor:
    arrays = [np.asarray(Image.open(io.BytesIO(s)).convert("L")) for s in streams]
    return torch.from_numpy(np.stack(arrays)).unsqueeze(1)


def _official_uint8(images: torch.Tensor, real) -> torch.Tensor:
    """(x * 255).astype(np.uint8) on the de-normalised, clamped images, in numpy as the official scripts do."""
    return torch.from_numpy((real.to_pixel_space(images).numpy() * 255).astype(np.uint8))


def test_quality_75_is_what_pil_writes_when_no_quality_is_given(dm_set, digits):
    pixels = _official_uint8(dm_set.images, digits)
    assert encode_jpeg(pixels, quality=75) == _pil_jpeg(pixels)
    assert encode_jpeg(pixels, quality=90) != _pil_jpeg(pixels)


def test_uint8_is_charged_one_byte_per_value_and_quantised_as_the_official_scripts(dm_set, digits, tmp_path):
    stored = apply_image_store(dm_set, image_store="uint8", jpeg_quality=75, to_pixels=digits.to_pixel_space)
    n, c, h, w = dm_set.images.shape
    assert stored.image_encoding == "uint8" and stored.storage()["images_bytes"] == n * c * h * w
    assert torch.equal(stored.images, _official_uint8(dm_set.images, digits))  # truncation, not rounding
    back = load_synset(save_synset(stored, tmp_path / "s"))
    assert torch.equal(back.images, stored.images) and back.storage() == stored.storage()
    assert back.provenance["image_store"]["store"] == "uint8"


def test_jpeg_is_charged_the_jpeg_bytes_and_stores_nothing_else(dm_set, digits, tmp_path):
    stored = apply_image_store(dm_set, image_store="jpeg", jpeg_quality=75, to_pixels=digits.to_pixel_space)
    streams = _pil_jpeg(_official_uint8(dm_set.images, digits))
    storage = stored.storage()
    assert storage["images_bytes"] == sum(len(s) for s in streams) and storage["dtype"] == "jpeg q75"
    assert storage["total_bytes"] == storage["images_bytes"] + storage["labels_bytes"]
    directory = save_synset(stored, tmp_path / "s")
    tensors = load_file(str(directory / "synset.safetensors"))
    assert set(tensors) == {"labels", "images.jpeg"}  # the pixels are never written, only the JPEG files
    assert tensors["images.jpeg"].numpy().tobytes() == b"".join(streams)
    meta = read_meta(directory)
    assert meta["storage"] == storage and meta["composition"]["lengths"] == [len(s) for s in streams]
    back = load_synset(directory)
    assert torch.equal(back.images, _pil_decode(streams)) and back.image_encoding == "uint8"


def test_evaluation_trains_on_the_decoded_pixels(dm_set, digits, monkeypatch):
    import importlib

    from dd_bench.eval import custom_protocol

    evaluate_module = importlib.import_module("dd_bench.eval.evaluate")  # the package re-exports a same-named function

    stored = apply_image_store(dm_set, image_store="jpeg", jpeg_quality=75, to_pixels=digits.to_pixel_space)
    decoded = _pil_decode(_pil_jpeg(_official_uint8(dm_set.images, digits)))
    seen = {}
    real_train = evaluate_module.train_and_score

    def spy(**kwargs):
        seen.update(images=kwargs["images"].cpu(), transform=kwargs["transform"])
        return real_train(**kwargs)

    monkeypatch.setattr(evaluate_module, "train_and_score", spy)
    protocol = custom_protocol("quick", epochs=1)
    (result,) = evaluate_module.evaluate(stored, real=digits, protocol=protocol, models=["mlp"], seeds=[0],
                                         progress=False)
    assert torch.equal(seen["images"], decoded)  # JPEG artefacts included: not the float images
    assert seen["transform"] == digits.to_model_space  # normalised from the pixels, as ToTensor + Normalize
    assert result.extra["storage"]["images_bytes"] == stored.storage()["images_bytes"]


@pytest.mark.parametrize("fmt", ["npz", "pt", "imagefolder"])
def test_a_jpeg_set_round_trips_through_export(dm_set, digits, tmp_path, fmt):
    stored = apply_image_store(dm_set, image_store="jpeg", jpeg_quality=75, to_pixels=digits.to_pixel_space)
    directory = save_synset(stored, tmp_path / "s")
    out = export_synset(directory, fmt=fmt, out=tmp_path / "export")
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["images"]["stored_as"] == "jpeg q75" and sheet["images"]["image_store"]["quality"] == 75
    if fmt == "imagefolder":  # the stored files themselves, byte for byte
        files = sorted((out / "train").glob("*/*.jpg"), key=lambda p: p.name)
        assert b"".join(f.read_bytes() for f in files) == stored.extras["images.jpeg"].numpy().tobytes()
    back = load_synset(import_set("imagefolder" if fmt == "imagefolder" else "npz", out, real=digits,
                                  out=tmp_path / "in"))
    assert torch.equal(back.images, stored.images) and torch.equal(back.labels, stored.labels)
    assert back.storage()["images_bytes"] == stored.storage()["images_bytes"]  # still charged as the JPEG files
    assert back.composition["kind"] == "jpeg" and back.storage()["extras_bytes"] == 0


def test_hf_export_holds_the_decoded_pixels(dm_set, digits, tmp_path):
    datasets = pytest.importorskip("datasets")
    stored = apply_image_store(dm_set, image_store="jpeg", jpeg_quality=75, to_pixels=digits.to_pixel_space)
    ds = datasets.load_from_disk(str(export_synset(save_synset(stored, tmp_path / "s"), fmt="hf",
                                                   out=tmp_path / "hf")))
    images = torch.stack([torch.from_numpy(np.array(im)).reshape(8, 8, -1).permute(2, 0, 1) for im in ds["image"]])
    assert torch.equal(images, stored.images)


def test_the_default_store_leaves_the_set_and_its_identity_as_before(compose_cfg, digits, monkeypatch, dm_set):
    import dd_bench.results.keys as keys

    assert apply_image_store(dm_set, image_store="native", jpeg_quality=75, to_pixels=digits.to_pixel_space) \
        is dm_set
    hashed = []
    monkeypatch.setattr(keys, "json_sha256", lambda obj: hashed.append(obj) or f"{len(hashed):064d}")
    plan_distill(compose_cfg("task=distill", "method=random"), digits)
    plan_distill(compose_cfg("task=distill", "method=random", "image_store=jpeg"), digits)
    plan_distill(compose_cfg("task=distill", "method=random", "image_store=jpeg", "jpeg_quality=90"), digits)
    plan_distill(compose_cfg("task=distill", "method=random", "image_store=uint8"), digits)
    native, jpeg, jpeg90, uint8 = hashed
    # The identity of a default set names exactly what it named before the option existed.
    assert set(native) == {"v", "method", "options", "dataset", "data", "ipc", "seed", "validation"}
    assert jpeg == {**native, "image_store": {"store": "jpeg", "quality": 75}}
    assert jpeg90["image_store"] == {"store": "jpeg", "quality": 90} and uint8["image_store"] == {"store": "uint8"}
    assert store_identity("native", 75) is None


def test_distill_stores_as_asked_in_its_own_directory(compose_cfg, digits):
    native = run(compose_cfg("task=distill", "method=dm", "method.iterations=2", "method.batch_real=16"))
    jpeg = run(compose_cfg("task=distill", "method=dm", "method.iterations=2", "method.batch_real=16",
                           "image_store=jpeg"))
    assert native["synset"] != jpeg["synset"] and native["set_hash"] != jpeg["set_hash"]
    a, b = load_synset(native["synset"]), load_synset(jpeg["synset"])
    assert a.image_encoding == "model" and "image_store" not in a.provenance and a.composition is None
    assert b.composition["kind"] == "jpeg" and b.storage()["images_bytes"] == len(b.extras["images.jpeg"])
    # The same distillation underneath: the JPEG set is the native set's images, quantised and encoded.
    expected = b"".join(_pil_jpeg(_official_uint8(a.images, digits)))
    assert b.extras["images.jpeg"].numpy().tobytes() == expected


def test_infer_static_logits_are_taken_on_the_stored_images(digits, tmp_path):
    from dd_bench.methods.decoupled.infer import static_logits
    from dd_bench.pipeline.distill import distill_to_disk
    from dd_bench.teachers.spec import resolve_teachers

    options = {"teachers": ["digits_convnet_bn_w64_d2", "digits_convnet_bn_w32_d2"], "iterations": 3, "jitter": 1}
    synset, _, _ = distill_to_disk(method="infer", method_kwargs=options, real=digits, ipc=2, seed=0,
                                   out=tmp_path / "s", progress=False, image_store="jpeg")
    assert synset.composition["kind"] == "jpeg" and "infer.base" not in synset.extras  # the composites, as saved
    real = digits.without_test()
    teachers = resolve_teachers(real, recipes=options["teachers"], progress=False)
    expected = static_logits([t.module for t in teachers], real.to_model_space(synset.images))
    assert torch.allclose(load_synset(tmp_path / "s").soft_labels, expected, atol=1e-5)


@pytest.mark.parametrize("path", JPEG_PRESETS, ids=[p.stem for p in JPEG_PRESETS])
def test_decoupled_paper_presets_store_jpeg_at_the_official_quality(compose_cfg, path):
    raw = yaml.safe_load(path.read_text())
    assert raw["image_store"] == "jpeg" and raw["jpeg_quality"] == 75
    cfg = compose_cfg("task=run", f"experiment={path.stem}")
    assert cfg.image_store == "jpeg" and cfg.jpeg_quality == 75


def test_digits_presets_and_the_demo_keep_the_native_store(compose_cfg):
    for method in ("sre2l", "cvdd", "infer", "rded", "dm", "random"):
        cfg = compose_cfg("task=run", f"method={method}")
        assert cfg.image_store == "native" and cfg.jpeg_quality == 75, method
    assert compose_cfg().image_store == "native"


@pytest.mark.parametrize("override,message", [
    ("image_store=png", "Unknown image_store 'png'; available: native, uint8, jpeg"),
    ("jpeg_quality=0", "jpeg_quality=0: an integer from 1 to 100"),
    ("jpeg_quality=90", "jpeg_quality=90 only applies with image_store=jpeg"),
])
def test_bad_values_fail_in_one_line_before_any_work(compose_cfg, tmp_path, capsys, override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        run(compose_cfg("task=run", "method=dm", override))
    code = main(["distill", "method=dm", override, f"results={tmp_path}", "progress=false",
                 f"hydra.run.dir={tmp_path / 'hydra'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "synsets").exists()  # nothing distilled
