"""Reading a foreign weights file (a teacher's, a projector backbone's): safetensors, or a torch file read with
``weights_only=True`` (never unpickled), unwrapped from ``{"state_dict": ...}`` / ``{"model": ...}`` and from
DataParallel's ``module.`` prefixes; every failure is one line naming the option, the path and what was expected."""

from __future__ import annotations

from pathlib import Path

import torch

from dd_bench.errors import UserError, UserFileNotFoundError


def read_weights_file(path: str | Path, *, option: str, expected: str) -> dict[str, torch.Tensor]:
    """The tensors of the state dict in ``path``; ``option`` names the config key that gave it (for errors)."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f"{option}={path} does not exist; expected {expected}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            for key in ("state_dict", "model"):
                if isinstance(state, dict) and isinstance(state.get(key), dict):
                    state = state[key]
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"{option}={path} could not be read ({type(err).__name__}: {first}); expected "
                        f"{expected}") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{option}={path} holds no state dict of tensors; expected {expected}")
    return {k.removeprefix("module."): v for k, v in state.items()}
