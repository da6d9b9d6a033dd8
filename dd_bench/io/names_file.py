"""A names file: one class name per line, in the order of a file's labels or outputs (``classes=FILE`` of an import,
``<weights>.classes.txt`` beside a teacher's weights). Reading it is a file format; what the names mean against a
data set's class order is :mod:`dd_bench.data.class_map`'s."""

from __future__ import annotations

from pathlib import Path

from dd_bench.errors import UserError, UserFileNotFoundError


def read_names_file(path: str | Path, *, option: str = "classes") -> list[str]:
    """The class names of a names file: one per line, surrounding spaces and blank lines ignored."""
    path = Path(path)
    if not path.is_file():
        raise UserFileNotFoundError(f"{option}={path} does not exist; expected a names file, one class name per line "
                                    "in the order of the file's labels")
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not names:
        raise UserError(f"{option}={path} holds no class names; expected one class name per line")
    return names
