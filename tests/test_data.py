"""dd_bench.data: every registered source on tiny generated data in its own layout, the frozen digits split,
the cache, ZCA, validation splits and the ipc check. Offline; everything is written under tmp_path."""

from __future__ import annotations

import gzip
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from dd_bench.data import (
    DATASETS,
    DatasetNotFoundError,
    RealData,
    ZCATransform,
    check_ipc,
    cifar,
    digits,
    fit_zca,
    image_folder,
    load_dataset,
    split_validation,
)
from dd_bench.data.catalog import CIFAR100_CLASSES
from dd_bench.data.safe_pickle import UnsafePickleError

Expected = dict  # {"train": (x uint8 (N,C,H,W), y), "test": (...), "exact": bool, "classes": [...] | None}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _split(n: int, k: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    r = _rng(seed)
    y = np.arange(n) % k  # every class present
    return r.integers(0, 256, size=(n, *shape), dtype=np.uint8), y.astype(np.int64)


# ---------------------------------------------------------------- fake data sets, one writer per layout


def write_cifar10_python(root: Path, protocols: tuple[int, ...] = (2, 5, 4, 4, 4)) -> Expected:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i, proto in enumerate(protocols, 1):  # protocols 2/4/5 exercise every allowed numpy global
        x, y = _split(4, 10, (3, 32, 32), seed=i)
        with open(d / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": x.reshape(4, -1), "labels": y.tolist(), "batch_label": "x"}, f, protocol=proto)
        xs.append(x), ys.append(y)
    xt, yt = _split(5, 10, (3, 32, 32), seed=9)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"data": xt.reshape(5, -1), b"labels": yt.tolist()}, f)  # bytes keys, as py3 writers do
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(cifar.CIFAR10_CLASSES)}, f)
    return {
        "train": (np.concatenate(xs), np.concatenate(ys)),
        "test": (xt, yt),
        "exact": True,
        "classes": list(cifar.CIFAR10_CLASSES),
    }


def write_cifar10_binary(root: Path) -> Expected:
    d = root / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    xs, ys = [], []
    for i, name in enumerate([*(f"data_batch_{j}.bin" for j in range(1, 6)), "test_batch.bin"]):
        x, y = _split(3, 10, (3, 32, 32), seed=20 + i)
        np.concatenate([y[:, None].astype(np.uint8), x.reshape(3, -1)], axis=1).tofile(d / name)
        xs.append(x), ys.append(y)
    (d / "batches.meta.txt").write_text("\n".join(cifar.CIFAR10_CLASSES) + "\n\n")
    return {
        "train": (np.concatenate(xs[:5]), np.concatenate(ys[:5])),
        "test": (xs[5], ys[5]),
        "exact": True,
        "classes": list(cifar.CIFAR10_CLASSES),
    }


def write_cifar100_python(root: Path) -> Expected:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    out = {}
    for split, n, seed in (("train", 6, 1), ("test", 4, 2)):
        x, y = _split(n, 100, (3, 32, 32), seed)
        y = (y * 17) % 100
        with open(d / split, "wb") as f:
            pickle.dump({"data": x.reshape(n, -1), "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()}, f)
        out[split] = (x, y)
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": CIFAR100_CLASSES, "coarse_label_names": [str(i) for i in range(20)]}, f)
    return {**out, "exact": True, "classes": list(CIFAR100_CLASSES)}


def write_cifar100_binary(root: Path) -> Expected:
    d = root / "cifar-100-binary"
    d.mkdir(parents=True)
    out = {}
    for split, n, seed in (("train", 5, 3), ("test", 3, 4)):
        x, y = _split(n, 100, (3, 32, 32), seed)
        y = (y * 31) % 100
        head = np.stack([y // 5, y], axis=1).astype(np.uint8)  # coarse byte, fine byte
        np.concatenate([head, x.reshape(n, -1)], axis=1).tofile(d / f"{split}.bin")
        out[split] = (x, y)
    (d / "fine_label_names.txt").write_text("\n".join(CIFAR100_CLASSES) + "\n")
    return {**out, "exact": True, "classes": list(CIFAR100_CLASSES)}


def _idx_bytes(a: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, dtype=">i4").tobytes()
    return header + a.astype(np.uint8).tobytes()


def _write_idx(root: Path, folder: str, gz: bool) -> Expected:
    d = root / folder / "raw"
    d.mkdir(parents=True)
    out = {}
    for split, stem, n in (("train", "train", 7), ("test", "t10k", 4)):
        x, y = _split(n, 10, (28, 28), seed=n)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name, data = f"{stem}-{kind}-ubyte", _idx_bytes(arr)
            if gz:
                with gzip.open(d / f"{name}.gz", "wb") as f:
                    f.write(data)
            else:
                (d / name).write_bytes(data)
        out[split] = (x[:, None], y)
    return {**out, "exact": True, "classes": None}


def write_svhn(root: Path) -> Expected:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", 6), ("test", 3)):
        x, y = _split(n, 10, (3, 32, 32), seed=n)
        savemat(root / f"{split}_32x32.mat", {"X": x.transpose(2, 3, 1, 0), "y": np.where(y == 0, 10, y)[:, None]})
        out[split] = (x, y)
    return {**out, "exact": True, "classes": [str(i) for i in range(10)]}


def write_image_folder(
    root: Path, classes=("cat", "airplane", "dog"), test_dir="test", mode="RGB", sizes=None, per_class=3
) -> Expected:
    """PNG tree (lossless, so pixels round-trip); expected labels follow sorted folder names."""
    from PIL import Image

    ordered = sorted(classes)
    out = {}
    for split in ("train", test_dir):
        xs, ys = [], []
        for c in ordered:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                h, w = sizes[(i + len(xs)) % len(sizes)] if sizes else (8, 8)
                shape = (h, w, 3) if mode == "RGB" else (h, w)
                a = _rng(len(xs) + 100 * len(out)).integers(0, 256, size=shape, dtype=np.uint8)
                Image.fromarray(a, mode=mode).save(root / split / c / f"{i:03d}.png")
                xs.append(a.transpose(2, 0, 1) if a.ndim == 3 else a[None])
                ys.append(ordered.index(c))
        out["train" if split == "train" else "test"] = (
            (np.stack(xs) if not sizes else None),
            np.asarray(ys, dtype=np.int64),
        )
    (root / ".complete").touch()  # stray files at the root (get-cifar10 writes this) are ignored
    return {**out, "exact": True, "classes": ordered}


def write_tiny_imagenet(root: Path) -> Expected:
    from PIL import Image

    d = root / "tiny-imagenet-200"
    wnids = ["n02", "n01", "n03"]
    ordered = sorted(wnids)
    for j, w in enumerate(wnids):
        (d / "train" / w / "images").mkdir(parents=True)
        (d / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(2):
            mode = "L" if (i == 1 and j == 0) else "RGB"  # Tiny has a few greyscale JPEGs: must become RGB
            a = _rng(i + 10 * j).integers(0, 256, size=(64, 64, 3) if mode == "RGB" else (64, 64), dtype=np.uint8)
            Image.fromarray(a, mode=mode).save(d / "train" / w / "images" / f"{w}_{i}.JPEG")
    (d / "val" / "images").mkdir(parents=True)
    lines, val_labels = [], []
    for i, w in enumerate(["n03", "n01", "n02", "n01"]):
        Image.new("RGB", (64, 64), (i, 2 * i, 3 * i)).save(d / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
        val_labels.append(ordered.index(w))
    (d / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (d / "wnids.txt").write_text("\n".join(wnids) + "\n")
    train_y = np.repeat(np.arange(3), 2)
    return {
        "train": (None, train_y),
        "test": (None, np.sort(val_labels)),
        "exact": False,
        "classes": ordered,
        "shape": (3, 64, 64),
    }


FAKE_SOURCES: dict[str, list[Callable[[Path], Expected]]] = {
    "cifar10": [write_cifar10_python, write_cifar10_binary, write_image_folder],
    "cifar100": [write_cifar100_python, write_cifar100_binary],
    "mnist": [lambda r: _write_idx(r, "MNIST", gz=True), lambda r: _write_idx(r, "MNIST", gz=False)],
    "fashion_mnist": [lambda r: _write_idx(r, "FashionMNIST", gz=True)],
    "svhn": [write_svhn],
    "tiny_imagenet": [write_tiny_imagenet],
    "imagefolder": [write_image_folder, lambda r: write_image_folder(r, test_dir="val")],
}
CASES = [(name, i) for name, writers in FAKE_SOURCES.items() for i in range(len(writers))]


def test_every_file_dataset_has_a_fake_source():
    assert set(DATASETS.list()) == set(FAKE_SOURCES) | {"digits"}


@pytest.mark.parametrize("name,variant", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_load_each_source_layout(tmp_path, name, variant):
    expected = FAKE_SOURCES[name][variant](tmp_path / "data")
    real = load_dataset(name, root=tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    spec = DATASETS.get(name)
    assert isinstance(real, RealData) and real.name == name
    assert real.mean == spec.mean and real.std == spec.std and real.dsa_strategy == spec.dsa_strategy
    assert real.channels == len(spec.mean)
    for split in ("train", "test"):
        x_exp, y_exp = expected[split]
        x, y = getattr(real, f"{split}_images"), getattr(real, f"{split}_labels")
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        np.testing.assert_array_equal(y.numpy(), y_exp)
        if expected["exact"]:
            np.testing.assert_array_equal(x.numpy(), x_exp)
        else:
            assert tuple(x.shape[1:]) == expected["shape"]
    if expected["classes"] is not None:
        assert real.class_names == expected["classes"]
    else:
        assert real.class_names == list(spec.class_names)
    assert real.source["cache_hit"] is False and Path(real.source["cache_file"]).is_file()


def test_image_folder_known_classes_use_canonical_order(tmp_path):
    # CIFAR-10 class folders (the shared get-cifar10 tree) -> torchvision's label order.
    write_image_folder(tmp_path / "c", classes=cifar.CIFAR10_CLASSES, per_class=1)
    real = load_dataset("cifar10", root=tmp_path / "c", cache_dir=tmp_path / "cache", progress=False)
    assert real.class_names == list(cifar.CIFAR10_CLASSES)
    assert real.source["layout"] == "imagefolder"


def test_image_folder_greyscale_sizes_and_resize(tmp_path):
    write_image_folder(tmp_path / "g", mode="L")
    grey = load_dataset(
        "imagefolder", root=tmp_path / "g", cache_dir=tmp_path / "cache", progress=False, mean=(0.5,), std=(0.25,)
    )
    assert grey.train_images.shape == (9, 1, 8, 8) and grey.mean == (0.5,)
    with pytest.raises(ValueError, match="channel"):
        load_dataset("imagefolder", root=tmp_path / "g", cache_dir=tmp_path / "cache", progress=False)

    write_image_folder(tmp_path / "m", sizes=[(8, 8), (10, 12)])
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("imagefolder", root=tmp_path / "m", cache_dir=tmp_path / "cache", progress=False)
    real = load_dataset("imagefolder", root=tmp_path / "m", cache_dir=tmp_path / "cache", progress=False, image_size=6)
    assert real.train_images.shape == (9, 3, 6, 6) and real.test_images.shape == (9, 3, 6, 6)


def test_malicious_pickle_is_rejected(tmp_path):
    write_cifar10_python(tmp_path / "data")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "data" / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"data": Exploit(), "labels": [0]}, f)
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle .*data_batch_3.*system"):
        load_dataset("cifar10", root=tmp_path / "data", cache_dir=tmp_path / "cache", progress=False)
    assert not marker.exists()


def test_missing_root_lists_paths_and_hint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("cifar10", root=tmp_path / "empty", cache_dir=tmp_path / "cache")
    msg = str(err.value)
    assert str(tmp_path / "empty" / "cifar-10-batches-py") in msg and str(tmp_path / "empty" / "train") in msg
    assert "dataset.root=" in msg and "dataset.download=true" in msg
    with pytest.raises(DatasetNotFoundError, match="no root was given"):
        load_dataset("svhn", cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetNotFoundError, match="no downloader exists"):
        load_dataset("tiny_imagenet", root=tmp_path / "empty", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="Unknown dataset 'nope'; available: cifar10"):
        load_dataset("nope")


def test_incomplete_layout_names_missing_files(tmp_path):
    write_cifar10_python(tmp_path / "data")
    (tmp_path / "data" / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_dataset("cifar10", root=tmp_path / "data", cache_dir=tmp_path / "cache")


def _boom(*args, **kwargs):
    raise AssertionError("decoder called although the cache should have answered")


def test_second_load_reads_cache_and_fingerprint_invalidates(tmp_path, monkeypatch, caplog):
    write_cifar10_python(tmp_path / "data")
    kw = {"root": tmp_path / "data", "cache_dir": tmp_path / "cache", "progress": False}
    first = load_dataset("cifar10", **kw)
    monkeypatch.setattr(cifar, "read_cifar_python", _boom)
    with caplog.at_level(logging.INFO, logger="dd_bench.data"):
        second = load_dataset("CIFAR10", **kw)
    assert "loaded from cache" in caplog.text
    assert second.source["cache_hit"] and second.source["cache_file"] == first.source["cache_file"]
    assert torch.equal(first.train_images, second.train_images) and first.class_names == second.class_names
    sidecar = Path(first.source["cache_file"]).with_suffix(".json")
    assert sidecar.is_file() and not list((tmp_path / "cache" / "datasets").glob("*.tmp"))

    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_2"
    os.utime(batch, ns=(batch.stat().st_atime_ns, batch.stat().st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoder called"):
        load_dataset("cifar10", **kw)


def test_image_folder_cache_hit(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "data")
    kw = {"root": tmp_path / "data", "cache_dir": tmp_path / "cache", "progress": False}
    first = load_dataset("imagefolder", **kw)
    monkeypatch.setattr(image_folder, "decode_labelled", _boom)
    second = load_dataset("imagefolder", **kw)
    assert second.source["cache_hit"] and torch.equal(first.test_images, second.test_images)


# ---------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits_real() -> RealData:
    return load_dataset("digits", progress=False)


def test_digits_split_is_frozen(digits_real):
    images, labels = digits.digits_uint8()
    record = digits.split_record()
    assert digits.array_sha256(images) == record["images_sha256"]
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.uint8 and images.max() == 255
    train, test = digits.train_test_indices()
    assert len(train) == 1437 and len(test) == 360 and len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1797))
    test_counts, all_counts = np.bincount(labels[test], minlength=10), np.bincount(labels, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)  # stratified
    assert digits_real.train_images.shape == (1437, 1, 8, 8) and digits_real.test_images.shape == (360, 1, 8, 8)
    assert torch.equal(digits_real.test_images, torch.from_numpy(images[test]))
    assert digits_real.class_names == [str(i) for i in range(10)]
    assert digits_real.dsa_strategy == "color_crop_cutout_scale_rotate"


def test_digits_mean_std_constants(digits_real):
    x = digits_real.train_images.double() / 255
    assert digits_real.mean == digits.DIGITS_MEAN and digits_real.std == digits.DIGITS_STD
    assert abs(x.mean().item() - digits.DIGITS_MEAN[0]) < 1e-6
    assert abs(x.std(unbiased=False).item() - digits.DIGITS_STD[0]) < 1e-6


@pytest.mark.parametrize(
    "name,mean,std,dsa",
    [
        ("mnist", (0.1307,), (0.3081,), "color_crop_cutout_scale_rotate"),
        ("fashion_mnist", (0.2861,), (0.3530,), "color_crop_cutout_flip_scale_rotate"),
        ("svhn", (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), "color_crop_cutout_scale_rotate"),
        ("cifar10", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "color_crop_cutout_flip_scale_rotate"),
        ("cifar100", (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "color_crop_cutout_flip_scale_rotate"),
        ("tiny_imagenet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "color_crop_cutout_flip_scale_rotate"),
        ("imagefolder", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "color_crop_cutout_flip_scale_rotate"),
    ],
)
def test_registered_constants(name, mean, std, dsa):
    spec = DATASETS.get(name)
    assert (spec.mean, spec.std, spec.dsa_strategy) == (mean, std, dsa)


def test_cifar100_class_names_are_torchvision_order():
    assert len(CIFAR100_CLASSES) == 100 and CIFAR100_CLASSES == sorted(CIFAR100_CLASSES)


def test_model_space_shapes_and_moments(digits_real):
    batch = digits_real.train_images
    m = digits_real.to_model_space(batch)
    assert m.shape == batch.shape and m.dtype == torch.float32
    assert abs(m.mean().item()) < 1e-3 and abs(m.std().item() - 1) < 1e-3  # the data set's own statistics
    back = digits_real.to_pixel_space(m)
    assert torch.allclose(back, batch.float() / 255, atol=1e-5)
    assert load_dataset("digits").train_images.shape == batch.shape


# ---------------------------------------------------------------- ipc and validation


def test_check_ipc_message(digits_real):
    check_ipc(digits_real, 139)
    with pytest.raises(ValueError) as err:
        check_ipc(digits_real, 140)
    assert str(err.value) == "ipc=140 is larger than the smallest class (class '8' has 139 training images)"


def test_validation_split_stratified_disjoint_deterministic(digits_real):
    reduced, val = split_validation(digits_real, fraction=0.1, seed=3)
    counts = digits_real.class_counts()
    assert torch.equal(torch.bincount(val["labels"], minlength=10), torch.round(counts * 0.1).long())
    assert len(reduced.train_labels) + len(val["labels"]) == 1437
    assert not set(reduced.train_indices.tolist()) & set(val["indices"].tolist())
    assert sorted(reduced.train_indices.tolist() + val["indices"].tolist()) == list(range(1437))
    assert torch.equal(val["images"], digits_real.train_images[val["indices"]])
    assert torch.equal(reduced.train_images, digits_real.train_images[reduced.train_indices])
    assert torch.equal(reduced.test_images, digits_real.test_images)  # the test set is never touched
    again, val2 = split_validation(digits_real, fraction=0.1, seed=3)
    assert torch.equal(val["indices"], val2["indices"]) and torch.equal(again.train_indices, reduced.train_indices)
    _, other = split_validation(digits_real, fraction=0.1, seed=4)
    assert not torch.equal(val["indices"], other["indices"])

    nested, val3 = split_validation(reduced, per_class=5, seed=0)  # indices refer to the full training set
    assert torch.equal(torch.bincount(val3["labels"], minlength=10), torch.full((10,), 5))
    assert torch.equal(nested.train_images, digits_real.train_images[nested.train_indices])
    assert not set(val3["indices"].tolist()) & set(val["indices"].tolist())
    with pytest.raises(ValueError, match="exactly one"):
        split_validation(digits_real, fraction=0.1, per_class=3, seed=0)


# ---------------------------------------------------------------- ZCA


def test_zca_matches_kornia_and_inverts():
    import kornia

    x = torch.rand(200, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    z = fit_zca(x, eps=0.1)
    ref = kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True).fit(x)
    probe = torch.rand(16, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(z.forward(probe), ref(probe), atol=1e-5)
    assert torch.allclose(z.inverse(z.forward(probe)), probe, atol=1e-4)
    assert torch.allclose(z.inverse(probe), ref.inverse_transform(probe), atol=1e-4)
    assert z.mean.shape == (1, 48) and z.transform.shape == (48, 48) and len(z.sha256) == 64
    with pytest.raises(TypeError, match="x/255"):
        fit_zca((x * 255).to(torch.uint8))


def test_zca_save_load_checks_sha(tmp_path):
    z = fit_zca(torch.rand(50, 1, 3, 3, generator=torch.Generator().manual_seed(0)))
    z.save(tmp_path / "z.safetensors")
    back = ZCATransform.load(tmp_path / "z.safetensors")
    assert back.sha256 == z.sha256 and back.eps == 0.1 and back.image_shape == (1, 3, 3)
    assert torch.equal(back.transform, z.transform)

    from safetensors.torch import save_file

    meta = {"eps": "0.1", "sha256": z.sha256, "image_shape": "1,3,3"}
    tampered = {"mean": z.mean, "transform": z.transform * 2, "inverse_transform": z.inverse_transform}
    save_file(tampered, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="sha256"):
        ZCATransform.load(tmp_path / "bad.safetensors")


def test_load_dataset_zca_is_cached(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "data")  # 8x8 RGB: D = 192 keeps the SVD fast (CIFAR's 3072 takes ~30 s on CPU)
    kw = {"root": tmp_path / "data", "cache_dir": tmp_path / "cache", "progress": False, "zca": True}
    first = load_dataset("imagefolder", **kw)
    assert first.image_space == "zca" and Path(first.source["zca_file"]).is_file()
    m = first.to_model_space(first.train_images[:4])
    assert m.shape == (4, 3, 8, 8) and m.dtype == torch.float32
    expected = first.zca.forward(first.train_images[:4].float() / 255)
    assert torch.equal(m, expected)
    monkeypatch.setattr("dd_bench.data.loading.fit_zca", _boom)
    second = load_dataset("imagefolder", **kw)
    assert second.zca.sha256 == first.zca.sha256


def test_digits_zca_and_validation_refit(digits_real):
    real = load_dataset("digits", zca=True, progress=False)
    assert real.zca is not None and real.zca.image_shape == (1, 8, 8)
    assert real.to_model_space(real.test_images).shape == (360, 1, 8, 8)
    reduced, val = split_validation(real, fraction=0.1, seed=0)
    assert val["zca_refit"] and reduced.zca.sha256 != real.zca.sha256
