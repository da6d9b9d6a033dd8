"""The report's figures as PNG, with matplotlib (a core dependency): the files written beside the page, and the
page's own figures when Plotly is not installed. Same model as the interactive figures (:mod:`.figures`).

Legends sit under the panels (never over the data), text is at least 8 pt, and each panel is about 4.4 x 3.2
inches, so a page of them stays readable at 100% zoom instead of filling the screen.
"""

from __future__ import annotations

import io
import math
from typing import Any

from dd_bench.results.report.figures import BarPanel, Figure, HeatmapPanel, XYPanel

DPI = 100
LINESTYLES = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}
COLUMNS = 3


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _grid(n: int, width: float, height: float):
    cols = min(COLUMNS, n)
    rows = math.ceil(n / cols)
    fig, axes = _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                                   layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _xy_panel(ax: Any, panel: XYPanel, handles: dict[str, Any]) -> None:
    for trace in panel.traces:
        style = LINESTYLES.get(trace.dash, "-")
        if trace.mode == "hline":
            (handle,) = ax.plot(trace.xs, trace.ys, linestyle=style, color=trace.colour, linewidth=1.6, zorder=1)
        else:
            errors = trace.errors if any(trace.errors) else None
            handle = ax.errorbar(trace.xs, trace.ys, yerr=errors, color=trace.colour, linestyle=style,
                                 marker="s" if trace.reference else "o", markersize=5, capsize=3, linewidth=1.4,
                                 zorder=2 if trace.reference else 3)
        handles.setdefault(trace.name, handle)
    if panel.x_log:
        ax.set_xscale("log")
    ax.set_xlim(*panel.x_range)
    if panel.ticks:
        ax.set_xticks([t for t, _ in panel.ticks], [label for _, label in panel.ticks])
        ax.minorticks_off()
    ax.set_xlabel(panel.x_title, fontsize=9)
    ax.set_ylabel("accuracy %", fontsize=9)
    ax.set_title(panel.title, fontsize=10)
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.tick_params(labelsize=8)


def _xy(figure: Figure) -> bytes:
    fig, axes = _grid(len(figure.panels), 4.4, 3.2)
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes, figure.panels, strict=True):
        _xy_panel(ax, panel, handles)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(3, len(handles)),
               fontsize=8, frameon=False)
    return _png(fig)


def _heatmaps(figure: Figure) -> bytes:
    import numpy as np

    widest = max(len(panel.columns) for panel in figure.panels)
    tallest = max(len(panel.rows) for panel in figure.panels)
    fig, axes = _grid(len(figure.panels), 1.1 * widest + 3.6, 0.38 * tallest + 1.6)
    for ax, panel in zip(axes, figure.panels, strict=True):
        values = np.array([[np.nan if v is None else v for v in row] for row in panel.values], dtype=float)
        image = ax.imshow(values, cmap="viridis", vmin=panel.low, vmax=panel.high, aspect="auto")
        ax.set_xticks(range(len(panel.columns)), panel.columns, fontsize=8)
        ax.set_yticks(range(len(panel.rows)), panel.rows, fontsize=8)
        for i, row in enumerate(panel.text):
            for j, text in enumerate(row):
                ax.text(j, i, text, ha="center", va="center", color=panel.text_colours[i][j], fontsize=9)
        ax.set_title(panel.title, fontsize=10)
        fig.colorbar(image, ax=ax, label="accuracy %", shrink=0.9)
    return _png(fig)


def _bars(figure: Figure) -> bytes:
    tallest = max(len(panel.labels) for panel in figure.panels)
    fig, axes = _grid(len(figure.panels), 6.4, 0.32 * tallest + 1.4)
    for ax, panel in zip(axes, figure.panels, strict=True):
        positions = list(range(len(panel.labels)))[::-1]  # the first row on top, as in the table
        ax.barh(positions, panel.values, color=panel.colours, height=0.6)
        ax.set_yticks(positions, panel.labels, fontsize=8)
        ax.axvline(0, color="#333333", linewidth=0.8)
        for y, value in zip(positions, panel.values, strict=True):
            ax.annotate(f"{value:+.2f}", (value, y), xytext=(4 if value >= 0 else -4, 0), textcoords="offset points",
                        ha="left" if value >= 0 else "right", va="center", fontsize=8)
        ax.margins(x=0.25)
        ax.set_xlabel(panel.x_title, fontsize=9)
        ax.set_title(panel.title, fontsize=10)
        ax.tick_params(labelsize=8)
    return _png(fig)


def render_png(figure: Figure) -> bytes | None:
    """The figure as PNG bytes, or None when it has no panel."""
    if not figure.panels:
        return None
    kind = type(figure.panels[0])
    if kind is XYPanel:
        return _xy(figure)
    if kind is HeatmapPanel:
        return _heatmaps(figure)
    if kind is BarPanel:
        return _bars(figure)
    raise TypeError(f"no PNG renderer for {kind.__name__}")
