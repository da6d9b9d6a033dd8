"""The fidelity ledger (results/ledger/*.json) as a panel of the report: dd-bench beside the official code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def ledger_panel(ledger_dir: Path | None) -> str:
    """The fidelity ledger as an HTML table, or '' when there is no measured entry."""
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
    return ("<section class='card ledger' id='ledger'><h2>fidelity ledger</h2><p class='caption'>dd-bench beside the "
            "official implementations on the same data and budget (docs/ledger.md): d is dd-bench minus official, "
            "in points, SE its standard error.</p><div class='scroll'>"
            + table.to_html(index=False, float_format=lambda v: f"{v:.2f}", escape=True, na_rep="", border=0)
            + "</div></section>")
