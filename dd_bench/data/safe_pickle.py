"""A restricted unpickler for the CIFAR python pickles.

The CIFAR ``*-python`` archives are pickled dicts of numpy arrays and lists. A pickle can call any importable
function while loading, so a file from an untrusted place must never go through plain ``pickle.load``. This
unpickler resolves only the handful of globals that numpy array reconstruction needs and refuses everything else.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from dd_bench.errors import UserError

try:  # numpy >= 2 keeps the reconstruction helpers in numpy._core; numpy.core is a deprecated alias there
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_reconstruct = _multiarray._reconstruct
_frombuffer = getattr(_numeric, "_frombuffer", None)  # protocol-5 pickles of arrays (numpy >= 1.16)

# (module, name) -> object. Both numpy module spellings appear in the wild: Python 2 / numpy 1 pickles (the
# original CIFAR files) name numpy.core.*, numpy 2 writes numpy._core.*. ``_codecs.encode`` is how Python 3
# protocol-2 pickles encode bytes; it only turns a str into bytes.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}
if _frombuffer is not None:
    _ALLOWED[("numpy.core.numeric", "_frombuffer")] = _frombuffer
    _ALLOWED[("numpy._core.numeric", "_frombuffer")] = _frombuffer


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list: corrupt, or crafted to run code."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, *, source: str, encoding: str = "latin1") -> None:
        # latin1: the original CIFAR pickles are Python 2 byte strings, which numpy decodes from latin1.
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle {self._source}: it references '{module}.{name}', but a CIFAR pickle only "
                "needs numpy array reconstruction. The file is corrupt or crafted to run code; re-download it."
            ) from None


def load_numpy_pickle(path: Path) -> Any:
    """Unpickle ``path`` allowing only plain containers and numpy arrays."""
    with open(path, "rb") as f:
        return NumpyOnlyUnpickler(f, source=str(path)).load()
