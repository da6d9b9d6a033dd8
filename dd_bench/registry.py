"""One small generic registry per component kind (timm's ``register_model`` / ``create_model``).

Names are lowercase and equal the Hydra config file stem (``conf/method/dm.yaml`` <-> ``dm``).

>>> r = Registry("widget")
>>> @r.register("foo")
... def make_foo(size=1):
...     return ("foo", size)
>>> r.create("foo", size=2)
('foo', 2)
>>> r.get("bar")
Traceback (most recent call last):
...
dd_bench.errors.UserError: Unknown widget 'bar'; available: foo
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from dd_bench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps lowercase names to factories (classes or functions) of one component kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = name if name is not None else obj.__name__
            if key != key.lower():
                raise ValueError(f"{self.kind} names are lowercase; got '{key}'")
            if key in self._entries:
                raise ValueError(f"{self.kind} '{key}' is already registered")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(f"Unknown {self.kind} '{name}'; available: {', '.join(self.list())}")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(k for k in self._entries if fnmatch.fnmatch(k, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
