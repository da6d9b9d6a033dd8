"""The leaderboard: a pure view of run records, one table per protocol, beside the papers' published numbers.

Rules that keep the comparison honest:
* each (protocol, protocol version, ranked) triple is its own table; ``quick`` rows never meet ``mtt`` rows and
  unranked numbers (best-of-checkpoints opt-in, CPU demo) never meet ranked ones;
* every record is a row: records are keyed by their config (:mod:`dd_bench.results.keys`), so two rows of one
  method in one block are two configs (a sweep over ``method.lr_img``, another seed count), and the ``variant``
  column names the keys in which they differ; nothing is pooled or dropped (a re-run of the same config replaces
  its own record file);
* a published number sits beside a record only under the same protocol (:mod:`dd_bench.results.published`), and
  the gap compares it with our number measured under the same selection rule (final epoch, best during training, or
  the test-selected checkpoint), saying which; ``unknown`` selection shows no gap;
* IOR (:mod:`dd_bench.results.ior`): each method row minus its same-protocol, same-label-source random subset.

>>> from dd_bench.tracking.provenance import CUDA_ALLOCATOR_PEAK
from dd_bench.results.record import RunRecord
>>> rec = RunRecord(kind="evaluation", method="dm", dataset="cifar10", ipc=10, protocol="mtt", protocol_version=1,
...                 model="convnet", seeds=[0, 1], accuracies=[48.0, 50.0], ranked=True)
>>> df = build_leaderboard([rec], published_csv=None)
>>> df.loc[0, "acc_mean_std"], int(df.loc[0, "rank"])
('49.00 +- 1.41', 1)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from dd_bench.io import atomic_write_text
from dd_bench.resources import PUBLISHED_CSV as PUBLISHED_TABLE
from dd_bench.results.ior import ior_by_record
from dd_bench.results.published import (
    PUBLISHED_COLUMNS,
    PublishedIndex,
    best_during_training_mean,
    gap,
    load_published,
    test_selected_mean,
)
from dd_bench.results.record import RunRecord
from dd_bench.tracking.provenance import CUDA_ALLOCATOR_PEAK

__all__ = ["COLUMNS", "GAP_COLUMN", "PUBLISHED_COLUMNS", "PUBLISHED_CSV", "build_leaderboard", "load_published",
           "write_leaderboard"]

GAP_COLUMN = "gap vs published"
# The repository's curated table; dd_bench.resources.PUBLISHED_CSV is the one path that also holds inside a wheel.
PUBLISHED_CSV = PUBLISHED_TABLE

COLUMNS = (
    "protocol", "protocol_version", "ranked", "dataset", "ipc", "model", "rank", "method", "variant", "kind",
    "preset", "n_seeds", "acc_mean", "acc_std", "acc_mean_std", "ior", "published", "published_std",
    "published_verified", "published_selection", GAP_COLUMN, "gap_ours", "published_source", "acc_best_during_training",
    "acc_test_selected", "lrs", "ars", "label_source", "images_bytes", "labels_bytes",
    "eval_assets_bytes",
    "eval_assets", "storage_bytes", "storage_dtype", "distill_seconds", "eval_seconds",
    "peak_memory_bytes", "peak_memory_kind", "device", "note", "record_id", "set_hash",
)  # fmt: skip

# Reference rows read better under what they are than under their registry key.
REFERENCE_LABELS = {"full_data": "full data", "random_subset": "random real subset"}
# Config keys that never make two records different entries (where outputs go, how they are shown).
_NOT_A_VARIANT = ("results", "out", "synset", "progress", "logger", "rerun", "device", "task", "models", "demo",
                  "references", "hydra")
UNRANKED_REASONS = {
    "quick": "CPU demo protocol (fewer training passes); its numbers are not comparable with any paper or ranked run",
    "kd-quick": "CPU demo protocol of the kd family (200 epochs, lr 1e-2, T=1); not comparable with any paper or "
                "with kd",
    "+custom": "a protocol with changed fields (eval.epochs=...); not comparable with any paper or ranked run",
}
_DEFAULT_UNRANKED_REASON = ("a paper-comparison protocol (one paper's own recipe, kept for its published numbers) or a "
                            "best-of-checkpoints opt-in; never compare it with ranked tables")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _created(record: RunRecord) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(record.created)
    except ValueError:
        return _EPOCH
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in _NOT_A_VARIANT:
            continue
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _variant_labels(records: list[RunRecord]) -> list[str]:
    """For records of one (protocol, dataset, ipc, model, method) block: what tells them apart, or ''."""
    if len(records) == 1:
        return [""]
    flat = [_flatten(r.config or {}) for r in records]
    keys = sorted({k for f in flat for k in f})
    differing = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]
    labels = [", ".join(f"{k}={f.get(k)}" for k in differing) for f in flat]
    for i, r in enumerate(records):
        if not labels[i] and len({tuple(x.seeds) for x in records}) > 1:
            labels[i] = f"seeds={','.join(map(str, r.seeds))}"
        if not labels[i] or labels.count(labels[i]) > 1:
            labels[i] = (labels[i] + "; " if labels[i] else "") + f"record {r.record_id[:8]}"
    return labels


# Methods that publish no number this suite can compare with: the leaderboard says so on their rows.
NO_PUBLISHED_NUMBER = {"hello": "no published number exists (the paper reports ImageNet only, not readable)"}


def _note(record: RunRecord, elsewhere: str = "") -> str:
    notes = []
    if record.legacy:
        notes.append("legacy record (written before config hashes)")
    if record.kind == "evaluation" and ((record.config or {}).get("method") or {}).get("reconstruction"):
        notes.append("reconstruction, not a reproduction")
    if record.kind == "evaluation" and record.method in NO_PUBLISHED_NUMBER:
        notes.append(NO_PUBLISHED_NUMBER[record.method])
    best = record.extra.get("best_during_training")
    if best and best.get("accuracies"):
        values = best["accuracies"]
        notes.append(f"best during training {sum(values) / len(values):.2f} (test set, as papers report, not ranked)")
    recorded = record.extra.get("recorded_reference")
    if recorded:
        notes.append(f"recorded reference: {recorded.split(', by ')[0]}")  # the command is in extra.command
    if elsewhere:
        notes.append(elsewhere)
    return "; ".join(notes)


def _label_display(record: RunRecord) -> str:
    """What the student learned from: the label source, and a teacher's BN mode when it runs in train mode."""
    source = record.storage.get("label_source") or _legacy_label_source(record)
    if ":bn_train" in str(record.extra.get("label_identity") or ""):
        source += " (BN train)"
    return source


def _legacy_label_source(record: RunRecord) -> str:
    """Records before the labels section: hard, or learned for soft-labelled sets."""
    return "hard" if record.label_kind in (None, "hard") else "learned"


def _row(record: RunRecord, variant: str, published: dict[str, Any] | None, *, ior: float = math.nan,
         elsewhere: str = "") -> dict[str, Any]:
    pub_mean = math.nan if published is None else float(published["acc_mean"])
    gap_value, gap_ours = gap(record, published)
    return {
        "protocol": record.protocol,
        "protocol_version": record.protocol_version,
        "ranked": record.ranked,
        "dataset": record.dataset,
        "ipc": record.ipc,
        "model": record.model,
        "rank": None,
        "method": record.method,
        "variant": variant,
        "kind": record.kind,
        "preset": record.preset,
        "n_seeds": len(record.seeds),
        "acc_mean": record.acc_mean,
        "acc_std": record.acc_std,
        # One seed has no spread: "n/a", never a "+- 0.00" that reads as a measured zero.
        "acc_mean_std": f"{record.acc_mean:.2f} +- " + (f"{record.acc_std:.2f}" if len(record.seeds) > 1 else "n/a"),
        "ior": ior,  # points over the same-protocol, same-label-source random subset; NaN without one
        "published": pub_mean,
        "published_std": math.nan if published is None else float(published["acc_std"]),
        "published_verified": None if published is None else published["verified"],
        "published_selection": None if published is None else published["selection"],
        GAP_COLUMN: gap_value,  # NaN when no published row matched, its selection is unknown, or ours is missing
        "gap_ours": gap_ours or None,  # which of our numbers entered the gap
        "published_source": None if published is None else published["source"],
        "acc_best_during_training": best_during_training_mean(record),
        # paper_selection: the test-selected checkpoint's score (the papers' way), beside the honest one; never ranked
        "acc_test_selected": test_selected_mean(record),
        "label_source": _label_display(record),
        "images_bytes": _nan_if_none(record.storage.get("images_bytes")),
        "labels_bytes": _nan_if_none(record.storage.get("labels_bytes")),
        "eval_assets_bytes": _nan_if_none(record.storage.get("eval_assets_bytes")),
        "eval_assets": ", ".join(sorted(record.storage.get("eval_assets") or {})) or None,
        "storage_bytes": _nan_if_none(record.storage.get("total_bytes")),
        "storage_dtype": record.storage.get("dtype"),
        "distill_seconds": _nan_if_none(record.distill_seconds),
        "eval_seconds": _nan_if_none(record.eval_seconds),
        "peak_memory_bytes": _nan_if_none(record.peak_memory.get("bytes")),
        "peak_memory_kind": record.peak_memory.get("kind"),
        "device": record.device,
        "note": _note(record, elsewhere),
        **{k: _nan_if_none(((record.extra.get("robust_scores") or {}).get(k) or {}).get(k)) for k in ("lrs", "ars")},
        "record_id": record.record_id,
        "set_hash": record.set_hash,
    }


def _sort_key(row: dict[str, Any]) -> tuple:
    ipc = row["ipc"]
    # Ranked tables first; full-data rows (ipc None) after every IPC; methods by accuracy, references last.
    return (
        not row["ranked"], row["protocol"], row["protocol_version"], row["dataset"],
        ipc is None, ipc or 0, row["model"], row["kind"] == "reference", -row["acc_mean"], row["method"],
        row["variant"],
    )  # fmt: skip


def _assign_ranks(rows: list[dict[str, Any]]) -> None:
    """Competition rank ("1224") by mean accuracy within each ranked (protocol, dataset, ipc, model) block."""
    blocks: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        if row["ranked"] and row["kind"] == "evaluation":
            key = (row["protocol"], row["protocol_version"], row["dataset"], row["ipc"], row["model"])
            blocks.setdefault(key, []).append(row)
    for block in blocks.values():
        for row in block:
            row["rank"] = 1 + sum(other["acc_mean"] > row["acc_mean"] for other in block)


def build_leaderboard(records: Iterable[RunRecord], *, published_csv: Path | str | None = None) -> pd.DataFrame:
    """One row per record (per config), labelled with what distinguishes it from its block's other rows.

    ``published_csv`` (e.g. :data:`PUBLISHED_CSV`) adds the method's own published mean, std, verified flag and
    selection rule, matched on (method, dataset, ipc, model, protocol), and the gap against our number measured
    under that selection rule (:func:`dd_bench.results.published.gap`). Columns are :data:`COLUMNS`.
    """
    unique = {rec.record_id: rec for rec in sorted(records, key=lambda r: (_created(r), r.record_id))}
    groups: dict[tuple, list[RunRecord]] = {}
    for rec in unique.values():
        key = (rec.protocol, rec.protocol_version, rec.ranked, rec.kind, rec.dataset, rec.ipc, rec.model, rec.method,
               _label_display(rec))
        groups.setdefault(key, []).append(rec)
    published = PublishedIndex(published_csv)
    iors = ior_by_record(unique.values())
    rows = []
    for recs in groups.values():
        for rec, variant in zip(recs, _variant_labels(recs), strict=True):
            rows.append(_row(rec, variant, published.match(rec), ior=iors.get(rec.record_id, math.nan),
                             elsewhere=published.elsewhere(rec)))
    _assign_ranks(rows)
    rows.sort(key=_sort_key)
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["ipc"] = df["ipc"].astype("Int64")
    df["rank"] = df["rank"].astype("Int64")
    df["ranked"] = df["ranked"].astype(bool)
    return df


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _fmt_number(value: Any, digits: int, sign: bool = False) -> str:
    if _missing(value):
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _fmt_bytes(value: Any) -> str:
    if _missing(value):
        return ""
    size, unit = float(value), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"


def _fmt_paper_number(value: float) -> str:
    # Papers print one or two decimals (71.6, 55.03, 0.04); show what they printed, not a reformatted float.
    text = f"{value:.2f}"
    return text.removesuffix("0")


def _fmt_published(row: pd.Series) -> str:
    if _missing(row["published"]):
        return ""
    std = "" if _missing(row["published_std"]) else f" +- {_fmt_paper_number(row['published_std'])}"
    return f"{_fmt_paper_number(row['published'])}{std}"


def _fmt_peak(row: pd.Series) -> str:
    """The evaluation's own CUDA allocator peak. A CPU process RSS (the interpreter and the data included, and
    never reset between evaluations) is left out: it would repeat one process figure on every row."""
    if _missing(row["peak_memory_bytes"]) or row["peak_memory_kind"] != CUDA_ALLOCATOR_PEAK:
        return ""
    return _fmt_bytes(row["peak_memory_bytes"])


def _fmt_assets(row: pd.Series) -> str:
    """Bytes needed at evaluation besides the set, with what they are (teacher:..., zca)."""
    if _missing(row["eval_assets_bytes"]) or not row["eval_assets_bytes"]:
        return "" if _missing(row["eval_assets_bytes"]) else "0"
    return f"{_fmt_bytes(row['eval_assets_bytes'])} ({_text(row['eval_assets'])})"


def _method_label(row: pd.Series) -> str:
    if row["kind"] == "reference":
        labels = "" if row.get("label_source") in (None, "hard") else f", {row['label_source'].split(' ')[0]} labels"
        return f"{REFERENCE_LABELS.get(row['method'], row['method'])} (reference{labels})"
    return str(row["method"])


_DISPLAY = (
    ("dataset", lambda r: str(r["dataset"])),
    ("ipc", lambda r: "all" if _missing(r["ipc"]) else str(int(r["ipc"]))),
    ("model", lambda r: str(r["model"])),
    ("rank", lambda r: "" if _missing(r["rank"]) else str(int(r["rank"]))),
    ("method", _method_label),
    ("variant", lambda r: _text(r["variant"])),
    ("preset", lambda r: _text(r["preset"])),
    ("seeds", lambda r: str(r["n_seeds"])),
    ("acc % (mean +- std)", lambda r: str(r["acc_mean_std"])),
    ("IOR (points)", lambda r: _fmt_number(r["ior"], 2, sign=True)),
    ("published", _fmt_published),
    ("verified", lambda r: _text(r["published_verified"])),
    ("selection", lambda r: _text(r["published_selection"])),
    (GAP_COLUMN, lambda r: _fmt_number(r[GAP_COLUMN], 2, sign=True)),
    ("gap uses our", lambda r: _text(r["gap_ours"])),
    ("best during training % (not ranked)", lambda r: _fmt_number(r["acc_best_during_training"], 2)),
    ("test-selected % (not ranked)", lambda r: _fmt_number(r["acc_test_selected"], 2)),
    ("LRS", lambda r: _fmt_number(r["lrs"], 3)),
    ("ARS", lambda r: _fmt_number(r["ars"], 3)),
    ("labels", lambda r: _text(r["label_source"])),
    ("images", lambda r: _fmt_bytes(r["images_bytes"])),
    ("label bytes", lambda r: _fmt_bytes(r["labels_bytes"])),
    ("eval assets", _fmt_assets),
    ("storage", lambda r: _fmt_bytes(r["storage_bytes"])),
    ("distill s", lambda r: _fmt_number(r["distill_seconds"], 1)),
    ("eval s", lambda r: _fmt_number(r["eval_seconds"], 1)),
    ("peak memory", _fmt_peak),
    ("note", lambda r: _text(r["note"])),
)  # fmt: skip


_OPTIONAL_DISPLAY = frozenset({"test-selected % (not ranked)", "best during training % (not ranked)", "peak memory",
                               "LRS", "ARS", "IOR (points)", "published", "verified", "selection", GAP_COLUMN,
                               "gap uses our"})


def _render_table(headers: list[str], rows: list[list[str]], *, markdown: bool) -> list[str]:
    """A markdown pipe table, or space-aligned columns for a terminal; no ``tabulate`` dependency."""
    if markdown:
        cells = [[c.replace("|", "\\|") for c in row] for row in [headers, *rows]]
        lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return lines + ["| " + " | ".join(row) + " |" for row in cells[1:]]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *map(line, rows)]


def _table_header(protocol: str, version: int, ranked: bool, has_published: bool = False) -> list[str]:
    title = f"Protocol `{protocol}` v{version}" + (" (ranked)" if ranked else " - NOT RANKED")
    lines = [title, ""]
    if not ranked:
        reason = UNRANKED_REASONS.get("+custom" if protocol.endswith("+custom") else protocol,
                                      _DEFAULT_UNRANKED_REASON)
        lines += [f"Not ranked: {reason}.", ""]
    accuracy = (
        f"Accuracies are mean +- std over seeds (sample std), in percent, on the real test set, evaluated under "
        f"protocol `{protocol}` v{version}."
    )
    if not has_published:
        published = (f"No published number is shown: baselines/published.csv has none measured under `{protocol}` "
                     "(a row's note names the protocol that has one).")
    else:
        published = (
            f"Published numbers (baselines/published.csv) are those measured under `{protocol}`; `{GAP_COLUMN}` "
            "subtracts each from our number under the paper's selection rule, named beside it: our final epoch, "
            "our best during training, or our test-selected checkpoint (both labelled, never ranked); no gap where "
            "the paper's rule is unknown."
        )
    ior = ("IOR: points over the random real subset of the same size under this protocol and the label source "
           "paired with the set's own (hard, its teachers online, or their static logits); empty without one.")
    return lines + [f"{accuracy} {published} {ior}", ""]


def published_shown(table: pd.DataFrame) -> bool:
    return bool(table["published"].notna().any())


def _render(df: pd.DataFrame, *, markdown: bool) -> str:
    if df.empty:
        return "No run records.\n"
    out: list[str] = []
    for (protocol, version, ranked), table in df.groupby(["protocol", "protocol_version", "ranked"], sort=False):
        header = _table_header(str(protocol), int(version), bool(ranked), has_published=published_shown(table))
        out += [("## " if markdown else "== ") + header[0], *header[1:]]
        rows = [[fmt(row) for _, fmt in _DISPLAY] for _, row in table.iterrows()]
        # A column only some runs fill (paper_selection's) is shown in the tables where a run filled it.
        keep = [i for i, (name, _) in enumerate(_DISPLAY)
                if name not in _OPTIONAL_DISPLAY or any(row[i] for row in rows)]
        out += _render_table([_DISPLAY[i][0] for i in keep], [[row[i] for i in keep] for row in rows],
                             markdown=markdown) + [""]
    return "\n".join(out)


def write_leaderboard(df: pd.DataFrame, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``leaderboard.csv`` (every column, raw numbers) and ``leaderboard.md`` (one table per protocol)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "leaderboard.csv", out / "leaderboard.md"
    atomic_write_text(csv_path, df.to_csv(index=False))
    preamble = (
        "# dd-bench leaderboard\n\n"
        "Generated from the run records by `dd_bench.results.leaderboard`; do not edit by hand. "
        "Each protocol is its own table; rows of different protocols are never comparable.\n\n"
    )
    atomic_write_text(md_path, preamble + _render(df, markdown=True))
    return csv_path, md_path
