"""MkDocs hook (``hooks:`` in mkdocs.yml): fills the method cards' tables from the files that define them, so the
docs cannot drift from the code, the configs or the published numbers.

A page writes one directive per line; the build replaces it with a Markdown table:

* ``<!-- method-keys: NAME -->``: every field of method NAME's ``Config`` (inherited ones included, nested dataclasses
  as dotted keys), its default as composed (``conf/method/NAME.yaml`` over the dataclass) and its comment (the
  YAML's, else the dataclass's);
* ``<!-- presets: NAME -->``: the paper presets (``conf/experiment/*.yaml``) whose method is NAME;
* ``<!-- published: KEY [KEY ...] -->``: the rows of ``baselines/published.csv`` with those method keys.

It reads the sources with ``ast``, ``tokenize`` and ``yaml``, never importing dd_bench: importing it loads torch,
which would cost the docs build seconds and the docs extra a dependency. A directive that finds nothing fails the
build: an empty table would hide a renamed method.
"""

from __future__ import annotations

import ast
import csv
import functools
import io
import re
import tokenize
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "dd_bench"
DIRECTIVE = re.compile(r"^<!-- (method-keys|presets|published): ([^>]*?) -->$", re.MULTILINE)


class DocsDirectiveError(Exception):
    """A directive that names nothing the sources define."""


# ---- Config dataclasses, read statically ----------------------------------------------------------------------


class _Module(NamedTuple):  # not a dataclass: loaded by file path (tests), the module may not be in sys.modules
    tree: ast.Module
    lines: list[str]
    comments: dict[int, str]  # line number -> the comment on it


def _comments(source: str) -> dict[int, str]:
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def _modules() -> dict[Path, _Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        modules[path] = _Module(ast.parse(source), source.splitlines(), _comments(source))
    return modules


class _Index:
    """Top-level classes of the package by name, and the registered methods."""

    def __init__(self) -> None:
        self.modules = _modules()
        self.classes: dict[str, list[tuple[ast.ClassDef, _Module]]] = {}
        self.methods: dict[str, tuple[ast.ClassDef, _Module]] = {}
        for module in self.modules.values():
            for node in module.tree.body:
                if not isinstance(node, ast.ClassDef):
                    continue
                self.classes.setdefault(node.name, []).append((node, module))
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                            and deco.func.attr == "register" and ast.unparse(deco.func.value) == "METHODS"):
                        self.methods[deco.args[0].value] = (node, module)

    def top_class(self, name: str, near: _Module) -> tuple[ast.ClassDef, _Module] | None:
        found = self.classes.get(name, [])
        same = [c for c in found if c[1] is near]
        if same:
            return same[0]
        return found[0] if len(found) == 1 else None

    def config_of(self, cls: ast.ClassDef, module: _Module) -> tuple[ast.ClassDef, _Module] | None:
        """The ``Config`` a method class defines or inherits."""
        for node in cls.body:
            if isinstance(node, ast.ClassDef) and node.name == "Config":
                return node, module
        for base in cls.bases:
            if isinstance(base, ast.Name) and (found := self.top_class(base.id, module)):
                if (config := self.config_of(*found)) is not None:
                    return config
        return None

    def fields(self, cls: ast.ClassDef, module: _Module, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Dataclass fields in declaration order, base classes first (as ``dataclasses.fields``)."""
        out: dict[str, dict[str, Any]] = {}
        for base in cls.bases:
            resolved = None
            if isinstance(base, ast.Name):
                resolved = self.top_class(base.id, module)
            elif isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):  # Method.Config
                owner = self.top_class(base.value.id, module)
                resolved = self.config_of(*owner) if owner else None
            if resolved is not None:
                out.update(self.fields(*resolved, prefix=prefix))
        for node in cls.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            name = prefix + node.target.id
            nested = self._nested_dataclass(node.annotation, module)
            if nested is not None:
                out.update(self.fields(*nested, prefix=name + "."))
                continue
            out[name] = {"default": _python_default(node.value), "comment": _field_comment(node, module)}
        return out

    def _nested_dataclass(self, annotation: ast.expr, module: _Module) -> tuple[ast.ClassDef, _Module] | None:
        if not isinstance(annotation, ast.Name):
            return None
        found = self.top_class(annotation.id, module)
        if found and any(ast.unparse(d).endswith("dataclass") for d in found[0].decorator_list):
            return found
        return None


def _field_comment(node: ast.AnnAssign, module: _Module) -> str:
    """The comment on the field's line, after the comment lines right above it (which often explain it)."""
    above = []
    line = node.lineno - 1
    while line >= 1 and module.lines[line - 1].strip().startswith("#"):
        above.insert(0, module.comments.get(line, ""))
        line -= 1
    parts = [*above, module.comments.get(node.end_lineno or node.lineno, "")]
    return " ".join(p for p in parts if p)


def _python_default(value: ast.expr | None) -> Any:
    if value is None:
        return "(required)"
    if isinstance(value, ast.Constant):
        return value.value
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):  # Enum.member
        return value.attr
    if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("field"):
        for kw in value.keywords:
            if kw.arg == "default_factory" and isinstance(kw.value, ast.Lambda):
                return _python_default(kw.value.body)
            if kw.arg == "default":
                return _python_default(kw.value)
    try:
        return ast.literal_eval(value)
    except ValueError:
        return ast.unparse(value)


# ---- conf/method/<name>.yaml: composed defaults and their comments ---------------------------------------------


def _yaml_values(path: Path) -> dict[str, Any]:
    def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out = {}
        for key, value in node.items():
            if key == "defaults":
                continue
            if isinstance(value, dict):
                out.update(flatten(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    return flatten(yaml.safe_load(path.read_text()) or {})


def _yaml_comments(path: Path) -> dict[str, str]:
    """``key: value  # comment`` lines, nested keys dotted by indentation."""
    out, stack = {}, []  # stack: (indent, key) of the open mappings
    for raw in path.read_text().splitlines():
        match = re.match(r"^( *)([A-Za-z_][\w]*):(.*)$", raw)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [key])
        value, _, comment = rest.partition(" #")
        if comment.strip():
            out[dotted] = comment.strip()
        if not value.strip():
            stack.append((indent, key))
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    """Source comments as table-cell Markdown: code spans kept, and outside them nothing that Markdown would read
    as a tag (``<out>``), emphasis (``d * X``, ``r_bn``) or a column break."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = re.sub(r"([\\*_<>])", r"\\\1", parts[i])
    return "`".join(parts).replace("|", "\\|")


def method_keys_table(name: str, index: _Index | None = None) -> str:
    index = index or _Index()
    if name not in index.methods:
        raise DocsDirectiveError(f"method-keys: no method registered as '{name}' in dd_bench/methods/")
    config = index.config_of(*index.methods[name])
    fields = index.fields(*config) if config else {}
    conf = ROOT / "conf" / "method" / f"{name}.yaml"
    values, comments = _yaml_values(conf), _yaml_comments(conf)
    if not fields:
        return f"`{name}` has no options."
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, spec in fields.items():
        default = values[key] if key in values else spec["default"]
        # The default sits in a code span, where Markdown escapes nothing: only the column break needs care.
        shown = _fmt(default).replace("|", "\\|")
        rows.append(f"| `{key}` | `{shown}` | {_cell(comments.get(key) or spec['comment'])} |")
    return "\n".join(rows)


# ---- conf/experiment/*.yaml -------------------------------------------------------------------------------------


def _override(raw: dict[str, Any], group: str) -> str | None:
    for entry in raw.get("defaults") or []:
        if isinstance(entry, dict) and f"override /{group}" in entry:
            return entry[f"override /{group}"]
    return None


@functools.lru_cache(maxsize=1)
def _experiments() -> tuple[tuple[Path, dict[str, Any]], ...]:
    """Every paper experiment, parsed once for all the cards."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it
    experiments = [(path, yaml.load(path.read_text(), Loader=loader))
                   for path in (ROOT / "conf" / "experiment").glob("*.yaml")]
    return tuple(sorted(experiments, key=lambda e: (_override(e[1], "dataset") or "", e[1].get("ipc") or 0,
                                                    e[0].stem)))


def presets_table(name: str) -> str:
    rows = []
    for path, raw in _experiments():
        if _override(raw, "method") != name:
            continue
        fyi = " (FYI)" if (raw.get("method") or {}).get("fyi") else ""
        # Not every experiment sets published/verified (the coreset ones name their number in a comment only).
        published = _cell(str(raw["published"])) if raw.get("published") else "–"
        verified = _fmt(raw["verified"]) if raw.get("verified") is not None else "–"
        rows.append(f"| `{path.stem}`{fyi} | {_override(raw, 'dataset')} | {raw.get('ipc')} | "
                    f"`{_override(raw, 'eval')}` | {_fmt(raw.get('models'))} | {raw.get('seeds')} | {published} | "
                    f"{verified} |")
    if not rows:
        raise DocsDirectiveError(f"presets: no conf/experiment/*.yaml overrides /method to '{name}'")
    head = ["| `experiment=` | dataset | ipc | protocol | models | seeds | `published:` | `verified:` |",
            "|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + rows)


# ---- baselines/published.csv ------------------------------------------------------------------------------------


def published_table(keys: list[str]) -> str:
    with (ROOT / "baselines" / "published.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] in keys]
    missing = sorted(set(keys) - {r["method"] for r in rows})
    if missing:
        raise DocsDirectiveError(f"published: no row of baselines/published.csv has method {missing}")

    def order(r: dict[str, str]) -> tuple:
        ipc = r["ipc"]
        return (keys.index(r["method"]), r["dataset"], not ipc.isdigit(), int(ipc) if ipc.isdigit() else 0,
                r["model"])

    out = ["| key | dataset | ipc | model | acc % | protocol | selection | verified | source |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=order):
        acc = r["acc_mean"] + (f" ± {r['acc_std']}" if r["acc_std"] else "")
        protocol = f"`{r['protocol']}`" if r["protocol"] else "none"
        out.append(f"| `{r['method']}` | {r['dataset']} | {r['ipc']} | {r['model']} | {acc} | {protocol} | "
                   f"{r['selection']} | {r['verified']} | {_cell(r['source'])} |")
    return "\n".join(out)


# ---- the hook ---------------------------------------------------------------------------------------------------


def render(markdown: str, index: _Index | None = None) -> str:
    """``markdown`` with every directive replaced by its table."""
    lazy: list[_Index] = [index] if index else []

    def replace(match: re.Match[str]) -> str:
        kind, arg = match.group(1), match.group(2).split()
        if kind == "method-keys":
            if not lazy:
                lazy.append(_Index())
            return method_keys_table(arg[0], lazy[0])
        if kind == "presets":
            return presets_table(arg[0])
        return published_table(arg)

    return DIRECTIVE.sub(replace, markdown)


_INDEX: list[_Index] = []  # parsed once per build, not once per page


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if not DIRECTIVE.search(markdown):
        return markdown
    if not _INDEX:
        _INDEX.append(_Index())
    try:
        return render(markdown, _INDEX[0])
    except DocsDirectiveError as err:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_path}: {err}") from None


# ---- docstrings: a griffe extension (mkdocs.yml: handlers.python.options.extensions) ----------------------------

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc):`~?([^`]+)`")
DOCTEST_FLAG = re.compile(r"\s*# doctest: [+-]\w+(?:, *[+-]\w+)*")


def markdown_docstring(text: str) -> str:
    """dd-bench's docstrings are reST-flavoured; mkdocstrings renders Markdown. Cross-reference roles become code
    spans (``:class:`~a.B``` -> ```B```; the qualified name when there is no ``~``), and doctest examples become
    ``pycon`` fences without their doctest flags (Markdown would read ``>>>`` as nested block quotes)."""

    def role(match: re.Match[str]) -> str:
        target = match.group(1)
        return f"`{target.rsplit('.', 1)[-1]}`" if match.group(0).split("`")[1].startswith("~") else f"`{target}`"

    out: list[str] = []
    in_example = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>"):
            if not in_example:
                out.append("```pycon")
                in_example = True
            out.append(DOCTEST_FLAG.sub("", stripped))
            continue
        if in_example:
            if stripped:  # continuation (...) or expected output
                out.append(DOCTEST_FLAG.sub("", stripped))
                continue
            out.append("```")
            in_example = False
        out.append(ROLE.sub(role, line))
    if in_example:
        out.append("```")
    return "\n".join(out)


try:
    import griffe
except ImportError:  # the MkDocs hook above needs no griffe; only mkdocstrings loads this class
    griffe = None

if griffe is not None:

    class MarkdownDocstrings(griffe.Extension):
        """Rewrites each docstring with :func:`markdown_docstring` once griffe has loaded it."""

        def on_object(self, *, obj: Any, **kwargs: Any) -> None:
            if obj.docstring is not None:
                obj.docstring.value = markdown_docstring(obj.docstring.value)
