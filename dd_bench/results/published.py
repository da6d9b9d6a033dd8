"""The papers' published numbers (``baselines/published.csv``) and how a record is compared with one.

A published row names the dd-bench **protocol** its number is comparable with (empty when none is: an unknown or
foreign recipe) and the **selection** rule that produced it:

* ``final``: the last epoch of the evaluation (and the finished set): compared with our final-epoch mean
  (``acc_mean``, the ranked number);
* ``best_during_training``: the best test accuracy seen while the student trained (RDED, CV-DD, INFER): compared
  with our best-during-training mean (recorded beside the final one by protocols with ``best_every``);
* ``best_of_checkpoints_test``: the distillation checkpoint chosen on the test set (trajectory matching's
  ``images_best.pt``): compared with our ``acc_test_selected`` (``paper_selection``: labelled, never ranked);
* ``unknown``: shown, never differenced.

A record meets a published row only under the same (method, dataset, ipc, model, protocol); under any other
protocol the board names the protocol that has one in the row's note, and shows no number.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from dd_bench.errors import UserError
from dd_bench.results.record import RunRecord

PUBLISHED_COLUMNS = ("method", "dataset", "ipc", "model", "acc_mean", "acc_std", "protocol", "selection",
                     "protocol_note", "source", "verified")
VERIFIED_VALUES = ("yes", "no", "partial")
SELECTIONS = ("final", "best_during_training", "best_of_checkpoints_test", "unknown")
# Which of our numbers enters the gap for each selection rule (the gap's "ours" column says it in these words).
GAP_BASIS = {"final": "final epoch", "best_during_training": "best during training",
             "best_of_checkpoints_test": "test-selected checkpoint"}
# The papers' own rows for what dd-bench computes as reference rows (baselines/published.csv names).
PUBLISHED_NAMES = {"random_subset": "random", "full_data": "full_data"}
_KEY = ("method", "dataset", "ipc", "model", "protocol")


def _parse_ipc(text: str) -> int | None:
    return None if text.strip().lower() == "all" else int(text)


def load_published(path: Path | str) -> pd.DataFrame:
    """Read ``baselines/published.csv`` (see ``baselines/README.md``) and check it; raises ``UserError`` if bad.

    ``ipc`` becomes a nullable integer (``all`` -> missing, the full-data rows); ``acc_std`` may be missing;
    ``protocol`` is empty where no dd-bench protocol follows the number's recipe.
    """
    path = Path(path)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(table.columns) != PUBLISHED_COLUMNS:
        raise UserError(f"{path}: columns {list(table.columns)}; expected {list(PUBLISHED_COLUMNS)}")
    for column, allowed in (("verified", VERIFIED_VALUES), ("selection", SELECTIONS)):
        bad = sorted(set(table[column]) - set(allowed))
        if bad:
            raise UserError(f"{path}: {column} must be one of {allowed}; got {bad}")
    table["ipc"] = pd.array([_parse_ipc(v) for v in table["ipc"]], dtype="Int64")
    table["acc_mean"] = pd.to_numeric(table["acc_mean"], errors="raise")
    table["acc_std"] = pd.to_numeric(table["acc_std"].replace("", None), errors="raise").astype(float)
    dup = table.duplicated(list(_KEY), keep=False)
    if dup.any():
        raise UserError(f"{path}: duplicate (method, dataset, ipc, model, protocol) rows:\n{table[dup]}")
    return table


class PublishedIndex:
    """Published rows looked up by (method, dataset, ipc, model, protocol), and the others of the same method
    cell (for the note that names where a comparable number lives)."""

    def __init__(self, published_csv: Path | str | None) -> None:
        self.exact: dict[tuple, dict[str, Any]] = {}
        self.cells: dict[tuple, list[dict[str, Any]]] = {}
        self.protocols: set[str] = set()
        if published_csv is None:
            return
        for row in load_published(published_csv).to_dict("records"):
            row["ipc"] = None if pd.isna(row["ipc"]) else int(row["ipc"])
            cell = (row["method"], row["dataset"], row["ipc"], row["model"])
            self.exact[(*cell, row["protocol"])] = row
            self.cells.setdefault(cell, []).append(row)
            if row["protocol"]:
                self.protocols.add(row["protocol"])

    @staticmethod
    def _cell(record: RunRecord) -> tuple | None:
        if record.kind == "reference":
            # Only hard-labelled reference rows stand for the papers' random / full-data rows.
            if ((record.storage or {}).get("label_source") or "hard") != "hard" or record.method not in PUBLISHED_NAMES:
                return None
            return (PUBLISHED_NAMES[record.method], record.dataset, record.ipc, record.model)
        return (record.method, record.dataset, record.ipc, record.model)

    def match(self, record: RunRecord) -> dict[str, Any] | None:
        """The published row under the record's own protocol, or None."""
        cell = self._cell(record)
        return None if cell is None else self.exact.get((*cell, record.protocol))

    def elsewhere(self, record: RunRecord) -> str:
        """A note naming the protocols under which this cell has a published number (empty when none does or when
        the record's own protocol has one)."""
        cell = self._cell(record)
        if cell is None or self.match(record) is not None:
            return ""
        others = self.cells.get(cell) or []
        parts = [f"published {_num(r['acc_mean'])} is under `{r['protocol']}` (eval={r['protocol']} compares with it)"
                 if r["protocol"] else f"published {_num(r['acc_mean'])} has no dd-bench protocol (its recipe is "
                 "unknown or not implemented here), so no record is compared with it"
                 for r in others]
        return "; ".join(parts)


def _num(value: float) -> str:
    return f"{value:.2f}".removesuffix("0")


def best_during_training_mean(record: RunRecord) -> float:
    values = (record.extra.get("best_during_training") or {}).get("accuracies") or []
    return sum(values) / len(values) if values else math.nan


def test_selected_mean(record: RunRecord) -> float:
    value = (record.extra.get("acc_test_selected") or {}).get("mean")
    return math.nan if value is None else float(value)


def ours_for(record: RunRecord, selection: str) -> float:
    """Our number measured the way a ``selection`` published number was (NaN where we have none)."""
    if selection == "final":
        return float(record.acc_mean)
    if selection == "best_during_training":
        return best_during_training_mean(record)
    if selection == "best_of_checkpoints_test":
        return test_selected_mean(record)
    return math.nan


def gap(record: RunRecord, published: dict[str, Any] | None) -> tuple[float, str]:
    """(ours minus published, which of our numbers that is); (NaN, '') when nothing comparable exists."""
    if published is None:
        return math.nan, ""
    selection = published["selection"]
    ours = ours_for(record, selection)
    if math.isnan(ours):
        return math.nan, ""
    return ours - float(published["acc_mean"]), GAP_BASIS[selection]
