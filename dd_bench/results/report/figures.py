"""The report's figures as plain data (panels of traces, heatmaps, bars), drawn twice from the same model: by
:mod:`.interactive` (Plotly, hover details) and by :mod:`.static` (matplotlib PNG, the fallback page and the files
beside it). Deciding what is plotted lives here once, so the two renderings never disagree.

Rules every figure keeps: panels never mix protocols (one per protocol table, data set and model, or one per
protocol table and data set); every row of the leaderboard is its own point (every variant its own series, see
:mod:`.series`); the random-subset and full-data references are drawn as grey lines in every panel that has them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

from dd_bench.registry import Registry
from dd_bench.results.leaderboard import _fmt_bytes, _fmt_number
from dd_bench.results.report.series import (
    TABLE_KEYS,
    hover_text,
    ipc_text,
    series_labels,
    series_styles,
    table_title,
    total_bytes,
)

# One builder per figure: builder(df, labels, styles) -> a new Figure, in registration order, the page's order.
FIGURE_BUILDERS: Registry = Registry("figure", kind="factory", sort=False)
MAX_HEATMAPS = 4
SINGLE_IPC_SPREAD = 0.3  # with one IPC, series sit side by side within +-0.3 of its tick, references span +-0.45
# With several IPCs (log axis), series at one IPC sit within +-0.04 decades of it, so their error bars don't hide
# each other; the references stay on the tick. Hover gives the true IPC.
LOG_IPC_SPREAD = 0.04


@dataclasses.dataclass
class Trace:
    name: str
    colour: str
    xs: list[float]
    ys: list[float]
    hover: list[str]
    errors: list[float] = dataclasses.field(default_factory=list)  # the std over seeds, 0 for one seed
    dash: str = "solid"
    mode: str = "markers+lines"  # markers+lines | hline (a reference level across the panel)
    reference: bool = False


@dataclasses.dataclass
class XYPanel:
    title: str
    traces: list[Trace]
    x_title: str
    x_log: bool
    ticks: list[tuple[float, str]]  # empty: the renderer's own
    x_range: tuple[float, float]  # in data units, log or not


@dataclasses.dataclass
class HeatmapPanel:
    title: str
    rows: list[str]
    columns: list[str]
    values: list[list[float | None]]
    text: list[list[str]]
    text_colours: list[list[str]]  # per cell: black on light cells, white on dark ones
    hover: list[list[str]]
    low: float
    high: float


@dataclasses.dataclass
class BarPanel:
    title: str
    labels: list[str]
    values: list[float]
    colours: list[str]
    hover: list[str]
    x_title: str


@dataclasses.dataclass
class Figure:
    name: str
    title: str
    caption: str  # what the figure shows, in plain words
    panels: list[Any]
    empty: str = ""  # when there are no panels: why, and how to get one


def _panel_groups(rows: pd.DataFrame, by_model: bool):
    keys = [*TABLE_KEYS, "dataset"] + (["model"] if by_model else [])
    for key, group in rows.groupby(keys, sort=False, dropna=False):
        protocol, version, ranked, dataset = key[:4]
        where = f"{dataset}, {key[4]}" if by_model else str(dataset)
        yield f"{where} · {table_title(protocol, version, ranked)}", group


def _trace(group: pd.DataFrame, name: str, style: tuple[str, str], xs: list[float], *, reference: bool,
           mode: str = "markers+lines") -> Trace:
    return Trace(name=name, colour=style[0], dash=style[1], xs=xs, ys=[float(v) for v in group["acc_mean"]],
                 hover=[hover_text(row, name) for _, row in group.iterrows()],
                 errors=[0.0 if int(r["n_seeds"]) < 2 else float(r["acc_std"]) for _, r in group.iterrows()],
                 mode=mode, reference=reference)


def _level(group: pd.DataFrame, name: str, style: tuple[str, str], span: tuple[float, float]) -> Trace:
    """A reference with no IPC of its own (full data): a level across the panel, hoverable at both ends."""
    row = group.iloc[0]
    return Trace(name=name, colour=style[0], dash=style[1], xs=list(span), ys=[float(row["acc_mean"])] * 2,
                 hover=[hover_text(row, name)] * 2, mode="hline", reference=True)


@FIGURE_BUILDERS.register("accuracy_vs_ipc")
def accuracy_vs_ipc(df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    panels = []
    for title, group in _panel_groups(df, by_model=True):
        ipcs = sorted({int(v) for v in group["ipc"].dropna()})
        if not ipcs:
            continue
        single = len(ipcs) == 1
        span = (-0.45, 0.45) if single else (ipcs[0] / 1.6, ipcs[-1] * 1.6)
        with_ipc = group[group["ipc"].notna()]
        names = list(dict.fromkeys(labels[with_ipc.index]))
        evaluated = list(dict.fromkeys(labels[with_ipc[with_ipc["kind"] == "evaluation"].index]))
        spread = np.linspace(-1.0, 1.0, len(evaluated)) if len(evaluated) > 1 else np.zeros(len(evaluated))
        offsets = dict(zip(evaluated, spread * (SINGLE_IPC_SPREAD if single else LOG_IPC_SPREAD), strict=True))
        traces = []
        for name in names:
            rows = with_ipc[labels[with_ipc.index] == name].sort_values("ipc")
            reference = rows["kind"].iloc[0] == "reference"
            if single and reference:
                traces.append(_level(rows, name, styles[name], span))
            else:
                shift = offsets.get(name, 0.0)
                xs = [shift] * len(rows) if single else [float(v) * 10**shift for v in rows["ipc"]]
                traces.append(_trace(rows, name, styles[name], xs, reference=reference))
        for name in dict.fromkeys(labels[group[group["ipc"].isna()].index]):
            traces.append(_level(group[labels[group.index] == name], name, styles[name], span))
        ticks = [(0.0, ipc_text(ipcs[0]))] if single else [(float(v), str(v)) for v in ipcs]
        panels.append(XYPanel(title=title, traces=traces, x_title="images per class", x_log=not single,
                              ticks=ticks, x_range=(-0.5, 0.5) if single else (ipcs[0] / 2, ipcs[-1] * 2)))
    return Figure(name="accuracy_vs_ipc", title="Accuracy vs images per class", panels=panels,
                  caption="Each coloured line is one method variant, with the spread over evaluation seeds as "
                          "error bars. The grey dashed line is a random subset of real images of the same size, "
                          "the dotted line training on the full data set: a distilled set is worth its "
                          "distance above the dashed line. One panel per protocol, data set and model.",
                  empty="No evaluation with images per class was recorded.")


def byte_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Powers of 4 bytes read as round sizes (256 B, 1 KiB, 4 KiB, ... 1 MiB); at most about 8 of them."""
    values = [4.0**k for k in range(0, 24) if low <= 4.0**k <= high]
    values = values[:: max(1, math.ceil(len(values) / 8))]
    return [(v, _fmt_bytes(v)) for v in values]


@FIGURE_BUILDERS.register("accuracy_vs_storage")
def accuracy_vs_storage(df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    panels = []
    for title, group in _panel_groups(df, by_model=True):
        size = group.apply(total_bytes, axis=1)
        known = group[size.notna()]
        if known.empty or not (known["kind"] == "evaluation").any():
            continue
        x = size[known.index].astype(float)
        span = (float(x.min()) / 1.6, float(x.max()) * 1.6)
        traces = []
        for name in dict.fromkeys(labels[known.index]):
            rows = known[labels[known.index] == name].assign(_x=x).sort_values("_x")
            traces.append(_trace(rows, name, styles[name], [float(v) for v in rows["_x"]],
                                 reference=rows["kind"].iloc[0] == "reference"))
        # A full-data row without bytes recorded is still the ceiling: a level across the panel.
        for name in dict.fromkeys(labels[group[size.isna() & group["ipc"].isna()].index]):
            traces.append(_level(group[labels[group.index] == name], name, styles[name], span))
        panels.append(XYPanel(title=title, traces=traces, x_title="bytes: images + labels + evaluation assets",
                              x_log=True, ticks=byte_ticks(span[0] / 1.3, span[1] * 1.3),
                              x_range=(span[0] / 1.3, span[1] * 1.3)))
    return Figure(name="accuracy_vs_storage", title="Accuracy vs storage", panels=panels,
                  caption="What each set costs to keep and use: the bytes of its images and labels, plus whatever "
                          "evaluation needs besides (a teacher network, a ZCA matrix). Up and to the left is "
                          "better. Same series and references as above.",
                  empty="No record here has its storage recorded.")


def _text_colour(value: float, low: float, high: float) -> str:
    """Black on light cells, white on dark ones: the cell's viridis colour's relative luminance (WCAG)."""
    from matplotlib import colormaps

    r, g, b, _ = colormaps["viridis"](0.5 if high <= low else (value - low) / (high - low))
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with black is (L + 0.05) / 0.05, with white 1.05 / (L + 0.05): equal at L of about 0.18.
    return "#000000" if luminance > 0.179 else "#ffffff"


@FIGURE_BUILDERS.register("method_x_architecture")
def method_x_architecture(df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    evaluations = df[(df["kind"] == "evaluation") & df["ipc"].notna()]
    blocks = []
    for key, block in evaluations.groupby([*TABLE_KEYS, "dataset", "ipc"], sort=False):
        if block["model"].nunique() > 1:
            blocks.append((block["model"].nunique(), len(blocks), key))
    panels = []
    for _, _, (protocol, version, ranked, dataset, ipc) in sorted(blocks, key=lambda b: (-b[0], b[1]))[:MAX_HEATMAPS]:
        same = ((df["protocol"] == protocol) & (df["protocol_version"] == version) & (df["ranked"] == ranked)
                & (df["dataset"] == dataset))
        block = df[same & ((df["ipc"] == ipc).fillna(False) | (df["ipc"].isna() & (df["kind"] == "reference")))]
        models = list(dict.fromkeys(block.loc[block["kind"] == "evaluation", "model"]))
        block = block[block["model"].isin(models)]
        means = block.assign(_name=labels[block.index]).groupby("_name", sort=False)["acc_mean"].mean()
        kinds = block.assign(_name=labels[block.index]).groupby("_name", sort=False)["kind"].first()
        rows = sorted(means.index, key=lambda n: (kinds[n] == "reference", -means[n]))
        cells = {(labels[i], block.at[i, "model"]): block.loc[i] for i in block.index}
        low, high = float(block["acc_mean"].min()), float(block["acc_mean"].max())
        values, text, colours, hover = [], [], [], []
        for name in rows:
            found = [cells.get((name, m)) for m in models]
            values.append([None if r is None else float(r["acc_mean"]) for r in found])
            text.append(["" if r is None else f"{r['acc_mean']:.1f}" for r in found])
            colours.append(["#000000" if r is None else _text_colour(float(r["acc_mean"]), low, high) for r in found])
            hover.append(["not evaluated" if r is None else hover_text(r, name) for r in found])
        panels.append(HeatmapPanel(title=f"{dataset}, {ipc_text(ipc)} · {table_title(protocol, version, ranked)}",
                                   rows=rows, columns=models, values=values, text=text, text_colours=colours,
                                   hover=hover, low=low, high=high))
    models = sorted(set(evaluations["model"]))
    return Figure(name="method_x_architecture", title="Method × architecture", panels=panels,
                  caption="Accuracy % of every variant on every evaluation architecture that scored it (rows "
                          "sorted by their mean; references at the bottom). A set that only works on the network "
                          "it was distilled with shows a bright first column and dark others.",
                  empty=("Every evaluation here used one architecture"
                         + (f" ({', '.join(models)})" if models else "") + ", so there is nothing to compare across "
                         "architectures: evaluate with several, e.g. models=[convnet,mlp]."))


def _bars(df: pd.DataFrame, labels: pd.Series, styles: dict, values: pd.Series, x_title: str) -> list[BarPanel]:
    panels = []
    rows = df[values.notna()]
    for title, group in _panel_groups(rows, by_model=False):
        names = [f"{labels[i]} · {ipc_text(group.at[i, 'ipc'])}, {group.at[i, 'model']}" for i in group.index]
        panels.append(BarPanel(title=title, labels=names, values=[float(values[i]) for i in group.index],
                               colours=[styles[labels[i]][0] for i in group.index], x_title=x_title,
                               hover=[hover_text(group.loc[i], labels[i]) + f"<br><b>{x_title}: "
                                      f"{_fmt_number(values[i], 2, sign=True)}</b>" for i in group.index]))
    return panels


@FIGURE_BUILDERS.register("ior")
def ior(df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    return Figure(name="ior", title="Improvement over random real images (IOR)",
                  panels=_bars(df, labels, styles, df["ior"].astype(float), "IOR (points)"),
                  caption="How many accuracy points each distilled set gains over a random subset of real images "
                          "with the same number of images per class, scored the same way (same protocol, model "
                          "and kind of labels). Below zero: picking real images at random would have done better.",
                  empty="No run here has a random-subset reference under its own protocol, IPC, model and labels, "
                        "so this gain cannot be measured. Runs add that reference by default "
                        "(references=[random_subset]).")


@FIGURE_BUILDERS.register("test_selection_gap")
def test_selection_gap(df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    gap = (df["acc_test_selected"].astype(float) - df["acc_mean"].astype(float))
    return Figure(name="test_selection_gap", title="What picking the checkpoint on the test set adds",
                  panels=_bars(df, labels, styles, gap, "test-selected minus ours (points)"),
                  caption="Many papers report the best test accuracy seen during training, which picks the "
                          "checkpoint by looking at the test set. dd-bench ranks the final network instead; where "
                          "a run also recorded the papers' way, this shows how many points that choice adds. "
                          "Never ranked.",
                  empty="No run here recorded the papers' way of picking a checkpoint by its test accuracy (a "
                        "trajectory-matching run records it with method.paper_selection=true, as the paper-comparison "
                        "presets do), so there is no inflation to show: every number on this page is the final "
                        "network's.")


# The figure names as the tuple this module held before the registry (kept for code that imports it).
FIGURES = tuple(FIGURE_BUILDERS.list())


def create_figure(name: str, *, df: pd.DataFrame, labels: pd.Series, styles: dict) -> Figure:
    """The figure ``name`` from the plotted rows, their series labels and their styles."""
    return FIGURE_BUILDERS.create(name, df=df, labels=labels, styles=styles)


def build_figures(df: pd.DataFrame, configs: dict[str, dict[str, Any]]) -> list[Figure]:
    """Every figure of the page, in :data:`FIGURE_BUILDERS` order, from the leaderboard frame and the records'
    configs."""
    rows = df[df["acc_mean"].notna()]
    labels = series_labels(rows, configs)
    styles = series_styles(rows, labels)
    return [create_figure(name, df=rows, labels=labels, styles=styles) for name in FIGURE_BUILDERS.list()]

