"""``dd-bench report results=DIR``: one self-contained HTML page of the records under DIR (figures embedded as
PNG data, the same figures also written as PNG files), viewable with no network:

1. accuracy vs IPC per method (one panel per dataset and protocol, the most common model);
2. accuracy vs storage bytes (images + labels + evaluation assets), log scale;
3. a method x architecture heatmap of accuracy (the (dataset, IPC, protocol) with the most models);
4. the test-selection gap (the papers' test-selected checkpoint minus ours) where recorded;
5. the leaderboard table (pandas' HTML) with IOR, published numbers measured under the row's protocol with their
   selection rule and the like-for-like gap (and which of our numbers it used), and each row's one-time cost: the
   training seconds of the teachers and experts it used (shared, cached once), from their cache entries, beside
   its own distillation seconds.

Every ``<img>`` marks itself loaded (``data-loaded``) so a headless browser can check that every figure rendered.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from dd_bench.io import atomic_write_bytes, atomic_write_text
from dd_bench.results.leaderboard import GAP_COLUMN

TABLE_COLUMNS = ("protocol", "dataset", "ipc", "model", "rank", "method", "acc_mean_std", "ior", "published",
                 "published_verified", "published_selection", GAP_COLUMN, "gap_ours", "label_source", "storage_bytes",
                 "eval_assets_bytes", "distill_seconds", "one_time_seconds", "eval_seconds", "note")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _evaluations(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["kind"] == "evaluation") & df["acc_mean"].notna()]


def accuracy_vs_ipc(df: pd.DataFrame) -> bytes | None:
    ev = _evaluations(df)
    if ev.empty:
        return None
    plt = _pyplot()
    groups = list(ev.groupby(["dataset", "protocol"], sort=True))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
    for ax, ((dataset, protocol), g) in zip(axes[0], groups):
        model = g["model"].mode().iloc[0]
        for method, m in g[g["model"] == model].groupby("method"):
            m = m.groupby("ipc", as_index=False)["acc_mean"].max().sort_values("ipc")
            ax.plot(m["ipc"], m["acc_mean"], marker="o", label=method)
        ax.set(xscale="log", xlabel="images per class", ylabel="accuracy %", title=f"{dataset}, {protocol} ({model})")
        ax.legend(fontsize=7)
    return _png(fig)


def accuracy_vs_storage(df: pd.DataFrame) -> bytes | None:
    ev = _evaluations(df)
    if ev.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = dict(zip(sorted(ev["model"].unique()), "osD^vP*X"))
    for (protocol, model), g in ev.groupby(["protocol", "model"], sort=True):
        total = (g["storage_bytes"].fillna(0) + g["eval_assets_bytes"].fillna(0)).clip(lower=1)
        ax.scatter(total, g["acc_mean"], s=20, marker=markers[model], label=f"{protocol}, {model}")
        for x, y, text in zip(total, g["acc_mean"], g["method"] + "/" + g["label_source"].astype(str)):
            ax.annotate(text, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.legend(fontsize=7, title="protocol, model (not comparable across protocols)", title_fontsize=7)
    ax.set(xscale="log", xlabel="bytes: images + labels + evaluation assets", ylabel="accuracy %",
           title="accuracy vs storage")
    return _png(fig)


def method_model_heatmap(df: pd.DataFrame) -> bytes | None:
    ev = _evaluations(df)
    if ev.empty:
        return None
    counts = ev.groupby(["dataset", "ipc", "protocol"], dropna=False)["model"].nunique()
    key = counts.idxmax()
    g = ev[(ev["dataset"] == key[0]) & (ev["ipc"] == key[1]) & (ev["protocol"] == key[2])]
    table = g.pivot_table(index="method", columns="model", values="acc_mean", aggfunc="max")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.4 * len(table.columns) + 2.5, 0.4 * len(table) + 1.5))
    image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(table.index)), table.index)
    for (i, j), v in pd.DataFrame(table.to_numpy()).stack().items():
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=7)
    fig.colorbar(image, ax=ax, label="accuracy %")
    ax.set_title(f"method x architecture: {key[0]}, IPC {key[1]}, {key[2]}")
    return _png(fig)


def test_selection_gap(df: pd.DataFrame) -> bytes | None:
    ev = _evaluations(df)
    ev = ev[ev["acc_test_selected"].notna()]
    if ev.empty:
        return None
    plt = _pyplot()
    gap = ev["acc_test_selected"] - ev["acc_mean"]
    labels = ev["method"] + " ipc" + ev["ipc"].astype(str) + " " + ev["model"]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(ev) + 1.5))
    ax.barh(labels, gap)
    ax.set(xlabel="test-selected minus ours (points): what selecting on the test set adds",
           title="test-selection gap (never ranked)")
    return _png(fig)


def one_time_seconds(record: Any, cache_dir: Path | None) -> float | None:
    """The one-time training seconds of what a record's row used and shares with others, from the cache entries:
    the teachers its labels (or its method) used, and the expert trajectories a trajectory-matching set used."""
    from dd_bench.io import KeyedStore

    total, found = 0.0, False
    for spec in record.extra.get("teachers") or []:
        key = spec.get("key") if isinstance(spec, dict) else None
        meta = KeyedStore("teachers", cache_dir).path(key) / "meta.json" if key else None
        if meta is not None and meta.is_file():
            seconds = json.loads(meta.read_text()).get("train_seconds")
            if seconds is not None:
                total, found = total + float(seconds), True
    experts = (record.extra.get("distill_status") or {}).get("experts") or {}
    meta = KeyedStore("experts", cache_dir).path(experts["key"]) / "meta.json" if experts.get("key") else None
    if meta is not None and meta.is_file():
        entries = json.loads(meta.read_text()).get("experts") or {}
        seconds = [float(e["wall_seconds"]) for i, e in entries.items()
                   if int(i) < int(experts.get("count", 0)) and e.get("wall_seconds") is not None]
        if seconds:
            total, found = total + sum(seconds), True
    return total if found else None


FIGURES = {"accuracy_vs_ipc": accuracy_vs_ipc, "accuracy_vs_storage": accuracy_vs_storage,
           "method_x_architecture": method_model_heatmap, "test_selection_gap": test_selection_gap}


def ledger_panel(ledger_dir: Path | None) -> str:
    """The fidelity ledger (results/ledger/*.json) as an HTML table, or '' when there is no entry."""
    from dd_bench.results.ledger import load_ledger

    entries = load_ledger(ledger_dir) if ledger_dir is not None else []
    measured = [e for e in entries if e["status"] == "measured"]
    if not measured:
        return ""
    table = pd.DataFrame([{
        "pair": e["pair"], "method": e["method"], "data": f"{e['dataset']}, IPC {e['ipc']}",
        "dd-bench %": e["means"]["ddbench"], "official %": e["means"]["official"], "d": e["difference"],
        "SE": e["standard_error"], "verdict": e["verdict"], "time ratio": e["wall_time_ratio"],
        "official code": f"{e['official']['repository']}@{str(e['official']['commit'])[:7]}"} for e in measured])
    return ("<h2>fidelity ledger</h2><p>dd-bench beside the official implementations on the same data and budget "
            "(docs/ledger.md).</p>" + table.to_html(index=False, float_format=lambda v: f"{v:.2f}", escape=True))


def build_report(records: list[Any], *, out_dir: Path, published_csv: Path | None = None,
                 cache_dir: Path | None = None, ledger_dir: Path | None = None) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/<figure>.png``; returns the HTML path. ``ledger_dir``: the fidelity
    ledger's entries, shown as a panel when there are any."""
    from dd_bench.results import build_leaderboard

    df = build_leaderboard(records, published_csv=published_csv)
    seconds = {r.record_id: one_time_seconds(r, cache_dir) for r in records}
    df["one_time_seconds"] = df["record_id"].map(seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>dd-bench report</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>",
             f"<h1>dd-bench report</h1><p>{len(records)} run records. Accuracies are percent on the real test set; "
             "rows of different protocols are never comparable.</p>"]
    for name, draw in FIGURES.items():
        png = draw(df)
        if png is None:
            parts.append(f"<h2>{name.replace('_', ' ')}</h2><p>nothing recorded for this figure.</p>")
            continue
        atomic_write_bytes(out_dir / f"{name}.png", png)
        data = base64.b64encode(png).decode()
        parts.append(f"<h2>{name.replace('_', ' ')}</h2><img alt='{name}' class='figure' "
                     f"onload=\"this.dataset.loaded='1'\" src='data:image/png;base64,{data}'>")
    table = df[[c for c in TABLE_COLUMNS if c in df.columns]]
    parts += ["<h2>leaderboard</h2>", table.to_html(index=False, na_rep="", escape=True), ledger_panel(ledger_dir),
              "</body></html>"]
    page = out_dir / "index.html"
    atomic_write_text(page, "\n".join(parts))
    return page
