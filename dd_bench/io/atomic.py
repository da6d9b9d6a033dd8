"""Atomic file and directory writes: a crash, a kill or Ctrl-C leaves the old version or the new one, never half.

Every write goes to a hidden temporary sibling (``.<name>.<random>.tmp``), is flushed and fsynced, and is renamed
onto the final name with ``os.replace`` (atomic on POSIX); the directory is fsynced so the rename survives a power
cut. On any failure the temporary is removed. Readers skip hidden files, so an in-flight temporary is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a no-op where directories cannot be opened (not POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a temporary sibling of ``path``, then rename it onto ``path``; returns ``path``.

    The file gets the usual permissions (0666 minus the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, payload: Any, *, indent: int | None = 1) -> Path:
    """JSON with sorted keys; NaN and infinity are refused (they are not JSON)."""
    from dd_bench.io.hashing import json_default

    text = json.dumps(payload, indent=indent, sort_keys=True, allow_nan=False, default=json_default) + "\n"
    return atomic_write_text(path, text)


def atomic_save_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                            metadata: dict[str, str] | None = None) -> Path:
    """Tensors (moved to the CPU, made contiguous) in safetensors; ``metadata`` is a str -> str header."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def replace_dir_atomically(final: str | os.PathLike, populate: Callable[[Path], None]) -> Path:
    """Fill a fresh temporary sibling directory with ``populate(tmp)``, then swap it in for ``final``.

    The previous ``final`` is first renamed to ``.<name>.old`` and removed after the swap, so a crash between the
    two renames leaves ``.<name>.old`` complete (readers look there next; see :mod:`dd_bench.io.checkpoint`).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    old = final.parent / f".{final.name}.old"
    try:
        populate(tmp)
        for child in tmp.iterdir():
            _fsync_file(child)
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final
