"""SyntheticSet format: round trip, checksum, version, foreign files, storage accounting, preview."""

from __future__ import annotations

import json

import pytest
import torch

from dd_bench.synset import SynsetError, SyntheticSet, load_synset, read_meta, save_synset


def _set(**kw) -> SyntheticSet:
    base = dict(images=torch.randn(20, 1, 8, 8), labels=torch.arange(10).repeat_interleave(2), dataset="digits",
                ipc=2, method="dm", class_names=[str(i) for i in range(10)],
                image_space={"space": "mean_std", "mean": [0.3], "std": [0.4]})
    base.update(kw)
    return SyntheticSet(**base)


def test_round_trip_keeps_everything(tmp_path):
    s = _set(soft_labels=torch.randn(20, 10), label_kind="soft_logits", learned_lr=0.0123,
             extras={"compensator": torch.ones(3)}, preset="dm/digits/ipc2", config={"iterations": 5})
    save_synset(s, tmp_path / "set", preview_pixels=torch.rand(20, 1, 8, 8))
    back = load_synset(tmp_path / "set")
    assert torch.equal(back.images, s.images) and torch.equal(back.labels, s.labels)
    assert torch.equal(back.soft_labels, s.soft_labels) and back.label_kind == "soft_logits"
    assert back.learned_lr == pytest.approx(0.0123) and torch.equal(back.extras["compensator"], torch.ones(3))
    assert back.preset == "dm/digits/ipc2" and back.config == {"iterations": 5}
    assert (tmp_path / "set" / "preview.png").stat().st_size > 0


def test_storage_is_charged_as_stored():
    float_set = _set()
    coreset = _set(images=torch.randint(0, 255, (20, 1, 8, 8), dtype=torch.uint8), image_encoding="uint8")
    assert float_set.storage()["images_bytes"] == 20 * 64 * 4
    assert coreset.storage()["images_bytes"] == 20 * 64 and coreset.storage()["dtype"] == "uint8"
    assert float_set.storage()["labels_bytes"] == 20 * 8
    soft = _set(soft_labels=torch.randn(20, 10), label_kind="soft_logits")
    assert soft.storage()["labels_bytes"] == 20 * 8 + 20 * 10 * 4


def test_corrupted_tensors_are_rejected(tmp_path):
    save_synset(_set(), tmp_path / "set")
    f = tmp_path / "set" / "synset.safetensors"
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(SynsetError, match="corrupted"):
        load_synset(tmp_path / "set")


def test_foreign_and_missing_files_are_rejected(tmp_path):
    with pytest.raises(SynsetError, match="does not exist"):
        load_synset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SynsetError, match="meta.json' is missing"):
        load_synset(tmp_path / "empty")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "meta.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(SynsetError, match="not a dd-bench synset"):
        load_synset(tmp_path / "foreign")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "meta.json").write_text("{not json")
    with pytest.raises(SynsetError, match="not valid JSON"):
        load_synset(tmp_path / "junk")


def test_a_pickle_is_never_loaded(tmp_path):
    """A .pt pickle dropped in place of the safetensors file fails the checksum and is never unpickled."""
    save_synset(_set(), tmp_path / "set")
    torch.save({"images": torch.zeros(1)}, tmp_path / "set" / "synset.safetensors")
    with pytest.raises(SynsetError):
        load_synset(tmp_path / "set")


def test_future_format_version_is_rejected(tmp_path):
    save_synset(_set(), tmp_path / "set")
    meta_path = tmp_path / "set" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SynsetError, match="format_version 99"):
        read_meta(tmp_path / "set")


def test_invalid_sets_fail_at_construction():
    with pytest.raises(SynsetError, match="label_kind"):
        _set(label_kind="fuzzy")
    with pytest.raises(SynsetError, match="soft_labels"):
        _set(label_kind="soft_logits")
    with pytest.raises(SynsetError, match="int64"):
        _set(labels=torch.zeros(20, dtype=torch.int32))
