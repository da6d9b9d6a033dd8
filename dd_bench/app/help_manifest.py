"""The options manifest behind ``dd-bench --help``: generated from the code, read without importing it.

Printing help must not import torch (importing the methods, protocols and models costs seconds), so what help needs
from the code (the registries, each config key's default and one-line doc, each method's options and each
protocol's values) is written once to ``help_manifest.json`` beside this file. ``tests/test_help.py`` regenerates it
and compares, so it cannot go stale; after changing a registry, a schema or a method's ``Config``, regenerate it::

    python -m dd_bench.app.help_manifest

The choices of each config group are not in it: help lists them from ``conf/`` itself.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Any

MANIFEST_PATH = Path(__file__).resolve().parent / "help_manifest.json"
MANIFEST_VERSION = 1
# The eval.* keys a protocol can be overridden with (EvalSchema; setting any makes an unranked <name>+custom).
PROTOCOL_KEYS = ("epochs", "batch_size", "lr", "use_learned_lr", "augment")
DOC_LIMIT = 110  # characters of a one-line doc; the help wraps it under its key


def one_line(text: str, *, limit: int = DOC_LIMIT) -> str:
    """The first sentence of ``text`` on one line, cut at a clause boundary when longer than ``limit``."""
    text = " ".join(text.split())
    sentence = re.split(r"(?<=[a-z0-9)\]])\. (?=[A-Z(`])", text, maxsplit=1)[0].rstrip(".")
    if len(sentence) <= limit:
        return sentence
    # Cut outside brackets (a cut inside one leaves it open), at the strongest boundary past half the limit, else
    # at any clause boundary, else at a word.
    depth, outside = 0, []
    for char in sentence[:limit]:
        depth += (char in "([") - (char in ")]")
        outside.append(depth == 0)
    for start in (limit // 2, 16):
        for mark in ("; ", ": ", ", ", " ("):
            cuts = [i for i in range(start, limit) if outside[i] and sentence.startswith(mark, i)]
            if cuts:
                return sentence[:cuts[-1]]
    return sentence[:sentence.rfind(" ", 0, limit)] + " ..."


def _comments(source: str) -> tuple[dict[int, str], set[int]]:
    """(line -> the comment on it, the lines that hold nothing but a comment), 1-based."""
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    return comments, set(comments) - code_lines


def field_docs(cls: type) -> dict[str, str]:
    """Each dataclass field's doc as the source writes it: its trailing comment, else the comment block right above
    it (a block shared by several fields documents the first). Fields of base classes are looked up in their own
    source; a class without source (made at run time) documents nothing."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not vars(klass).get("__annotations__"):  # declares no fields of its own
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        comments, comment_only = _comments(source)
        for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
            if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
                continue
            doc = comments.get(node.end_lineno or node.lineno) if node.lineno == node.end_lineno else None
            if doc is None:
                above, line = [], node.lineno - 1
                while line in comment_only:
                    above.insert(0, comments[line])
                    line -= 1
                doc = " ".join(above)
            if doc:
                docs[node.target.id] = doc
    return docs


def _plain(value: Any) -> Any:
    """A JSON value as the command line writes it (enums by value, tuples as lists)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return _plain(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return _plain(f.default_factory())  # type: ignore[misc]
    return None


def _keys(cls: type, *, skip: tuple[str, ...] = (),
          user_docs: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Each field's default and one-line doc: ``user_docs`` (the comments users read in conf/) first, else the
    code's comment."""
    docs = {**field_docs(cls), **(user_docs or {})}
    return {f.name: {"default": _default(f), "doc": one_line(docs.get(f.name, ""))}
            for f in dataclasses.fields(cls) if f.name not in skip}


def _leading_comment(path: Path) -> str:
    """The comment lines a YAML file opens with, joined."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def _yaml_comments(path: Path, *, section: str | None = None) -> dict[str, str]:
    """``key: value  # doc`` -> {key: doc}, for the top-level keys of a YAML file (``section``: the keys of that
    top-level mapping instead)."""
    found, inside = {}, section is None
    for line in path.read_text().splitlines():
        if section is not None and re.match(r"^[A-Za-z_]", line):
            inside = line.startswith(f"{section}:")
            continue
        match = re.match(r"^ *([A-Za-z_][A-Za-z0-9_]*):[^#]*#\s*(.+)$", line)
        if inside and match and (section is None) == (not line.startswith(" ")):
            found[match.group(1)] = match.group(2).strip()
    return found


def build_manifest() -> dict[str, Any]:
    """The manifest as the code and conf/ define it now (imports every registry: torch included)."""
    from dd_bench.app import config_schema
    from dd_bench.eval import PROTOCOLS
    from dd_bench.exchange.pixels import SPACES
    from dd_bench.methods import METHODS
    from dd_bench.registry import REGISTRIES, registry_names
    from dd_bench.resources import CONF_DIR
    from dd_bench.synset.image_store import IMAGE_STORES

    # Every registry goes where its home says help shows it: the Registries section, or the choices of the keys
    # that take its names (help shows them beside the key).
    registries: dict[str, list[str]] = {}
    choices: dict[str, list[str]] = {}
    for name, home in REGISTRIES.items():
        for where in home.shown:
            if where == "registry":
                registries[name] = registry_names(name)
            else:
                choices[where] = registry_names(name)
    # The valid values of the other plain keys that take one of a few words.
    choices.update({"space": list(SPACES), "image_store": list(IMAGE_STORES)})
    groups = {"dataset": config_schema.DatasetSchema, "eval": config_schema.EvalSchema,
              "logger": config_schema.LoggerSchema}
    methods = {}
    for name in METHODS.list():
        config = METHODS.get(name).Config
        options = _keys(config)
        yaml_docs = _yaml_comments(CONF_DIR / "method" / f"{name}.yaml")
        for key, entry in options.items():  # the method file's comment where the code has none
            entry["doc"] = entry["doc"] or one_line(yaml_docs.get(key, ""))
        methods[name] = {"doc": one_line(_leading_comment(CONF_DIR / "method" / f"{name}.yaml")),
                         "options": options}
    protocols = {}
    for name in PROTOCOLS.list():
        protocol = PROTOCOLS.get(name)
        values = {f.name: getattr(protocol, f.name) for f in dataclasses.fields(protocol)}
        protocols[name] = {"doc": one_line(protocol.description, limit=160), "ranked": bool(protocol.ranked),
                           "cpu_protocol": protocol.cpu_protocol, "length": protocol.length,
                           "values": {k: _plain(values[k]) for k in PROTOCOL_KEYS if k in values}}
    return {
        "version": MANIFEST_VERSION,
        "generated_by": "python -m dd_bench.app.help_manifest",
        "tasks": list(config_schema.TASKS),
        "registries": registries,
        "choices": choices,
        "keys": _keys(config_schema.DDBenchSchema, skip=("demo",), user_docs=_yaml_comments(CONF_DIR / "config.yaml")),
        "demo_keys": _keys(config_schema.DemoSchema,
                           user_docs=_yaml_comments(CONF_DIR / "config.yaml", section="demo")),
        "group_keys": {group: _keys(schema, skip=("name",)) for group, schema in groups.items()},
        "methods": methods,
        "protocols": protocols,
    }


def manifest_text(manifest: dict[str, Any]) -> str:
    """The file's exact text (in the code's order: fields as declared, registries sorted), so regenerating it
    compares byte for byte."""
    return json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"


def write_manifest(*, path: Path = MANIFEST_PATH) -> Path:
    path.write_text(manifest_text(build_manifest()), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_manifest(path=Path(sys.argv[1]) if len(sys.argv) > 1 else MANIFEST_PATH)}")
