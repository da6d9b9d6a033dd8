"""Atomic checkpoints for long distillation runs: tensors in safetensors, state in JSON, never pickle.

A checkpoint is a directory ``<dir>/checkpoint`` holding ``tensors.safetensors`` and ``state.json``, replaced
as a whole with ``os.replace`` of a freshly written sibling directory, so a crash or Ctrl-C mid-write leaves
the previous checkpoint intact. Generator states are uint8 tensors and are stored with the tensors.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

_NAME = "checkpoint"


def save_checkpoint(directory: str | Path, *, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=".ckpt."))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        final = directory / _NAME
        old = directory / f".{_NAME}.old"
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory / _NAME


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The last complete checkpoint under ``directory``, or None when there is none."""
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in (_NAME, f".{_NAME}.old"):  # .old survives a crash between the two renames
        path = directory / name
        if (path / "state.json").is_file() and (path / "tensors.safetensors").is_file():
            return load_file(str(path / "tensors.safetensors")), json.loads((path / "state.json").read_text())
    return None
