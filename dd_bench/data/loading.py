"""``load_dataset``: a registered name (+ a root) -> :class:`RealData`, through the decoded-tensor cache.

Order of work: find the source under ``root`` (each layout of the spec in turn; download first if asked and
nothing is there), key the cache on the source files' fingerprint, read the cache or decode and write it, move
the tensors to ``device``, and, when ``zca`` is set, load or fit the whitening (fitted on the full training set,
on ``device``) and cache it next to the data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from dd_bench.data.cache import cache_key, entry_path, load_decoded, resolve_cache_dir, save_decoded
from dd_bench.data.catalog import DatasetSpec, get_dataset_spec
from dd_bench.data.real_data import RealData
from dd_bench.data.sources import Decoded, Source
from dd_bench.data.zca import ZCATransform, fit_zca
from dd_bench.errors import UserError, UserFileNotFoundError

log = logging.getLogger(__name__)

ZCA_EPS = 0.1  # MTT's kornia ZCAWhitening(eps=0.1)


class DatasetNotFoundError(UserFileNotFoundError):
    """No known layout of the data set under the given root."""


def _not_found(spec: DatasetSpec, root: Path | None, download_tried: bool) -> DatasetNotFoundError:
    shown = root if root is not None else Path("<root>")
    looked = [p for layout in spec.layouts for p in layout.looked_at(shown)]
    if root is None:
        head = f"dataset '{spec.name}' needs its data: no root was given. Layouts it accepts:"
    elif not root.exists():
        head = f"dataset '{spec.name}': root {root} does not exist. Looked for:"
    else:
        head = f"dataset '{spec.name}': no known layout under {root}. Looked at:"
    how = (
        f"Provide the data with dataset.root=/path/to/{spec.name} (load_dataset(..., root=...)) pointing to one of "
        "these: a torchvision layout or a train/ + test/ ImageFolder tree"
    )
    if spec.download is not None and not download_tried:
        how += ", or set dataset.download=true to fetch it with the torchvision downloader"
    elif spec.download is None:
        how += f"; no downloader exists for '{spec.name}'" + (f": {spec.manual_hint}" if spec.manual_hint else "")
    else:
        how += "; the download did not produce a readable layout"
    return DatasetNotFoundError("\n  ".join([head, *looked]) + "\n" + how + ".")


def _locate(spec: DatasetSpec, root: Path | None, image_size: int | None) -> Source | None:
    if root is None or not root.is_dir():
        return None
    for layout in spec.layouts:
        source = layout.locate(root, image_size=image_size, known_classes=spec.class_names)
        if source is not None:
            return source
    return None


def find_source(
    spec: DatasetSpec, root: Path | None, *, download: bool, image_size: int | None, cache_dir: Path
) -> Source:
    """The located source, downloading into ``root`` (default ``<cache_dir>/downloads/<name>``) if asked."""
    source = _locate(spec, root, image_size)
    if source is None and download and spec.download is not None:
        root = root if root is not None else cache_dir / "downloads" / spec.name
        root.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s into %s", spec.name, root)
        spec.download(root)
        source = _locate(spec, root, image_size)
    if source is None:
        raise _not_found(spec, root, download_tried=download)
    return source


def _decoded_from_source(
    spec: DatasetSpec, source: Source, *, image_size: int | None, cache_dir: Path, use_cache: bool, progress: bool
) -> tuple[Decoded, dict]:
    key = cache_key(spec.name, source.directory, source.layout, source.files, {"image_size": image_size})
    info = {"layout": source.layout, "directory": str(source.directory.resolve()), "cache_key": key}
    if use_cache:
        hit = load_decoded(cache_dir, spec.name, key)
        if hit is not None:
            decoded, path = hit
            log.info("%s: loaded from cache %s", spec.name, path)
            return decoded, {**info, "cache_file": str(path), "cache_hit": True}
    decoded = source.decode(progress)
    info["num_files"] = len(source.files)
    if use_cache:
        path = save_decoded(cache_dir, spec.name, key, decoded, info)
        log.info("%s: decoded %d files from %s, cached at %s", spec.name, len(source.files), source.directory, path)
        return decoded, {**info, "cache_file": str(path), "cache_hit": False}
    return decoded, {**info, "cache_file": None, "cache_hit": False}


def _zca_for(real: RealData, cache_dir: Path, use_cache: bool) -> tuple[ZCATransform, str | None]:
    key = real.source.get("cache_key")
    path = entry_path(cache_dir, real.name, key, f".zca-eps{ZCA_EPS}.safetensors") if key and use_cache else None
    if path is not None and path.is_file():
        log.info("%s: ZCA loaded from cache %s", real.name, path)
        return ZCATransform.load(path, device=real.device), str(path)
    zca = fit_zca(real.train_images.float().div(255.0), eps=ZCA_EPS)  # (N, C, H, W) in [0, 1], full train set
    if path is not None:
        zca.save(path)
    return zca, str(path) if path is not None else None


def load_dataset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    download: bool = False,
    zca: bool = False,
    cache_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    use_cache: bool = True,
) -> RealData:
    """Load a registered data set as uint8 tensors on ``device``.

    ``root``: directory holding a torchvision layout or a train/+test/ ImageFolder tree (unused for ``digits``).
    ``download``: fetch with torchvision into ``root`` when nothing is found there (never in tests).
    ``zca``: attach MTT's ZCA whitening (eps 0.1, fitted on the full training set) as ``RealData.zca``.
    ``image_size``: ImageFolder trees only; resize the shorter side and centre-crop to image_size x image_size.
    ``mean``/``std``: override the registered per-channel statistics (x/255 units), e.g. for a greyscale tree.
    ``use_cache``: read/write decoded tensors under ``cache_dir`` (default ``$DD_BENCH_CACHE`` or
    ``~/.cache/dd_bench``).
    """
    spec = get_dataset_spec(name.lower())
    cache = resolve_cache_dir(cache_dir)
    if spec.embedded is not None:
        if root is not None or download or image_size is not None:
            raise UserError(f"'{spec.name}' is embedded in the package; root, download and image_size do not apply")
        decoded = spec.embedded()
        info = {"layout": "embedded", "root": None, "directory": None, "cache_key": None, "cache_hit": False}
    else:
        root_path = Path(root).expanduser().resolve() if root is not None else None
        source = find_source(spec, root_path, download=download, image_size=image_size, cache_dir=cache)
        decoded, info = _decoded_from_source(
            spec, source, image_size=image_size, cache_dir=cache, use_cache=use_cache, progress=progress
        )
        info["root"] = str(root_path) if root_path is not None else None
    if spec.class_names and len(decoded.class_names) != len(spec.class_names):
        log.warning(
            "%s: the source has %d classes, the canonical data set %d",
            spec.name,
            len(decoded.class_names),
            len(spec.class_names),
        )

    mean_t, std_t = tuple(mean or spec.mean), tuple(std or spec.std)
    channels = decoded.train_images.shape[1]
    if len(mean_t) != channels or len(std_t) != channels:
        raise UserError(
            f"'{spec.name}' images have {channels} channel(s) but mean/std have {len(mean_t)}/{len(std_t)}; "
            "pass mean=/std= (dataset.mean, dataset.std) for this data"
        )
    real = RealData(
        name=spec.name,
        train_images=decoded.train_images,
        train_labels=decoded.train_labels,
        test_images=decoded.test_images,
        test_labels=decoded.test_labels,
        class_names=decoded.class_names,
        mean=mean_t,
        std=std_t,
        dsa_strategy=spec.dsa_strategy,
        source=info,
    ).to(device)
    if zca:
        real.zca, real.source["zca_file"] = _zca_for(real, cache, use_cache)
    return real
