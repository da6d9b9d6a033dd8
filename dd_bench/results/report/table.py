"""The report's leaderboard: the terminal board (:mod:`dd_bench.results.board_text`) as sortable, filterable HTML.

One table per protocol table (protocol, version, ranked), under the leaderboard's own header text (what the
numbers are, why a table is not ranked, where published numbers come from), so the rule that rows of different
protocols are never compared stays in front of the reader. Cells use the board's formatters; the method and its
variant are two columns here (the board joins them); a cell with nothing to show is empty (the page's CSS draws a
faint dash), never ``<NA>``, ``None`` or ``nan``. Each sortable cell carries its raw number in ``data-sort``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from dd_bench.results import board_text
from dd_bench.results.leaderboard import _fmt_number, _fmt_published, _missing, _table_header, _text, published_shown
from dd_bench.results.report.series import accuracy_text

_BOARD = dict(board_text.COLUMNS)


def _method(row: pd.Series) -> str:
    return board_text._method(row) if row["kind"] == "reference" else str(row["method"])


def _published_title(row: pd.Series) -> str:
    if _missing(row["published"]):
        return ""
    parts = [f"published {_fmt_published(row).replace(' +- ', ' ± ')}",
             f"verified: {_text(row['published_verified']) or 'unknown'}",
             f"selection: {_text(row['published_selection']) or 'unknown'}", _text(row["published_source"])]
    return "; ".join(p for p in parts if p)


# (header, cell text, raw sort value or None for text order, tooltip or None, always shown)
Column = tuple[str, Callable[[pd.Series], str], Callable[[pd.Series], Any] | None, Callable[[pd.Series], str] | None,
               bool]
COLUMNS: tuple[Column, ...] = (
    ("dataset", lambda r: str(r["dataset"]), None, None, True),
    ("IPC", lambda r: "all" if _missing(r["ipc"]) else str(int(r["ipc"])),
     lambda r: 1e9 if _missing(r["ipc"]) else r["ipc"], None, True),  # full data after every IPC
    ("model", _BOARD["model"], None, None, True),
    ("#", _BOARD["#"], lambda r: r["rank"], None, False),
    ("method", _method, None, None, True),
    ("variant", lambda r: _text(r["variant"]), None, None, True),
    ("acc %", lambda r: accuracy_text(r).replace(" %", ""), lambda r: r["acc_mean"], None, True),
    ("IOR", _BOARD["IOR"], lambda r: r["ior"], None, False),
    ("published", _BOARD["published"], lambda r: r["published"], _published_title, True),
    ("gap (ours)", _BOARD["gap (ours)"], lambda r: r["gap vs published"], None, True),
    ("test-sel. %", _BOARD["test-sel. %"], lambda r: r["acc_test_selected"], None, False),
    ("LRS", _BOARD["LRS"], lambda r: r["lrs"], None, False),
    ("ARS", _BOARD["ARS"], lambda r: r["ars"], None, False),
    ("labels", _BOARD["labels"], None, None, True),
    ("stored", _BOARD["stored"], lambda r: r["storage_bytes"], None, True),
    ("+ at eval", _BOARD["+ at eval"], lambda r: r["eval_assets_bytes"], lambda r: _text(r["eval_assets"]), False),
    ("distill s", _BOARD["distill s"], lambda r: r["distill_seconds"], None, False),
    ("one-time s", lambda r: _fmt_number(r.get("one_time_seconds"), 1), lambda r: r.get("one_time_seconds"),
     lambda r: "training seconds of the teachers and experts this row used (cached, shared with other rows)", False),
    ("eval s", _BOARD["eval s"], lambda r: r["eval_seconds"], None, False),
    ("gpu mem", _BOARD["gpu mem"], lambda r: r["peak_memory_bytes"], None, False),
)  # fmt: skip
HEADER_TITLES = {
    "#": "rank by mean accuracy within its (data set, IPC, model) block; ranked tables only",
    "acc %": "mean ± sample std over evaluation seeds (seeds in brackets), percent on the real test set",
    "IOR": "points over a random real subset of the same size, same protocol, model and labels",
    "published": "the paper's number measured under this protocol (hover a cell for its source and selection rule)",
    "gap (ours)": "ours minus published, with which of our numbers it used: final, best (during training) or test "
                  "(test-selected checkpoint)",
    "test-sel. %": "the test-selected checkpoint's accuracy (the papers' selection; never ranked)",
    "stored": "bytes the set stores: images + labels (+ extras)",
    "+ at eval": "bytes evaluation needs besides the set (a teacher, a ZCA matrix)",
}


def _markup(text: str) -> str:
    """The board's header text as HTML: escaped, with its `backticks` as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text.replace(" +- ", " ± ")))


def _title(text: str) -> str:
    return f" title='{html.escape(text, quote=True)}'" if text else ""


def _class(classes: list[str]) -> str:
    return f" class='{' '.join(classes)}'" if classes else ""


def _number(value: Any) -> str | None:
    return None if _missing(value) else repr(float(value))


def _table(table: pd.DataFrame) -> tuple[str, list[str]]:
    cells = [[(text(row), None if sort is None else _number(sort(row)), "" if tip is None else tip(row))
              for _, text, sort, tip, _ in COLUMNS] for _, row in table.iterrows()]
    keep = [i for i, column in enumerate(COLUMNS) if column[4] or any(row[i][0] for row in cells)]
    notes: dict[str, int] = {}
    has_notes = any(_text(note) for note in table["note"])
    head = "".join(f"<th{_title(HEADER_TITLES.get(COLUMNS[i][0], ''))}"
                   f"{'' if COLUMNS[i][2] is None else ' data-numeric'}>{html.escape(COLUMNS[i][0])}</th>"
                   for i in keep) + ("<th>note</th>" if has_notes else "")
    body, previous = [], None
    for (_, row), row_cells in zip(table.iterrows(), cells, strict=True):
        block = (row["dataset"], _text(row["ipc"]))
        classes = ["ref"] if row["kind"] == "reference" else []
        if previous is not None and block != previous:
            classes.append("block-start")
        previous = block
        tds = []
        for i in keep:
            text, sort, tip = row_cells[i]
            attrs = ("" if sort is None else f" data-sort='{sort}'") + _title(tip)
            tds.append(f"<td{attrs}>{html.escape(text)}</td>")
        note = _text(row["note"])
        marks = [notes.setdefault(n, len(notes) + 1) for n in note.split("; ")] if note else []
        if has_notes:
            tds.append(f"<td class='note' title='{html.escape(note, quote=True)}'>"
                       + (f"[{','.join(map(str, marks))}]" if marks else "") + "</td>")
        body.append(f"<tr{_class(classes)}>" + "".join(tds) + "</tr>")
    footnotes = [f"<li value='{i}'>{_markup(text)}</li>" for text, i in notes.items()]
    rendered = (f"<div class='scroll'><table class='board'><thead><tr>{head}</tr></thead><tbody>" + "".join(body)
                + "</tbody></table></div>")
    return rendered, footnotes


def leaderboard_html(df: pd.DataFrame) -> str:
    """Every protocol table of the leaderboard frame, each under its header text, with numbered notes."""
    if df.empty:
        return "<p>No run records.</p>"
    out = []
    for (protocol, version, ranked), table in df.groupby(["protocol", "protocol_version", "ranked"], sort=False):
        header = [line for line in _table_header(str(protocol), int(version), bool(ranked),
                                                 has_published=published_shown(table)) if line]
        title, text = header[0], header[1:]
        badge = "<span class='badge ranked'>ranked</span>" if ranked else "<span class='badge'>not ranked</span>"
        rendered, footnotes = _table(table)
        count = f"{len(table)} row{'s' if len(table) != 1 else ''}"
        out.append(f"<section class='protocol'><h3>{_markup(title.split(' (ranked)')[0].split(' - NOT')[0])} "
                   f"{badge} <span class='count'>{count}</span></h3>"
                   + "".join(f"<p class='{'warn' if line.startswith('Not ranked') else 'explain'}'>{_markup(line)}"
                             "</p>" for line in text)
                   + rendered + (f"<ol class='notes'>{''.join(footnotes)}</ol>" if footnotes else "") + "</section>")
    return "".join(out)

