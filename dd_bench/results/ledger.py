"""The fidelity ledger: dd-bench beside an official implementation, pair by pair, on the same data and budget.

One JSON file per pair under ``results/ledger/`` (written by the harness in ``scripts/ledger/``), checked here, and
rendered as ``docs/ledger.md`` (:func:`render_markdown`, by ``scripts/ledger/render.py``; never typed by hand).

A pair's **verdict** follows from its numbers alone, with ``d`` = dd-bench's mean minus the official mean (points)
and ``SE`` the standard error of ``d`` (``sqrt(s_a^2 / n_a + s_b^2 / n_b)``, sample stds over evaluation networks):
``agree`` when ``|d| <= 1.5`` and ``SE <= 0.75``; ``disagree`` when ``|d| > 1.5`` and ``|d| > 2 SE``; otherwise
``inconclusive`` (more networks or distillation seeds are needed, or the entry says why the budget ran out). A pair
that could not run has ``status: "not run"`` and a ``reason`` instead of numbers.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from dd_bench.errors import UserError

LEDGER_FORMAT = "dd-bench-ledger"
LEDGER_VERSION = 1
AGREE_POINTS, AGREE_SE, DISAGREE_SES = 1.5, 0.75, 2.0
# dd-bench may not be slower than the official code in any pair beyond the machine's drift (issue 21): 5 %.
SPEED_TOLERANCE = 1.05
VERDICTS = ("agree", "disagree", "inconclusive")
MIN_NETWORKS = 5
# Every measured entry carries these (dotted: nested keys).
REQUIRED = ("format", "version", "pair", "method", "dataset", "ipc", "status", "official.repository",
            "official.commit", "official.command", "official.wall_seconds", "official.adaptations",
            "ddbench.command", "ddbench.git_sha", "ddbench.wall_seconds", "budget", "data.train_subset",
            "data.test", "scoring.evaluator", "scoring.protocol", "scoring.model", "accuracies.ddbench",
            "accuracies.official", "means.ddbench", "means.official", "difference", "standard_error", "verdict",
            "wall_time_ratio", "reproduce")
REQUIRED_NOT_RUN = ("format", "version", "pair", "method", "dataset", "ipc", "status", "reason", "official.repository")


def standard_error(a: list[float], b: list[float]) -> float:
    """Standard error of mean(a) - mean(b) from the two samples' std (sample, n - 1)."""
    if len(a) < 2 or len(b) < 2:
        return math.inf
    return math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


def verdict(difference: float, se: float) -> str:
    if abs(difference) <= AGREE_POINTS and se <= AGREE_SE:
        return "agree"
    if abs(difference) > AGREE_POINTS and abs(difference) > DISAGREE_SES * se:
        return "disagree"
    return "inconclusive"


def compare(ours: list[float], official: list[float]) -> dict[str, Any]:
    """The numbers a pair's entry derives from its per-network accuracies (percent)."""
    d = statistics.fmean(ours) - statistics.fmean(official)
    se = standard_error(ours, official)
    return {"means": {"ddbench": statistics.fmean(ours), "official": statistics.fmean(official)},
            "difference": d, "standard_error": se, "verdict": verdict(d, se)}


def _get(entry: dict[str, Any], dotted: str) -> Any:
    value: Any = entry
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def check_entry(entry: dict[str, Any], *, where: str = "ledger entry") -> dict[str, Any]:
    """Raise ``UserError`` naming the first missing field or inconsistent number; return the entry."""
    if entry.get("format") != LEDGER_FORMAT:
        raise UserError(f"{where}: format must be '{LEDGER_FORMAT}'; got {entry.get('format')!r}")
    required = REQUIRED_NOT_RUN if entry.get("status") == "not run" else REQUIRED
    for field in required:
        try:
            _get(entry, field)
        except KeyError:
            raise UserError(f"{where}: missing field '{field}'") from None
    if entry["status"] == "not run":
        return entry
    if entry["status"] != "measured":
        raise UserError(f"{where}: status must be 'measured' or 'not run'; got {entry['status']!r}")
    ours, official = entry["accuracies"]["ddbench"], entry["accuracies"]["official"]
    if min(len(ours), len(official)) < MIN_NETWORKS:
        raise UserError(f"{where}: at least {MIN_NETWORKS} evaluation networks per set; got {len(ours)} and "
                        f"{len(official)}")
    derived = compare(ours, official)
    for key in ("difference", "standard_error"):
        if not math.isclose(entry[key], derived[key], rel_tol=1e-6, abs_tol=1e-9):
            raise UserError(f"{where}: {key} {entry[key]} does not follow from the accuracies ({derived[key]})")
    if entry["verdict"] != derived["verdict"]:
        raise UserError(f"{where}: verdict '{entry['verdict']}' does not follow from the numbers "
                        f"('{derived['verdict']}')")
    return entry


def load_ledger(directory: Path | str) -> list[dict[str, Any]]:
    """Every ``*.json`` entry under ``directory``, checked, sorted by pair name ([] when there is none)."""
    directory = Path(directory)
    entries = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: not JSON ({err})") from None
        entries.append(check_entry(entry, where=str(path)))
    return sorted(entries, key=lambda e: e["pair"])


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f} ({len(values)})"


def _budget(budget: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in budget.items())


def _notes(entry: dict[str, Any]) -> str:
    """One bullet: the cross-check (one set under both evaluators) and what ran beside the timed steps."""
    parts = []
    cross = entry.get("cross_check")
    if cross:
        parts.append(f"cross-check on the {cross['set']} set: {cross['evaluator'].split(' (')[0]} "
                     f"{cross['mean_official_evaluator']:.2f} vs dd-bench's evaluator "
                     f"{cross['mean_ddbench_evaluator']:.2f} ({cross['difference']:+.2f})")
    if entry.get("timing_note"):
        parts.append(f"timing: {entry['timing_note']}")
    return f"- **{entry['pair']}**: " + "; ".join(parts) + "." if parts else ""


def _scope(entry: dict[str, Any]) -> str:
    """What a row compares: a set at an IPC, one set under both evaluators (``kind: evaluators``), or (``ipc`` null)
    the experts both sides trained."""
    if entry.get("ipc") is None:
        return entry.get("kind", "experts")
    return f"IPC {entry['ipc']}" + (", evaluators alone" if entry.get("kind") == "evaluators" else "")


def speed_summary(measured: list[dict[str, Any]]) -> str:
    """One line: how many pairs meet the speed target (wall time dd-bench / official <= ``SPEED_TOLERANCE``) and which
    do not, with their ratios, so a slow pair is stated, not left for the reader to spot in the table."""
    apart = [e for e in measured if e.get("wall_time_not_comparable")]
    timed = [e for e in measured if not e.get("wall_time_not_comparable")]
    slow = [e for e in timed if e["wall_time_ratio"] > SPEED_TOLERANCE]
    line = (f"Speed: {len(timed) - len(slow)} of {len(timed)} like-for-like timed pair(s) within the target "
            f"(dd-bench's wall time at most {SPEED_TOLERANCE:.2f}x the official code's, the machine's drift)")
    if slow:
        line += ("; slower: " + ", ".join(f"{e['pair']} {e['wall_time_ratio']:.2f}x" for e in slow)
                 + " (each one's timing conditions are in its bullet below)")
    if apart:
        line += ("; not timed like-for-like, so counted neither way: "
                 + "; ".join(f"{e['pair']} ({e['wall_time_not_comparable']})" for e in apart))
    return line + "."


def render_markdown(entries: list[dict[str, Any]], *, built: dict[str, str] | None = None) -> str:
    """``docs/ledger.md`` from the entries: one row per pair, the command that reproduces it, never edited by hand.

    ``built``: every pair the harness can run (name -> official repository); those without an entry are listed as
    built and not yet measured, so the page shows the ledger's coverage, not only its results."""
    lines = [
        "# Fidelity ledger: dd-bench beside the official implementations",
        "",
        "Generated by `python scripts/ledger/render.py` from `results/ledger/*.json`; do not edit by hand.",
        "",
        "Each pair runs an official pipeline and dd-bench's on the same data files, budget and seeds, and scores",
        "both sets with dd-bench's evaluator (one set is also cross-checked with the official evaluation routine).",
        f"The verdict: **agree** when |d| <= {AGREE_POINTS} points and SE <= {AGREE_SE}; **disagree** when |d| > "
        f"{AGREE_POINTS} and |d| > {DISAGREE_SES:g} SE; otherwise **inconclusive** (d: dd-bench minus official; "
        "SE: its standard error over evaluation networks). Budgets are reduced to fit a 2-core CPU and are the same",
        "on both sides; each entry names every value and every adaptation made to the official code at run time.",
        "Each side runs as its users run it: dd-bench with its defaults, which since 934a055 include a glibc heap",
        "setting that speeds up CPU training ([the C heap on a CPU](performance.md#the-c-heap-on-a-cpu); a run's",
        "provenance says whether it applied), the official code with glibc's defaults.",
        "",
    ]
    measured = [e for e in entries if e["status"] == "measured"]
    if not entries:
        return "\n".join(lines + ["No pair has been measured yet: `results/ledger/` holds no entry.", ""])
    if measured:
        lines += ["| pair | method | data | budget | dd-bench % | official % | d (SE) | verdict | time ratio | "
                  "reproduce |", "|---|---|---|---|---|---|---|---|---|---|"]
        for e in measured:
            lines.append(
                f"| {e['pair']} | {e['method']} | {e['dataset']}, {_scope(e)} | {_budget(e['budget'])} | "
                f"{_mean_std(e['accuracies']['ddbench'])} | {_mean_std(e['accuracies']['official'])} | "
                f"{e['difference']:+.2f} ({e['standard_error']:.2f}) | {e['verdict']} | "
                f"{e['wall_time_ratio']:.2f}x{' (not like-for-like)' if e.get('wall_time_not_comparable') else ''} | "
                f"`{e['reproduce']}` |")
        lines += ["", speed_summary(measured), ""]
    notes = [_notes(e) for e in measured]
    if any(notes):
        lines += ["Per pair:", ""] + [n for n in notes if n] + [""]
    for e in (e for e in entries if e["status"] == "not run"):
        lines.append(f"- **{e['pair']}** ({e['method']}, {e['dataset']}, {_scope(e)}; "
                     f"{e['official']['repository']}): not run: {e['reason']}")
    waiting = sorted(set(built or {}) - {e["pair"] for e in entries})
    if waiting:
        lines += ([""] if lines[-1] else []) + [
            "Built, not yet measured (each is one `python scripts/ledger/pair.py NAME --official PATH --data PATH` "
            "away; `--list` gives their budgets):", ""]
        lines += [f"- `{name}` ({built[name]})" for name in waiting]
    return "\n".join(lines).rstrip("\n") + "\n"
