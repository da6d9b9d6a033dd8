"""The report page: ``out_dir/index.html`` (one file, no network at view time) and the figures as PNG beside it.

With Plotly installed (the ``report`` extra) the figures are interactive and plotly.js is inlined once; without
it the same figures are embedded as the matplotlib PNGs. Either way the page holds, in order: what the records
are, the figures (:mod:`.figures`), the leaderboard tables (:mod:`.table`) and the fidelity ledger panel.

Every ``<img>`` marks itself loaded (``data-loaded``) and every Plotly figure gets Plotly's ``js-plotly-plot``
class once drawn, so a headless browser can check that every figure rendered.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd

from dd_bench.io import atomic_write_bytes, atomic_write_text
from dd_bench.results.report import interactive
from dd_bench.results.report.assets import SCRIPT, STYLE
from dd_bench.results.report.cost import one_time_seconds
from dd_bench.results.report.figures import Figure, build_figures
from dd_bench.results.report.ledger_panel import ledger_panel
from dd_bench.results.report.series import table_title
from dd_bench.results.report.static import render_png
from dd_bench.results.report.table import leaderboard_html

RULE = ("One table per protocol. A protocol fixes how every set is scored (the evaluation network's training "
        "recipe, epochs, augmentation); numbers from different protocols are <b>not comparable</b>, so no figure "
        "or table ever puts them side by side, and tables marked <i>not ranked</i> are never ranked.")


def _facts(df: pd.DataFrame) -> str:
    evaluations = df[df["kind"] == "evaluation"]
    tables = df.groupby(["protocol", "protocol_version", "ranked"], sort=False).size().index
    facts = [(len(evaluations), "evaluations"),
             (evaluations["method"].nunique(), "methods"),
             (len(df) - len(evaluations), "reference rows"),
             (df["dataset"].nunique(), "data sets"),
             (df["model"].nunique(), "evaluation models"),
             (len(tables), "protocol tables")]
    cards = "".join(f"<div class='fact'><b>{n}</b><span>{what if n != 1 else what[:-1]}</span></div>"
                    for n, what in facts)
    names = ", ".join(f"<code>{html.escape(table_title(*t))}</code>" for t in tables)
    return f"<div class='facts'>{cards}</div><p class='lead'>Protocols: {names}.</p>"


def _figure_card(figure: Figure, *, png: bytes | None, div: str) -> str:
    head = f"<section class='card' id='{figure.name}'>"
    if png is None:
        return (f"{head}<h2>{html.escape(figure.title)}</h2><p class='empty'>{html.escape(figure.empty)}</p>"
                "</section>")
    link = f"<a class='png' href='{figure.name}.png'>PNG</a>"
    if div:
        body = f"<div class='plot'>{div}</div>"
    else:
        data = base64.b64encode(png).decode()
        body = (f"<img alt='{html.escape(figure.title, quote=True)}' class='figure' "
                f"onload=\"this.dataset.loaded='1'\" src='data:image/png;base64,{data}'>")
    return (f"{head}{link}<h2>{html.escape(figure.title)}</h2><p class='caption'>{html.escape(figure.caption)}</p>"
            f"{body}</section>")


def build_report(records: list[Any], *, out_dir: Path, published_csv: Path | None = None,
                 cache_dir: Path | None = None, ledger_dir: Path | None = None,
                 interactive_figures: bool | None = None) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/<figure>.png``; returns the HTML path. ``ledger_dir``: the fidelity
    ledger's entries, shown as a panel when there are any. ``interactive_figures``: Plotly figures (None: when
    Plotly is installed)."""
    from dd_bench.results import build_leaderboard

    df = build_leaderboard(records, published_csv=published_csv)
    df["one_time_seconds"] = df["record_id"].map({r.record_id: one_time_seconds(r, cache_dir) for r in records})
    use_plotly = interactive.available() if interactive_figures is None else interactive_figures
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = build_figures(df, {r.record_id: r.config or {} for r in records})
    cards = []
    for figure in figures:
        png = render_png(figure)
        path = out_dir / f"{figure.name}.png"
        if png is None:
            path.unlink(missing_ok=True)  # an old run's figure must not sit beside a page that no longer has it
        else:
            atomic_write_bytes(path, png)
        cards.append(_figure_card(figure, png=png, div=interactive.render_div(figure) if use_plotly else ""))
    nav = "".join(f"<a href='#{f.name}'>{html.escape(f.title)}</a>" for f in figures)
    nav += "<a href='#leaderboard'>Leaderboard</a>"
    ledger = ledger_panel(ledger_dir)
    nav += "<a href='#ledger'>Fidelity ledger</a>" if ledger else ""
    how = ("Interactive figures: hover a point for its details, click a legend entry to hide or show it, drag to "
           "zoom, double-click to reset." if use_plotly else
           "Static figures (install the <code>report</code> extra, <code>pip install 'dd-bench[report]'</code>, for "
           "interactive ones with hover details).")
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'><title>dd-bench report</title>",
             f"<style>{STYLE}</style>",
             f"<script>{interactive.plotly_js()}</script>" if use_plotly else "",
             "</head><body><main>",
             "<h1>dd-bench report</h1>",
             f"<p class='lead'>{len(records)} run records. Accuracies are percent on the real test set. {how}</p>",
             _facts(df), f"<p class='rule'>{RULE}</p>", f"<nav>{nav}</nav>", *cards,
             "<section class='card' id='leaderboard'><h2>Leaderboard</h2>",
             "<p class='caption'>The terminal board with every row: click a header to sort, type to filter (every "
             "word must match, e.g. <code>dm convnet</code>); hover a header for what it means, a note mark for its "
             "text. Grey italic rows are references.</p>",
             "<div class='tools'><input id='filter' type='search' placeholder='filter rows: method, model, variant, "
             "labels...' aria-label='filter rows'><span id='shown'></span></div>",
             leaderboard_html(df), "</section>", ledger,
             "<footer>Written by <code>dd-bench report</code> from the run records; the full detail of every row is "
             "in <code>leaderboard.csv</code> (<code>dd-bench leaderboard</code>).</footer>",
             f"</main><script>{SCRIPT}</script></body></html>"]
    page = out_dir / "index.html"
    atomic_write_text(page, "\n".join(parts))
    return page
