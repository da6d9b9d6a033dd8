"""The leaderboard as a terminal reads it: at most about 120 columns, the full detail staying in the CSV and the
markdown (:func:`dd_bench.results.leaderboard.write_leaderboard`).

One table per protocol (as the markdown), one block per (dataset, IPC) under a ``-- dataset, IPC k`` line; short
headers; a column that is empty in every row of a table is dropped (published numbers under protocols that cannot
be compared with papers, assets where nothing is needed, memory on the CPU); the set's stored bytes in one column
and what evaluation needs besides (teachers, a backbone, a ZCA matrix) in another, by size only; notes as
numbered footnotes under the table. Memory is the evaluation's own CUDA allocator peak; a CPU process RSS (which
includes the interpreter and the data, and cannot be reset per evaluation) is never printed.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from dd_bench.results.leaderboard import (
    GAP_COLUMN,
    _fmt_bytes,
    _fmt_number,
    _fmt_paper_number,
    _missing,
    _render_table,
    _table_header,
    _text,
    published_shown,
)
from dd_bench.tracking.provenance import CUDA_ALLOCATOR_PEAK

WIDTH = 120
# Which of our numbers a gap used, in the few characters a terminal has (the CSV and markdown say it in full).
GAP_SHORT = {"final epoch": "final", "best during training": "best", "test-selected checkpoint": "test"}
SHORT_REFERENCES = {"full_data": "full data", "random_subset": "random subset"}


def _method(row: pd.Series) -> str:
    if row["kind"] == "reference":
        labels = "" if row.get("label_source") in (None, "hard") else f", {str(row['label_source']).split(' ')[0]}"
        return f"{SHORT_REFERENCES.get(row['method'], row['method'])} (ref{labels})"
    variant = _text(row["variant"])
    return f"{row['method']} [{variant}]" if variant else str(row["method"])


def _labels(row: pd.Series) -> str:
    return _text(row["label_source"]).replace(" (BN train)", " (BN)")


def _assets(row: pd.Series) -> str:
    value = row["eval_assets_bytes"]
    return "" if _missing(value) or not value else _fmt_bytes(value)


def _memory(row: pd.Series) -> str:
    if _missing(row["peak_memory_bytes"]) or row["peak_memory_kind"] != CUDA_ALLOCATOR_PEAK:
        return ""
    return _fmt_bytes(row["peak_memory_bytes"])


def _gap(row: pd.Series) -> str:
    """The gap and which of our numbers it used (final, best during training, test-selected), e.g. ``+0.70 test``."""
    gap = _fmt_number(row[GAP_COLUMN], 2, sign=True)
    return f"{gap} {GAP_SHORT.get(_text(row['gap_ours']), _text(row['gap_ours']))}" if gap else ""


def _acc(row: pd.Series) -> str:
    return f"{row['acc_mean_std']} ({row['n_seeds']})"


COLUMNS = (
    ("model", lambda r: str(r["model"])),
    ("#", lambda r: "" if _missing(r["rank"]) else str(int(r["rank"]))),
    ("method", _method),
    ("acc % (seeds)", _acc),
    ("IOR", lambda r: _fmt_number(r["ior"], 2, sign=True)),
    ("published", lambda r: "" if _missing(r["published"]) else _fmt_paper_number(r["published"])),  # std: CSV
    ("gap (ours)", _gap),
    ("test-sel. %", lambda r: _fmt_number(r["acc_test_selected"], 2)),  # the papers' selection: never ranked
    ("LRS", lambda r: _fmt_number(r["lrs"], 3)),
    ("ARS", lambda r: _fmt_number(r["ars"], 3)),
    ("labels", _labels),
    ("stored", lambda r: _fmt_bytes(r["storage_bytes"])),
    ("+ at eval", _assets),
    ("distill s", lambda r: _fmt_number(r["distill_seconds"], 1)),
    ("eval s", lambda r: _fmt_number(r["eval_seconds"], 1)),
    ("gpu mem", _memory),
)  # fmt: skip


def _wrap(text: str, indent: str = "") -> str:
    # Never inside a protocol name such as `kd-quick`.
    return textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def format_leaderboard_text(df: pd.DataFrame) -> str:
    """The leaderboard as aligned plain-text tables, one per protocol, for printing to a terminal."""
    if df.empty:
        return "No run records.\n"
    out: list[str] = []
    for (protocol, version, ranked), table in df.groupby(["protocol", "protocol_version", "ranked"], sort=False):
        header = _table_header(str(protocol), int(version), bool(ranked), has_published=published_shown(table))
        out += ["== " + header[0], *(_wrap(line) if line else line for line in header[1:])]
        notes: dict[str, int] = {}
        cells, blocks = [], []
        for (dataset, ipc), block in table.groupby(["dataset", "ipc"], sort=False, dropna=False):
            blocks.append((f"-- {dataset}, " + ("all images" if _missing(ipc) else f"IPC {int(ipc)}"), len(block)))
            for _, row in block.iterrows():
                note = _text(row["note"])
                mark = ""
                if note:
                    mark = "[" + ",".join(str(notes.setdefault(n, len(notes) + 1)) for n in note.split("; ")) + "]"
                cells.append([fmt(row) for _, fmt in COLUMNS] + [mark])
        names = [name for name, _ in COLUMNS] + ["note"]
        keep = [i for i in range(len(names)) if any(row[i] for row in cells)]
        lines = _render_table([names[i] for i in keep], [[row[i] for i in keep] for row in cells], markdown=False)
        out += lines[:2]
        body = iter(lines[2:])
        for title, n in blocks:
            out += [title, *(next(body) for _ in range(n))]
        out += [_wrap(f"[{i}] {text}", indent="    ") for text, i in notes.items()] + [""]
    return "\n".join(out)
