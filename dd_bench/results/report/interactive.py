"""The report's figures as interactive Plotly charts (hover details, zoom, legend toggling, a PNG download button
that runs in the browser), from the same model as the PNGs (:mod:`.figures`).

Plotly is the optional ``report`` extra, not a core dependency. Measured on the 2-core development machine
(plotly 7.1.0, 2026-12): its wheel is 9.2 MiB and installs 64 MB in about 3,000 files; ``pip install plotly`` took
30 s from nothing (with narwhals and packaging, 76 MB, no pip cache) and 9.4 s from the downloaded wheel with its
dependencies present. ``make demo``'s first install would pay that for a page it may never open, so without Plotly
the page falls back to the matplotlib PNGs (:mod:`.static`). plotly.js goes into the page once, inline, so the
page works with no network; no image exporter (kaleido) is needed, the PNG copies come from matplotlib.
"""

from __future__ import annotations

import math
from typing import Any

from dd_bench.results.report.figures import BarPanel, Figure, HeatmapPanel, XYPanel

FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
PANEL_HEIGHT = 330
LEGEND_ROW = 22
COLUMNS = 3


def available() -> bool:
    """Whether Plotly is installed (``pip install dd-bench[report]``)."""
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        return False
    return True


def plotly_js() -> str:
    """plotly.js itself, to inline once per page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _subplots(figure: Figure, *, columns: int, **kwargs: Any):
    from plotly.subplots import make_subplots

    n = len(figure.panels)
    cols = min(columns, n)
    rows = math.ceil(n / cols)
    return make_subplots(rows=rows, cols=cols, subplot_titles=[p.title for p in figure.panels], **kwargs), rows, cols


def _xy(figure: Figure) -> Any:
    import plotly.graph_objects as go

    n_rows = math.ceil(len(figure.panels) / min(COLUMNS, len(figure.panels)))
    legend_rows = math.ceil(len({t.name for p in figure.panels for t in p.traces}) / 3)
    height = n_rows * PANEL_HEIGHT + 70 + legend_rows * LEGEND_ROW
    # Spacing is a fraction of the whole figure: about 90 px between rows whatever their number.
    fig, rows, cols = _subplots(figure, columns=COLUMNS, horizontal_spacing=0.07, vertical_spacing=90 / height)
    shown: set[str] = set()
    for k, panel in enumerate(figure.panels):
        row, col = k // cols + 1, k % cols + 1
        for trace in panel.traces:
            line = {"color": trace.colour, "dash": trace.dash, "width": 2 if trace.mode == "hline" else 1.8}
            errors = {"type": "data", "array": trace.errors, "thickness": 1.2, "width": 4, "visible": any(trace.errors)}
            fig.add_trace(go.Scatter(
                x=trace.xs, y=trace.ys, name=trace.name, legendgroup=trace.name, showlegend=trace.name not in shown,
                mode="lines" if trace.mode == "hline" else "markers+lines", line=line,
                marker={"size": 8 if trace.reference else 9, "symbol": "square" if trace.reference else "circle",
                        "color": trace.colour, "line": {"width": 1, "color": "white"}},
                error_y=None if trace.mode == "hline" else errors, hovertext=trace.hover,
                hovertemplate="%{hovertext}<extra></extra>"), row=row, col=col)
            shown.add(trace.name)
        axis: dict[str, Any] = {"title_text": panel.x_title, "showgrid": True, "gridcolor": "#eeeeee"}
        low, high = panel.x_range
        if panel.x_log:
            axis.update(type="log", range=[math.log10(low), math.log10(high)])
        else:
            axis.update(range=[low, high], zeroline=False)
        if panel.ticks:
            axis.update(tickvals=[t for t, _ in panel.ticks], ticktext=[label for _, label in panel.ticks])
        fig.update_xaxes(row=row, col=col, **axis)
        fig.update_yaxes(row=row, col=col, title_text="accuracy %" if col == 1 else None, gridcolor="#eeeeee")
    fig.update_layout(height=height,
                      legend={"orientation": "h", "yanchor": "top", "y": -0.12 / rows - 0.02, "x": 0,
                              "font": {"size": 12}},
                      margin={"t": 40, "b": 20 + legend_rows * LEGEND_ROW, "l": 60, "r": 20})
    return fig


def _heatmaps(figure: Figure) -> Any:
    import plotly.graph_objects as go
    from matplotlib import colormaps

    viridis = colormaps["viridis"]
    scale = [[i / 10, "rgb({:.0f},{:.0f},{:.0f})".format(*(255 * c for c in viridis(i / 10)[:3]))]
             for i in range(11)]  # matplotlib's viridis, so cell colours and text colours (chosen on it) agree
    fig, rows, cols = _subplots(figure, columns=2, horizontal_spacing=0.25)
    for k, panel in enumerate(figure.panels):
        row, col = k // cols + 1, k % cols + 1
        fig.add_trace(go.Heatmap(z=panel.values, x=panel.columns, y=panel.rows, zmin=panel.low, zmax=panel.high,
                                 colorscale=scale, showscale=False, hovertext=panel.hover, xgap=2, ygap=2,
                                 hovertemplate="%{hovertext}<extra></extra>"), row=row, col=col)
        cells = [(x, y, t, c) for y, texts, colours in zip(panel.rows, panel.text, panel.text_colours, strict=True)
                 for x, t, c in zip(panel.columns, texts, colours, strict=True) if t]
        fig.add_trace(go.Scatter(x=[c[0] for c in cells], y=[c[1] for c in cells], text=[c[2] for c in cells],
                                 mode="text", textfont={"color": [c[3] for c in cells], "size": 13},
                                 hoverinfo="skip", showlegend=False), row=row, col=col)
        fig.update_yaxes(row=row, col=col, autorange="reversed", type="category")
        fig.update_xaxes(row=row, col=col, type="category", side="bottom")
    tallest = max(len(p.rows) for p in figure.panels)
    widest = max(len(p.columns) for p in figure.panels)
    # Cells about 110 px wide, not stretched across the page: a two-model heatmap stays a compact grid.
    fig.update_layout(height=rows * (34 * tallest + 90) + 30, width=min(1180, cols * (110 * widest + 260) + 40),
                      margin={"t": 64, "b": 30, "l": 20, "r": 20})  # panel titles below the hover toolbar
    return fig


def _bars(figure: Figure) -> Any:
    import plotly.graph_objects as go

    height = sum(28 * len(p.labels) + 110 for p in figure.panels)
    fig, rows, cols = _subplots(figure, columns=1, vertical_spacing=80 / height)
    for k, panel in enumerate(figure.panels):
        fig.add_trace(go.Bar(x=panel.values, y=panel.labels, orientation="h", marker={"color": panel.colours},
                             text=[f"{v:+.2f}" for v in panel.values], textposition="outside", cliponaxis=False,
                             hovertext=panel.hover, hovertemplate="%{hovertext}<extra></extra>", showlegend=False),
                      row=k + 1, col=1)
        fig.update_yaxes(row=k + 1, col=1, autorange="reversed", type="category")
        low, high = min(0.0, *panel.values), max(0.0, *panel.values)
        pad = 0.2 * (high - low or 1.0)  # room for the value printed beyond each bar's end
        fig.update_xaxes(row=k + 1, col=1, title_text=panel.x_title, zeroline=True, zerolinecolor="#333333",
                         gridcolor="#eeeeee", range=[low - (pad if low < 0 else 0), high + (pad if high > 0 else 0)])
    fig.update_layout(height=height, bargap=0.35, margin={"t": 40, "b": 30, "l": 20, "r": 60})
    return fig


def render_div(figure: Figure) -> str:
    """The figure as an HTML ``<div>`` and its script (plotly.js itself not included), or '' with no panel."""
    import plotly.io as pio

    if not figure.panels:
        return ""
    kind = type(figure.panels[0])
    draw = {XYPanel: _xy, HeatmapPanel: _heatmaps, BarPanel: _bars}[kind]
    fig = draw(figure)
    fig.update_layout(template="plotly_white", font={"family": FONT, "size": 12}, hoverlabel={"align": "left"},
                      hovermode="closest")
    fig.update_annotations(font_size=13)  # the panel titles
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"plot-{figure.name}", config=CONFIG)
