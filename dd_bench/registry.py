"""One small generic registry per component kind (timm's ``register_model`` / ``create_model``), and the registry of
registries (:data:`REGISTRIES`).

Names are lowercase and equal the Hydra config file stem where a config group selects them
(``conf/method/dm.yaml`` <-> ``dm``). A registry holds one of two kinds of entry, never both (timm's rule):

* ``kind="factory"``: each entry builds something new on every call (a method class, a model function, an
  augmentation, a figure). ``create(name, **kwargs)`` calls it; the registry's ``create_*`` front door
  (``create_method``, ``create_model``, ...) is what library code calls. ``get(name)`` returns the factory itself, to
  read what it declares (a method's ``Config``).
* ``kind="spec"``: each entry is a frozen value, looked up and used as it is (a protocol, a data set's constants, a
  teacher recipe, a file format's reader). ``get(name)`` and the registry's ``get_*`` front door look it up;
  ``create`` refuses, since nothing is built.

Either way an unknown name fails in one line naming the registered ones.

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
>>> Registry("gadget", kind="spec").create("foo")
Traceback (most recent call last):
...
TypeError: the gadget registry holds specs: look one up with get('foo'), there is nothing to create
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from dd_bench.errors import UserError

T = TypeVar("T")
Kind = Literal["factory", "spec"]


class Registry(Generic[T]):
    """Maps lowercase names to the entries of one component kind: factories (``create``) or specs (``get``).

    ``noun`` is what messages call an entry ("Unknown method 'x'"). ``sort=False`` lists entries in registration
    order instead of by name, for registries whose order is shown (an export format list, the figures of a page).
    """

    def __init__(self, noun: str, *, kind: Kind = "factory", sort: bool = True) -> None:
        if kind not in ("factory", "spec"):
            raise ValueError(f"a registry holds 'factory' or 'spec' entries; got kind={kind!r}")
        self.noun, self.kind, self.sort = noun, kind, sort
        self._entries: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            key = name if name is not None else obj.__name__  # type: ignore[attr-defined]
            if key != key.lower():
                raise ValueError(f"{self.noun} names are lowercase; got '{key}'")
            if key in self._entries:
                raise ValueError(f"{self.noun} '{key}' is already registered")
            if self.kind == "factory" and not callable(obj):
                raise TypeError(f"{self.noun} '{key}': a factory registry holds callables; got {type(obj).__name__}")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The entry itself: a spec, or a factory to inspect (``create`` builds from it)."""
        if name not in self._entries:
            raise UserError(f"Unknown {self.noun} '{name}'; available: {', '.join(self.list())}")
        return self._entries[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """A new object from the factory ``name``; a spec registry refuses (its entries are looked up with get)."""
        if self.kind == "spec":
            raise TypeError(f"the {self.noun} registry holds specs: look one up with get('{name}'), there is "
                            "nothing to create")
        return self.get(name)(**kwargs)  # type: ignore[operator]

    def list(self, pattern: str = "*") -> list[str]:
        names = sorted(self._entries) if self.sort else list(self._entries)
        return [k for k in names if fnmatch.fnmatch(k, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.noun!r}, kind={self.kind!r}, entries={len(self)})"


@dataclass(frozen=True)
class RegistryHome:
    """Where one registry lives and where users meet its names."""

    # "module:ATTRIBUTE". A path, not the object: most homes import torch, and what lists the registries (the help
    # resolver, the tests) imports only the ones it asks for.
    path: str
    # conf/<group>/<name>.yaml holds one file per entry (tests/test_cli.py checks that the stems are the names).
    group: str | None = None
    # Where `dd-bench --help` shows the names (dd_bench/app/help_manifest.json): "registry" (its Registries section and
    # ${dd_bench.list:NAME}) and/or config keys such as "export.format" (that key's choices). Empty: users never
    # type these names (the report draws every figure).
    shown: tuple[str, ...] = ()
    # "module:function" giving the names help shows where they are more than the keys (patterns such as
    # timm.<any timm model>); None: the keys.
    names: str | None = None


# The registry of registries, by the names help uses (${dd_bench.list:methods}). A new registry is added here, which
# puts it in the help manifest, the help resolver and the registry tests.
REGISTRIES: dict[str, RegistryHome] = {
    "methods": RegistryHome("dd_bench.methods:METHODS", group="method", shown=("registry",)),
    "datasets": RegistryHome("dd_bench.data:DATASETS", group="dataset", shown=("registry",)),
    "models": RegistryHome("dd_bench.models:MODELS", shown=("registry",), names="dd_bench.models:list_models"),
    "protocols": RegistryHome("dd_bench.eval:PROTOCOLS", group="eval", shown=("registry",)),
    "teachers": RegistryHome("dd_bench.teachers:TEACHER_RECIPES", shown=("registry",)),
    "label_sources": RegistryHome("dd_bench.labels:LABEL_SOURCES",
                                  shown=("registry", "label_source", "label_sources"),
                                  names="dd_bench.labels:label_source_names"),
    "export_formats": RegistryHome("dd_bench.exchange.export:EXPORTERS", shown=("export.format",)),
    "import_formats": RegistryHome("dd_bench.exchange.readers:IMPORTERS", shown=("import.format",)),
    "references": RegistryHome("dd_bench.eval.reference:REFERENCES", shown=("references",)),
    "scores": RegistryHome("dd_bench.pipeline.robust:ROBUST_SCORES", shown=("scores",)),
    # Names a recipe field holds (eval.augment takes the mtt protocols' subset, listed by the Hydra schema).
    "augments": RegistryHome("dd_bench.augment.named:NAMED_AUGMENTS"),
    "augmentations": RegistryHome("dd_bench.augment:AUGMENTATIONS"),
    "figures": RegistryHome("dd_bench.results.report.figures:FIGURE_BUILDERS"),
}


def _load(path: str) -> Any:
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def _home(name: str) -> RegistryHome:
    if name not in REGISTRIES:
        raise UserError(f"Unknown registry '{name}'; available: {', '.join(REGISTRIES)}")
    return REGISTRIES[name]


def get_registry(name: str) -> Registry:
    """The registry called ``name`` in :data:`REGISTRIES` (importing its module)."""
    return _load(_home(name).path)


def registries() -> dict[str, Registry]:
    """Every registry by name, in :data:`REGISTRIES` order (imports all their modules: torch included)."""
    return {name: get_registry(name) for name in REGISTRIES}


def registry_names(name: str) -> list[str]:
    """The names help shows for the registry ``name``: its keys, or its home's lister (with patterns)."""
    home = _home(name)
    return list(_load(home.names)()) if home.names else get_registry(name).list()
