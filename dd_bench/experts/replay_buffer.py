"""Import and export the official ``replay_buffer_{n}.pt`` expert files (MTT ``buffer.py``, FTD/DATM ``buffer_FTD.py``).

Official layout (trajectory-matching.md §1c): each file is ``torch.save(list_of_trajectories)``; a trajectory is
a list of ``T+1`` epoch snapshots (epoch 0 = init); a snapshot is a list of per-layer CPU tensors in
``model.parameters()`` order. The official scripts write 10 experts per file, numbered 0, 1, ... in a directory.

Importing loads with ``torch.load(..., weights_only=True)`` only: a file holding anything but containers of
tensors and plain values (e.g. a pickled class instance) is refused before any of its code can run. Every
snapshot is checked against the network's parameter shapes, then flattened to our ``(E, T+1, P)`` layout.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.experts.store import ExpertTrajectories
from dd_bench.io import atomic_write
from dd_bench.models import create_model

__all__ = ["ReplayBufferError", "export_replay_buffers", "import_replay_buffers"]

_FILE_RE = re.compile(r"^replay_buffer_(\d+)\.pt$")


class ReplayBufferError(UserError):
    """An official replay-buffer file cannot be imported (unsafe content, wrong structure or shapes)."""


def _param_shapes(model: str, model_kwargs: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter in ``parameters()`` order; built on the meta device (no memory)."""
    with torch.device("meta"):
        net = create_model(model, **model_kwargs)
    return [(n, tuple(p.shape)) for n, p in net.named_parameters()]


def _load_file(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ReplayBufferError(
            f"{path}: refused to load: it holds objects other than tensors and plain containers, which "
            f"torch.load(weights_only=True) does not unpickle (official replay buffers are lists of lists of "
            f"tensors). Detail: {reason}"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ReplayBufferError(f"{path}: not a readable torch.save file ({type(err).__name__}: {err})") from None


def _flatten_file(path: Path, obj: Any, shapes: list[tuple[str, tuple[int, ...]]],
                  num_snapshots: int | None) -> torch.Tensor:
    """Validate one file's content and flatten it to (E_f, T+1, P) float32."""
    if not isinstance(obj, (list, tuple)) or not obj:
        raise ReplayBufferError(f"{path}: expected a non-empty list of trajectories; got {type(obj).__name__}")
    total = sum(math.prod(s) for _, s in shapes)
    experts = []
    for e, trajectory in enumerate(obj):
        if not isinstance(trajectory, (list, tuple)) or not trajectory:
            raise ReplayBufferError(f"{path}: expert {e}: expected a non-empty list of epoch snapshots; got "
                                    f"{type(trajectory).__name__}")
        want = num_snapshots if num_snapshots is not None else len(trajectory)
        if len(trajectory) != want:
            raise ReplayBufferError(f"{path}: expert {e} has {len(trajectory)} snapshots "
                                    f"(epochs 0..{len(trajectory) - 1}); earlier experts have {want}; all experts "
                                    "must have the same number of epochs")
        num_snapshots = want
        flat = torch.empty(len(trajectory), total, dtype=torch.float32)  # (T+1, P)
        for t, snapshot in enumerate(trajectory):
            if not isinstance(snapshot, (list, tuple)) or len(snapshot) != len(shapes):
                got = f"{len(snapshot)} tensors" if isinstance(snapshot, (list, tuple)) else type(snapshot).__name__
                raise ReplayBufferError(f"{path}: expert {e}, epoch {t}: expected a list of {len(shapes)} parameter "
                                        f"tensors; got {got}")
            offset = 0
            for (name, shape), tensor in zip(shapes, snapshot, strict=True):
                if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                    kind = f"{tensor.dtype} tensor" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
                    raise ReplayBufferError(f"{path}: expert {e}, epoch {t}, layer '{name}': expected a float "
                                            f"tensor; got {kind}")
                if tuple(tensor.shape) != shape:
                    raise ReplayBufferError(f"{path}: expert {e}, epoch {t}, layer '{name}': expected shape "
                                            f"{shape}, got {tuple(tensor.shape)} (wrong model or model_kwargs?)")
                n = tensor.numel()
                flat[t, offset:offset + n] = tensor.reshape(-1)
                offset += n
        if len(flat) > 1 and bool((flat[1:] == flat[:1]).all()):
            # MTT's buffer.py snapshots with p.detach().cpu(), which copies on a GPU but returns the live tensor on
            # a CPU: every saved epoch then aliases the final weights, and distilling from it gives an inf/nan loss.
            raise ReplayBufferError(f"{path}: expert {e}: all {len(flat)} epoch snapshots are identical (a buffer "
                                    "saved on a CPU by buffer.py's p.detach().cpu() aliases the final weights); "
                                    "re-save it with a copying .cpu() (e.g. p.detach().cpu().clone())")
        experts.append(flat)
    return torch.stack(experts)


def import_replay_buffers(
    paths: Sequence[str | Path],
    *,
    model: str,
    num_classes: int,
    in_channels: int,
    image_size: Sequence[int],
    model_kwargs: dict[str, Any] | None = None,
) -> ExpertTrajectories:
    """Official replay buffers -> :class:`ExpertTrajectories` ``(E, T+1, P)``, files in the given order.

    ``model``/``model_kwargs`` name our network matching the official one (MTT's default ConvNet is
    ``convnet`` with width 128, depth 3, instance norm). The key is a hash of the files' bytes and the model.
    """
    if not paths:
        raise ReplayBufferError("no replay-buffer files given")
    kwargs = {"num_classes": num_classes, "in_channels": in_channels, "image_size": tuple(image_size),
              **(model_kwargs or {})}
    shapes = _param_shapes(model, kwargs)
    h = hashlib.sha256(repr((model, sorted(kwargs.items()))).encode())
    parts, num_snapshots = [], None
    for path in map(Path, paths):
        params = _flatten_file(path, _load_file(path), shapes, num_snapshots)
        num_snapshots = params.shape[1]
        parts.append(params)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                h.update(chunk)
    params = parts[0] if len(parts) == 1 else torch.cat(parts)
    return ExpertTrajectories(params=params, model=model, model_kwargs=kwargs, key=h.hexdigest()[:24],
                              source="imported", extra={"files": [str(p) for p in paths]})


def export_replay_buffers(
    experts: ExpertTrajectories,
    directory: str | Path,
    *,
    per_file: int = 10,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``experts`` as official ``replay_buffer_{n}.pt`` files (n = 0, 1, ...), ``per_file`` experts each.

    Unlike the official scripts, a last file with fewer than ``per_file`` experts is written too. The official
    loaders read ``replay_buffer_0.pt, replay_buffer_1.pt, ...`` until one is missing, so existing buffer files
    in ``directory`` would mix with ours: they raise FileExistsError unless ``overwrite`` (then they are removed).
    """
    if per_file < 1:
        raise UserError(f"per_file must be >= 1; got {per_file}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    existing = sorted(p for p in directory.iterdir() if _FILE_RE.match(p.name))
    if existing and not overwrite:
        raise FileExistsError(f"{directory} already holds {', '.join(p.name for p in existing)}; pass "
                              f"overwrite=True to replace them")
    for p in existing:
        p.unlink()
    shapes = [s for _, s in _param_shapes(experts.model, experts.model_kwargs)]
    numels = [math.prod(s) for s in shapes]
    if sum(numels) != experts.num_params:
        raise ValueError(f"{experts.model} has {sum(numels)} parameters; the trajectories have {experts.num_params}")
    written = []
    for n, start in enumerate(range(0, experts.num_experts, per_file)):
        # Each layer tensor is cloned: a view would make torch.save store the whole (E, T+1, P) storage.
        trajectories = [[[v.reshape(s).clone() for v, s in zip(torch.split(snapshot, numels), shapes, strict=True)]
                         for snapshot in expert]
                        for expert in experts.params[start:start + per_file]]
        path = directory / f"replay_buffer_{n}.pt"
        atomic_write(path, lambda tmp, obj=trajectories: torch.save(obj, tmp))
        written.append(path)
    return written
