"""Atomic checkpoints for long runs: tensors in safetensors, state in JSON, never pickle.

A checkpoint is a directory ``<dir>/checkpoint`` holding ``tensors.safetensors`` and ``state.json``, replaced as a
whole (:func:`dd_bench.io.atomic.replace_dir_atomically`), so a crash or Ctrl-C mid-write leaves the previous
checkpoint intact. Generator states are uint8 tensors and are stored with the tensors. ``state["config_hash"]``
(when the caller sets it) names the config that wrote it: a resume under another config must not use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

_NAME = "checkpoint"


def save_checkpoint(directory: str | Path, *, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    from dd_bench.io.atomic import replace_dir_atomically
    from dd_bench.io.hashing import json_default

    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}

    def populate(tmp: Path) -> None:
        save_file(cpu, str(tmp / "tensors.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True, default=json_default))

    return replace_dir_atomically(Path(directory) / _NAME, populate)


def load_checkpoint(directory: str | Path, *, config_hash: str | None = None
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The last complete checkpoint under ``directory``, or None when there is none.

    With ``config_hash``, a checkpoint written under another config (or without one) counts as none.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in (_NAME, f".{_NAME}.old"):  # .old survives a crash between the two renames
        path = directory / name
        if (path / "state.json").is_file() and (path / "tensors.safetensors").is_file():
            state = json.loads((path / "state.json").read_text())
            if config_hash is not None and state.get("config_hash") != config_hash:
                return None
            return load_file(str(path / "tensors.safetensors")), state
    return None


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state dict as safetensors-ready tensors plus JSON (no pickle): the two parts of a checkpoint."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"opt.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved: dict[str, Any],
                   device: torch.device) -> None:
    """Put back what :func:`optimizer_tensors` saved (moment tensors onto ``device``; step counters stay put)."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value.to(device) if key != "step" else value
    for name, value in saved["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
