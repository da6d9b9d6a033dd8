"""Reading a foreign weights file (a teacher's, a projector backbone's): safetensors, or a torch file read with
``weights_only=True`` (never unpickled), unwrapped from ``{"state_dict": ...}`` / ``{"model": ...}`` and from
DataParallel's ``module.`` prefixes; every failure is one line naming the option, the path and what was expected.

A file may carry its class map (the class name of each output, in output order): a ``class_names`` list in a torch
file's top-level dict, a ``class_names`` JSON list in a safetensors file's metadata, or a names file beside it
(``<file>.classes.txt``, one class name per line). :func:`read_weights_with_classes` returns it; the caller checks it
against the dataset (:mod:`dd_bench.data.class_map`)."""

from __future__ import annotations

from pathlib import Path

import torch

from dd_bench.errors import UserError, UserFileNotFoundError
from dd_bench.io.names_file import read_names_file

CLASS_NAMES_KEY = "class_names"
CLASSES_SUFFIX = ".classes.txt"  # the names file beside a weights file: teacher.pth -> teacher.pth.classes.txt


def read_weights_file(path: str | Path, *, option: str, expected: str) -> dict[str, torch.Tensor]:
    """The tensors of the state dict in ``path``; ``option`` names the config key that gave it (for errors)."""
    return read_weights_with_classes(path, option=option, expected=expected)[0]


def read_weights_with_classes(path: str | Path, *, option: str,
                              expected: str) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """(the state dict in ``path``, its class map or None when it carries none)."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f"{option}={path} does not exist; expected {expected}")
    names = None
    try:
        if path.suffix == ".safetensors":
            import json

            from safetensors import safe_open
            from safetensors.torch import load_file

            state = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                listed = (f.metadata() or {}).get(CLASS_NAMES_KEY)
            names = None if listed is None else [str(n) for n in json.loads(listed)]
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and isinstance(state.get(CLASS_NAMES_KEY), (list, tuple)):
                state = dict(state)
                names = [str(n) for n in state.pop(CLASS_NAMES_KEY)]
            for key in ("state_dict", "model"):
                if isinstance(state, dict) and isinstance(state.get(key), dict):
                    state = state[key]
    except Exception as err:  # noqa: BLE001 - any unreadable file is the user's to fix
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UserError(f"{option}={path} could not be read ({type(err).__name__}: {first}); expected "
                        f"{expected}") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{option}={path} holds no state dict of tensors; expected {expected}")
    beside = Path(f"{path}{CLASSES_SUFFIX}")
    if beside.is_file():  # a names file beside the weights says the same as one inside them, and wins
        names = read_names_file(beside, option=f"{option} class map")
    return {k.removeprefix("module."): v for k, v in state.items()}, names
