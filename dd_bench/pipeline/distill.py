"""Distil a set into its directory: reused when a set of this config's hash is already there, else made (resuming
from its checkpoint), stored as ``image_store`` says and saved with its provenance."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from dd_bench.data import RealData
from dd_bench.data.ipc import check_ipc
from dd_bench.errors import UserError
from dd_bench.io.store import path_lock
from dd_bench.methods import create_method
from dd_bench.synset import SynsetError, SyntheticSet, load_synset, read_meta, save_synset
from dd_bench.tracking.provenance import PeakMemory, collect_provenance


def existing_set(out: Path) -> dict[str, Any] | None:
    """meta.json of a complete set in ``out`` (meta.json is written last), or None."""
    try:
        return read_meta(out) if (Path(out) / "meta.json").is_file() else None
    except SynsetError:
        return None


def distill_to_disk(
    *,
    method: str,
    method_kwargs: dict[str, Any],
    real: RealData,
    ipc: int,
    seed: int,
    out: Path,
    preset: str | None = None,
    progress: bool = True,
    validation: dict[str, Any] | None = None,
    set_hash: str | None = None,
    cache_dir: Path | None = None,
    rerun: bool = False,
    image_store: str = "native",
    jpeg_quality: int = 75,
    data_fingerprint: str | None = None,
) -> tuple[SyntheticSet, float, bool]:
    """Distil a set into ``out`` (checkpoints under ``out/.checkpoint``); returns (set, seconds, reused).

    With ``set_hash``, a complete set of that hash already in ``out`` is returned as it is (``reused``) unless
    ``rerun``; a set of another hash there is an error unless ``rerun`` (two configs never share a directory).
    ``validation``: a description of the held-out split ``real`` already excludes, recorded in the provenance.
    ``image_store`` / ``jpeg_quality``: how the set stores its images (:mod:`dd_bench.synset.image_store`); the set hash
    must cover them (:func:`dd_bench.synset.image_store.store_identity`). ``data_fingerprint``: the fingerprint of the
    data set as loaded (before any validation split; default ``real``'s), recorded in the provenance so that exports
    name the data the set came from (it is not part of the set hash, which covers ``real`` itself).
    """
    from dd_bench.synset.image_store import apply_image_store, check_image_store

    check_image_store(image_store, jpeg_quality, channels=real.channels)
    check_ipc(real, ipc)
    synthesizer = create_method(method, **method_kwargs)
    out = Path(out)
    with path_lock(out):  # a second job of the same config waits here, then reuses the first one's set
        meta = existing_set(out)
        if meta is not None and not rerun:
            if set_hash is not None and meta.get("set_hash") == set_hash:
                synset = load_synset(out)
                return synset, float(synset.provenance.get("distill_seconds") or 0.0), True
            if set_hash is not None:
                raise UserError(f"out={out} holds another config's set (set hash {str(meta.get('set_hash'))[:12]}, "
                                f"this config's is {set_hash[:12]}); choose another out= or pass rerun=true "
                                "to replace it")
        out.mkdir(parents=True, exist_ok=True)
        tracker = PeakMemory(real.device)
        start = time.perf_counter()
        with tracker:
            # Distillation never holds the test split: nothing in it can be selected on the test set.
            # paper_selection: the test split goes to the checkpoint selector alone, for a never-ranked column.
            paper = ({"paper_test": (real.test_images, real.test_labels)}
                     if getattr(synthesizer.cfg, "paper_selection", False) else {})
            synset = synthesizer.distill(real.without_test(), ipc=ipc, seed=seed, progress=progress,
                                         checkpoint_dir=out / ".checkpoint", cache_dir=cache_dir, **paper)
            if image_store != "native":
                synset = apply_image_store(synset, image_store=image_store, jpeg_quality=jpeg_quality,
                                           to_pixels=lambda x: real.to_pixel_space(x.to(real.device)))
                # Labels a method computed from its images (INFER's static logits) are remade on the stored ones.
                synset = synthesizer.labels_for_stored_images(synset, real=real.without_test(), cache_dir=cache_dir,
                                                              progress=progress)
        seconds = time.perf_counter() - start
        synset.preset = preset
        synset.set_hash = set_hash
        synset.provenance = {**collect_provenance(real.device), **synset.provenance, "seed": seed,
                             "distill_seconds": seconds, "peak_memory": tracker.as_dict(),
                             "validation": validation, "data_fingerprint": data_fingerprint or real.fingerprint()}
        status = synset.provenance.get("distill_status", {})
        if status.get("stopped_early"):
            print(f"warning: {method} stopped early: {status.get('reason')}; the last good state was saved")
        preview = None if synset.image_encoding == "uint8" else real.to_pixel_space(synset.images.to(real.device))
        save_synset(synset, out, preview_pixels=preview)
        # A finished set needs no checkpoint: a later rerun=true starts over instead of resuming at the end.
        shutil.rmtree(out / ".checkpoint", ignore_errors=True)
    return synset, seconds, False
