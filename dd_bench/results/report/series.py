"""What one line of a report figure is: a method's variant followed across IPCs, or one kind of reference row.

The leaderboard labels a row's variant within its own (protocol, dataset, IPC, model, method) block, so the same
config can read ``method.init=real`` at IPC 1 (where a noise-initialised sibling exists) and nothing at IPC 10.
A figure needs one name per config across IPCs: here a config key names a series only when it differs between
rows at the same IPC (``method.init``); a key that changes only with the IPC (a per-IPC preset's learning rate)
does not split a line. Rows still equal after that (the same config with other seeds) take the leaderboard's own
variant label, so no two rows ever share a point and nothing is pooled or dropped.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from dd_bench.results.board_text import _gap, _labels
from dd_bench.results.board_text import _method as _board_method
from dd_bench.results.leaderboard import _flatten, _fmt_bytes, _fmt_number, _fmt_paper_number, _missing, _text

# Colour-blind-safe enough and distinct on white (tab10 without its grey, which the references use).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
DASHES = ("solid", "dash", "dot")
# References are context, not contestants: greys, each kind with its own dash.
REFERENCE_STYLE = {"random_subset": ("#6b6b6b", "dash"), "full_data": ("#222222", "dot")}
TABLE_KEYS = ["protocol", "protocol_version", "ranked"]


def table_title(protocol: Any, version: Any, ranked: Any) -> str:
    """A protocol table's name as the board prints it."""
    return f"{protocol} v{int(version)}" + ("" if bool(ranked) else " (not ranked)")


def ipc_text(ipc: Any) -> str:
    return "all images" if _missing(ipc) else f"IPC {int(ipc)}"


def _base_label(row: pd.Series) -> str:
    if row["kind"] == "reference":
        return _board_method(row)  # "random subset (ref)", "full data (ref, teacher)"
    labels = _labels(row)
    return str(row["method"]) + ("" if labels in ("", "hard") else f" ({labels} labels)")


def _varies_within_an_ipc(group: pd.DataFrame, flat: dict[Any, dict[str, Any]], key: str) -> bool:
    for _, rows in group.groupby("ipc", dropna=False, sort=False):
        if len({repr(flat[i].get(key)) for i in rows.index}) > 1:
            return True
    return False


def series_labels(df: pd.DataFrame, configs: dict[str, dict[str, Any]]) -> pd.Series:
    """One legend name per row of the leaderboard frame ``df`` (its index), from the records' configs by id."""
    out = pd.Series("", index=df.index, dtype=object)
    keys = [*TABLE_KEYS, "dataset", "model", "kind", "method", "label_source"]
    for _, group in df.groupby(keys, sort=False, dropna=False):
        flat = {}
        for i in group.index:
            flat[i] = _flatten(configs.get(str(group.at[i, "record_id"])) or {})
            flat[i].pop("ipc", None)
        names = sorted({k for f in flat.values() for k in f})
        varying = [k for k in names if _varies_within_an_ipc(group, flat, k)]
        for i in group.index:
            parts = ", ".join(f"{k}={flat[i].get(k)}" for k in varying)
            base = _base_label(group.loc[i])
            out[i] = f"{base} [{parts}]" if parts else base
        for _, rows in group.groupby("ipc", dropna=False, sort=False):
            same = out[rows.index].duplicated(keep=False)
            for i in rows.index[same.to_numpy()]:
                out[i] = f"{out[i]} ({_text(df.at[i, 'variant'])})"
    return out


def series_styles(df: pd.DataFrame, labels: pd.Series) -> dict[str, tuple[str, str]]:
    """(colour, dash) per series name, the same in every figure: evaluation series take the palette in the
    leaderboard's order, references their grey."""
    styles: dict[str, tuple[str, str]] = {}
    n = 0
    for i in df.index:
        name = labels[i]
        if name in styles:
            continue
        if df.at[i, "kind"] == "reference":
            styles[name] = REFERENCE_STYLE.get(str(df.at[i, "method"]), ("#999999", "dashdot"))
        else:
            styles[name] = (PALETTE[n % len(PALETTE)], DASHES[(n // len(PALETTE)) % len(DASHES)])
            n += 1
    return styles


def accuracy_text(row: pd.Series) -> str:
    """``49.17 ± 0.43 % (2 seeds)``: the board's mean and sample std, its ``n/a`` for one seed."""
    seeds = int(row["n_seeds"])
    return f"{str(row['acc_mean_std']).replace(' +- ', ' ± ')} % ({seeds} seed{'s' if seeds != 1 else ''})"


def total_bytes(row: pd.Series) -> float | None:
    """What using the set costs in bytes: images + labels (+ extras) as stored, plus evaluation assets."""
    if _missing(row["storage_bytes"]):
        return None
    assets = row["eval_assets_bytes"]
    return float(row["storage_bytes"]) + (0.0 if _missing(assets) else float(assets))


def hover_text(row: pd.Series, name: str) -> str:
    """Everything a reader asks of one point, in the board's number formats; fields a row lacks are left out."""
    lines = [f"<b>{html.escape(name)}</b>",
             f"{row['dataset']}, {ipc_text(row['ipc'])}, {row['model']}",
             f"protocol {table_title(row['protocol'], row['protocol_version'], row['ranked'])}",
             "accuracy " + accuracy_text(row)]
    if not _missing(row["rank"]):
        lines.append(f"rank {int(row['rank'])} in its block")
    if not _missing(row["ior"]):
        lines.append(f"IOR {_fmt_number(row['ior'], 2, sign=True)} points over the random subset")
    if not _missing(row["published"]):
        gap = _gap(row)
        lines.append(f"published {_fmt_paper_number(row['published'])} %" + (f", gap {gap}" if gap else ""))
    if not _missing(row["acc_test_selected"]):
        lines.append(f"test-selected {_fmt_number(row['acc_test_selected'], 2)} % (not ranked)")
    stored = _fmt_bytes(row["storage_bytes"])
    if stored:
        assets = row["eval_assets_bytes"]
        extra = "" if _missing(assets) or not assets else f" + {_fmt_bytes(assets)} at evaluation"
        lines.append(f"stored {stored}{extra}, labels {_labels(row) or 'hard'}")
    times = [f"{what} {_fmt_number(row[key], 1)} s" for what, key in (("distill", "distill_seconds"),
                                                                       ("eval", "eval_seconds"))
             if not _missing(row[key])]
    if times:
        lines.append(", ".join(times))
    variant = _text(row["variant"])
    if variant and variant not in name:
        lines.append(f"variant {html.escape(variant)}")
    lines.append(f"record {str(row['record_id'])[:8]}")
    return "<br>".join(lines)
