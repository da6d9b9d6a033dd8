"""The docs site stays whole without building it: every page under docs/ is in mkdocs.yml's nav, every relative link
in README.md resolves, every method has a card, every published number has a table, and every directive the docs
hook fills resolves. `mkdocs build --strict` (in .ci/run) checks the links between pages; this needs no mkdocs."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Pages under docs/ deliberately left out of the nav, each with the reason. None today.
NOT_IN_NAV: dict[str, str] = {}


class _TolerantLoader(yaml.SafeLoader):
    """mkdocs.yml may carry !!python/name:... (Material's extensions) or !ENV tags: read them as None."""


_TolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
_TolerantLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _nav_pages(nav: Any) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _docs_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (MkDocs) and GitHub give a simple heading."""
    text = re.sub(r"[`*]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[-\s]+", "-", text).strip("-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE)}


def test_every_docs_page_is_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_TolerantLoader)
    nav = _nav_pages(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    missing = [p for p in pages if p not in nav and p not in NOT_IN_NAV]
    assert not missing, ("docs pages missing from mkdocs.yml's nav (add them, or to NOT_IN_NAV with a reason): "
                         f"{missing}")
    dangling = [p for p in nav if not (DOCS / p).is_file()]
    assert not dangling, f"mkdocs.yml's nav names pages that do not exist: {dangling}"
    assert not set(NOT_IN_NAV) & set(nav), "a page is both in the nav and excluded from it"


def test_every_relative_link_in_the_readme_resolves():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [link for link in links if not re.match(r"^[a-z]+:|^#", link)]
    assert relative, "the README links into the docs"
    broken = []
    for link in relative:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        if not target.exists():
            broken.append(link)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(link)
    assert not broken, f"README.md links that do not resolve: {broken}"


def test_every_method_has_a_card():
    """A card names its method in a directive (its keys, presets or published numbers), so its tables are there."""
    methods = {p.stem for p in (ROOT / "conf" / "method").glob("*.yaml")}
    named = set()
    for page in (DOCS / "methods").glob("*.md"):
        for directive in re.findall(r"<!-- (?:method-keys|presets|published): ([^>]*?) -->", page.read_text()):
            named.update(directive.split())
    assert methods - named == set(), f"methods without a card in docs/methods/: {methods - named}"


def test_every_published_method_key_is_on_a_page():
    with (ROOT / "baselines" / "published.csv").open(newline="") as f:
        keys = {row["method"] for row in csv.DictReader(f)}
    shown = set()
    for page in DOCS.rglob("*.md"):
        for directive in re.findall(r"<!-- published: ([^>]*?) -->", page.read_text()):
            shown.update(directive.split())
    assert keys - shown == set(), f"baselines/published.csv method keys no docs page shows: {keys - shown}"


def test_every_directive_resolves():
    """A directive naming a method, an experiment group or a published key that no longer exists fails the build;
    this finds it in `make test` already. The package index is parsed once for all pages."""
    hooks = _docs_hooks()
    index = hooks._Index()
    for page in sorted(DOCS.rglob("*.md")):
        rendered = hooks.render(page.read_text(), index)
        assert not hooks.DIRECTIVE.search(rendered), page


def test_docstrings_become_markdown():
    hooks = _docs_hooks()
    out = hooks.markdown_docstring("One :class:`~dd_bench.results.RunRecord` per :func:`dd_bench.eval.evaluate`.\n\n"
                                   ">>> f(1)   # doctest: +SKIP\n2\n\nAfter.")
    assert out == ("One `RunRecord` per `dd_bench.eval.evaluate`.\n\n```pycon\n>>> f(1)\n2\n```\n\nAfter.")
