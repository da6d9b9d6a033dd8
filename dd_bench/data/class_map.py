"""Class maps: which class each label of an imported file means, checked against the dataset's class order.

Most failed reproductions of published sets trace to metadata, not algorithms: a set or a teacher whose class order
is not the dataset's scores near chance with no error (RDED's issues #3, #4, #6, #10: 8.2% instead of 40.6%). So a
label is never taken for a class unread when a name says otherwise: an ImageFolder's folder names are read as class
names, and npz / pt labels and teacher outputs are read through a class map (a names file, one class name per line,
in the order of the file's labels) when one comes with them. A map that is a reordering of the dataset's classes is
applied; any other map fails in one line naming both orders.
"""

from __future__ import annotations

import re

from dd_bench.errors import UserError
from dd_bench.io.names_file import read_names_file  # noqa: F401  (importable from here)

SHOWN = 20  # names of an order shown in an error before "... (N in all)": CIFAR-100 and Tiny-ImageNet stay readable
NUMBERED = re.compile(r"(\d+)_(.+)")  # '003_cat': the folder names dd-bench's ImageFolder export writes


def show_order(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return f"[{shown}{f', ... ({len(names)} in all)' if len(names) > SHOWN else ''}]"


def mismatch(*, what: str, given: list[str], classes: list[str], dataset: str, problem: str,
             verb: str = "does") -> UserError:
    """The one-line error of a class map that does not fit: the problem, then both orders."""
    return UserError(f"{what} {verb} not match {dataset}'s classes ({problem}): its order {show_order(given)}; "
                     f"{dataset}'s order {show_order(classes)}")


def map_onto(names: list[str], *, classes: list[str], dataset: str, what: str) -> list[int]:
    """``perm[j]``: the dataset's index of the class the file's label ``j`` names. ``names`` must be the dataset's
    classes in some order (each once); anything else fails in one line naming both orders."""
    index = {c: i for i, c in enumerate(classes)}
    seen: set[str] = set()
    twice = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    unknown = [n for n in names if n not in index]
    missing = [c for c in classes if c not in seen]
    problems = ([f"not classes of {dataset}: {', '.join(repr(n) for n in unknown[:5])}"] if unknown else []) + \
        ([f"named twice: {', '.join(repr(n) for n in twice[:5])}"] if twice else []) + \
        ([f"missing: {', '.join(repr(c) for c in missing[:5])}"] if missing else [])
    if problems:
        raise mismatch(what=what, given=names, classes=classes, dataset=dataset, problem="; ".join(problems))
    return [index[n] for n in names]


def is_identity(perm: list[int]) -> bool:
    return perm == list(range(len(perm)))


def folder_classes(folders: list[str], *, classes: list[str], dataset: str, where: str,
                   class_map: list[str] | None = None) -> list[int]:
    """The dataset's class index of each ImageFolder folder, read from its name: a class name (``cat``), or
    ``<index>_<class name>`` as dd-bench's export writes it (``003_cat``; the name decides, so a tree written in
    another class order is remapped). A bare index (``003``) names no class: it is read through ``class_map`` (the
    names file: line ``i`` names index ``i``) when one is given, and refused otherwise. Two folders of one class,
    or a name that is no class of the dataset, fail in one line naming both orders."""
    index = {c: i for i, c in enumerate(classes)}
    if class_map is not None:
        map_onto(class_map, classes=classes, dataset=dataset, what=f"the class map of {where}")
    named: list[str] = []
    for folder in folders:
        numbered = NUMBERED.fullmatch(folder)
        if folder in index:
            named.append(folder)
        elif numbered and numbered[2] in index:
            named.append(numbered[2])
        elif class_map is not None and (folder.isdigit() or numbered):
            i = int(numbered[1] if numbered else folder)
            if i >= len(class_map):
                raise UserError(f"{where}/{folder}: index {i} is beyond the {len(class_map)} names of the class map")
            named.append(class_map[i])
        elif folder.isdigit():
            raise mismatch(what=f"the folders of {where}", given=folders, classes=classes, dataset=dataset, verb="do",
                           problem=f"folder '{folder}' is an index, not a class name: name the folders as the "
                                   f"classes ('{classes[0]}' or '000_{classes[0]}'), or give classes=FILE naming "
                                   "the class of each index")
        else:
            raise mismatch(what=f"the folders of {where}", given=folders, classes=classes, dataset=dataset, verb="do",
                           problem=f"folder '{folder}' names no class of {dataset}")
    seen: dict[str, str] = {}
    for folder, name in zip(folders, named, strict=True):
        if name in seen:
            raise mismatch(what=f"the folders of {where}", given=folders, classes=classes, dataset=dataset, verb="do",
                           problem=f"folders '{seen[name]}' and '{folder}' both name class '{name}'")
        seen[name] = folder
    return [index[n] for n in named]
