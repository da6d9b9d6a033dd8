"""``dd-bench report results=DIR``: one self-contained HTML page of the records under DIR, viewable with no network,
and its figures as PNG files beside it.

* :mod:`.figures`: what is plotted (accuracy vs IPC, accuracy vs storage bytes, method x architecture, IOR, the
  test-selection gap; one registered builder each, :data:`FIGURE_BUILDERS`), with every variant its own series and
  the references drawn (:mod:`.series`);
* :mod:`.interactive`: the figures with Plotly (optional ``report`` extra; why optional: its docstring);
* :mod:`.static`: the same figures with matplotlib, as PNG (always written; the page's figures without Plotly);
* :mod:`.table`: the leaderboard as sortable, filterable tables, one per protocol, in the terminal board's formats;
* :mod:`.page`: the page itself; :mod:`.cost`: each row's one-time teacher/expert seconds; :mod:`.ledger_panel`.
"""

from dd_bench.results.report.cost import one_time_seconds
from dd_bench.results.report.figures import FIGURE_BUILDERS, FIGURES, create_figure
from dd_bench.results.report.ledger_panel import ledger_panel
from dd_bench.results.report.page import build_report

__all__ = ["FIGURES", "FIGURE_BUILDERS", "build_report", "create_figure", "ledger_panel", "one_time_seconds"]
