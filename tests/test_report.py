"""``dd-bench report``: a self-contained HTML page whose every figure renders in headless Chromium (skipped with
a reason locally when Chromium is absent; a failure under CI=true, where .ci/run installs it), with the references
and every variant drawn, and a leaderboard table free of raw pandas values; Plotly figures when the ``report``
extra is installed, the matplotlib page when it is not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.test_results import make_record

VARIANTS = ("dm [method.init=real]", "dm [method.init=noise]")
REFERENCES = ("random subset (ref)", "full data (ref)")
# What a table cell or a hover must never print: pandas' missing markers, Python's None, 5+ decimal floats.
RAW = re.compile(r"&lt;NA&gt;|<NA>|\bNone\b|\bnan\b|\bNaN\b|\d\.\d{5,}")


def _records():
    """Two DM variants (init real/noise; a per-IPC learning rate that must not split their lines), MTT, the
    random-subset reference at each IPC and the full-data one, on two models, at IPC 1 and 10."""
    out = []
    for init, base in (("real", 48.0), ("noise", 10.0)):
        for ipc, gain in ((1, 0.0), (10, 12.0)):
            for model, shift in (("convnet", 0.0), ("mlp", -10.0)):
                acc = base + gain + shift
                out.append(make_record(method="dm", ipc=ipc, model=model, accuracies=[acc, acc + 1], seeds=[0, 1],
                                       config={"ipc": ipc, "method": {"name": "dm", "init": init, "lr_img": ipc}},
                                       record_hash=f"dm{init}{ipc}{model}".ljust(64, "0")))
    out.append(make_record(method="mtt", ipc=10, model="convnet", accuracies=[65.0, 66.0], seeds=[0, 1],
                           extra={"acc_test_selected": {"mean": 67.5, "accuracies": [67.5]}},
                           record_hash="mtt10convnet".ljust(64, "0")))
    for model in ("convnet", "mlp"):
        for ipc, acc in ((1, 30.0), (10, 70.0)):
            out.append(make_record(kind="reference", method="random_subset", ipc=ipc, model=model, seeds=[0, 1],
                                   accuracies=[acc, acc + 2.0], record_hash=f"rs{ipc}{model}".ljust(64, "0")))
        out.append(make_record(kind="reference", method="full_data", ipc=None, model=model, seeds=[0],
                               accuracies=[90.123456], record_hash=f"fd{model}".ljust(64, "0")))
    return out


def _without_plotly(monkeypatch):
    for name in ("plotly", "plotly.graph_objects", "plotly.io", "plotly.subplots", "plotly.offline"):
        monkeypatch.setitem(sys.modules, name, None)  # `import plotly...` now raises ImportError


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _browser() -> str:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium on PATH (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI runs this test")
    return browser


def _dom(browser: str, page, home) -> str:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HOME": str(home)}).stdout


def _tables(html_text: str) -> str:
    """What a reader of the leaderboard tables sees: the cells' text and the tooltips (not the raw sort keys)."""
    tables = "".join(re.findall(r"<table class=.board.*?</table>", html_text, flags=re.S))
    titles = re.findall(r"title=[\"']([^\"']*)[\"']", tables)
    return " | ".join([re.sub(r"<[^>]+>", " | ", tables), *titles])


def test_static_page_without_plotly(tmp_path, monkeypatch):
    from dd_bench.results.report import FIGURES, build_report

    _without_plotly(monkeypatch)
    page = build_report(_records(), out_dir=tmp_path / "report")
    text = page.read_text()
    assert text.count("class='figure'") == len(FIGURES) and "Plotly.newPlot" not in text
    assert "<script src" not in text and "<link" not in text  # nothing fetched at view time
    assert all((tmp_path / "report" / f"{name}.png").stat().st_size > 1000 for name in FIGURES)
    tables = _tables(text)
    assert "48.50 ± 0.71 (2 seeds)" in tables and "90.12 ± n/a (1 seed)" in tables and not RAW.search(tables)
    assert " variant " in tables and "method.init=noise" in tables
    assert "not comparable" in text


def test_figures_keep_every_variant_and_draw_the_references():
    import pandas as pd

    from dd_bench.results import build_leaderboard
    from dd_bench.results.report.figures import build_figures

    records = _records()
    figures = {f.name: f for f in build_figures(build_leaderboard(records), {r.record_id: r.config for r in records})}
    ipc = figures["accuracy_vs_ipc"]
    assert [p.title for p in ipc.panels] == ["cifar10, convnet · mtt v1", "cifar10, mlp · mtt v1"]
    names = {t.name: t for t in ipc.panels[0].traces}
    # One line per variant across both IPCs, although the per-IPC lr_img differs between them.
    assert {*VARIANTS, *REFERENCES, "mtt"} == set(names) and names["dm [method.init=noise]"].ys == [10.5, 22.5]
    assert names["full data (ref)"].mode == "hline" and names["random subset (ref)"].xs == [1.0, 10.0]
    assert ipc.panels[0].x_log and all(not RAW.search(h) for t in names.values() for h in t.hover)
    heat = figures["method_x_architecture"].panels[0]
    assert heat.columns == ["convnet", "mlp"] and set(VARIANTS) <= set(heat.rows) and heat.rows[-1].endswith("(ref)")
    best = heat.values[heat.rows.index("full data (ref)")][0]
    assert best == heat.high and heat.text_colours[heat.rows.index("full data (ref)")][0] == "#000000"  # on yellow
    worst = min(v for row in heat.values for v in row if v is not None)
    assert heat.text_colours[[i for i, row in enumerate(heat.values) if worst in row][0]][0] == "#ffffff"  # purple
    assert len(figures["ior"].panels[0].labels) == 9 and figures["test_selection_gap"].panels[0].values == [2.0]
    # Two protocols never share a panel.
    other = make_record(method="dm", ipc=1, protocol="quick", ranked=False, record_hash="q".ljust(64, "0"))
    split = build_figures(build_leaderboard([*records, other]), {})[0]
    assert len(split.panels) == 3 and all(pd.Series([t.hover[0] for t in p.traces]).str.contains(
        "protocol quick v1" if "quick" in p.title else "protocol mtt v1").all() for p in split.panels)


def test_one_ipc_is_a_linear_axis_and_empty_figures_say_why_in_plain_words():
    from dd_bench.results import build_leaderboard
    from dd_bench.results.report.figures import build_figures

    records = [r for r in _records() if r.ipc in (1, None) and r.model == "convnet"]
    figures = {f.name: f for f in build_figures(build_leaderboard(records), {r.record_id: r.config for r in records})}
    (panel,) = figures["accuracy_vs_ipc"].panels
    assert not panel.x_log and panel.ticks == [(0.0, "IPC 1")]
    spots = {t.name: t.xs for t in panel.traces}
    assert spots["dm [method.init=real]"] != spots["dm [method.init=noise]"]  # side by side, not on top
    assert {t.mode for t in panel.traces if t.reference} == {"hline"}
    assert not figures["method_x_architecture"].panels and "one architecture (convnet)" in (
        figures["method_x_architecture"].empty)
    assert not figures["test_selection_gap"].panels and "test accuracy" in figures["test_selection_gap"].empty


def test_interactive_page_embeds_plotly_once(tmp_path):
    pytest.importorskip("plotly")
    from dd_bench.results.report import FIGURES, build_report

    page = build_report(_records(), out_dir=tmp_path / "report")
    text = page.read_text()
    assert text.count("Plotly.newPlot") == len(FIGURES) and text.count("<script src") == 0
    assert text.count("define(\"plotly") + text.count("plotly.js v") >= 1 and "class='figure'" not in text
    assert all((tmp_path / "report" / f"{name}.png").is_file() for name in FIGURES)


def test_the_plotly_page_draws_references_and_every_variant_in_headless_chromium(tmp_path):
    pytest.importorskip("plotly")
    from dd_bench.results.report import FIGURES, build_report

    browser = _browser()
    dom = _dom(browser, build_report(_records(), out_dir=tmp_path / "report"), tmp_path)
    plots = re.findall(r"<div[^>]*id=\"plot-[a-z_]+\"[^>]*>", dom)
    assert len(plots) == len(FIGURES) and all("js-plotly-plot" in p for p in plots), dom[:500]
    legend = set(re.findall(r"class=\"legendtext\"[^>]*>([^<]+)<", dom))
    assert {*VARIANTS, *REFERENCES, "mtt"} <= {t.replace("&gt;", ">") for t in legend}, legend
    tables = _tables(dom)
    assert tables.count("cifar10") == len(_records()) and not RAW.search(tables), RAW.search(tables)


# Clicks the accuracy header (ascending) and types a filter word, as a reader would.
SORT_AND_FILTER = """<script>window.addEventListener('load', function () {
  Array.prototype.filter.call(document.querySelectorAll('table.board th'),
                              function (th) { return th.textContent === 'acc %'; })[0].click();
  var filter = document.getElementById('filter');
  filter.value = 'NOISE mlp'; filter.dispatchEvent(new Event('input'));
});</script></body>"""


def test_every_static_figure_loads_and_the_table_sorts_and_filters_in_headless_chromium(tmp_path, monkeypatch):
    from dd_bench.results.report import build_report

    browser = _browser()
    _without_plotly(monkeypatch)
    page = build_report(_records(), out_dir=tmp_path / "report")
    dom = _dom(browser, page, tmp_path)
    images = re.findall(r"<img[^>]*>", dom)
    assert len(images) == 5 and all('data-loaded="1"' in img for img in images), dom[:500]
    assert not RAW.search(_tables(dom))
    clicked = page.with_name("clicked.html")
    clicked.write_text(page.read_text().replace("</body>", SORT_AND_FILTER))
    rows = re.findall(r"<tr[^>]*>.*?</tr>", _dom(browser, clicked, tmp_path).split("<tbody>")[1], flags=re.S)
    assert "0.50 ± 0.71" in rows[0] and "full data" in rows[-1]  # lowest accuracy first, the ceiling last
    shown = [row for row in rows if "display: none" not in row]
    assert len(shown) == 2 and all("noise" in row and "mlp" in row for row in shown)


def test_the_table_reads_like_the_board_one_protocol_per_table(tmp_path):
    from dd_bench.results import build_leaderboard
    from dd_bench.results.published import PUBLISHED_COLUMNS
    from dd_bench.results.report.table import leaderboard_html

    published = tmp_path / "published.csv"
    published.write_text(",".join(PUBLISHED_COLUMNS) + "\n" + "dm,cifar10,10,convnet,48.9,0.6,mtt,final,mtt,src,yes\n")
    rows = [make_record(method="dm", seeds=[0, 1], accuracies=[50.0, 52.123456], record_hash="a" * 64),
            make_record(method="dm", protocol="quick", ranked=False, record_hash=None)]  # legacy: a note
    text = leaderboard_html(build_leaderboard(rows, published_csv=published))
    mtt, quick = text.split("<section class='protocol'>")[1:]
    assert "badge ranked" in mtt and "not ranked" in quick and "Not ranked: CPU demo protocol" in quick
    assert ">48.9<" in mtt and ">+2.16 final<" in mtt and "51.06 ± 1.50 (2 seeds)" in mtt  # published, gap
    assert "title='published 48.9 ± 0.6; verified: yes; selection: final; src'" in mtt
    assert "<th>note</th>" not in mtt and "[1,2]</td>" in quick and "<li value='1'>legacy record" in quick
    assert "<li value='2'>published 48.9 is under <code>mtt</code>" in quick
    assert not RAW.search(re.sub(r"data-sort='[^']*'", "", text))


def test_one_time_cost_reads_the_teachers_and_experts_cache_entries(tmp_path):
    import json

    from dd_bench.io import KeyedStore
    from dd_bench.results.report import one_time_seconds

    teacher = KeyedStore("teachers", tmp_path).path("t" * 24)
    teacher.mkdir(parents=True)
    (teacher / "meta.json").write_text(json.dumps({"train_seconds": 12.5}))
    experts = KeyedStore("experts", tmp_path).path("e" * 24)
    experts.mkdir(parents=True)
    (experts / "meta.json").write_text(json.dumps({"experts": {"0": {"wall_seconds": 3.0}, "1": {"wall_seconds": 4.0},
                                                               "2": {"wall_seconds": 100.0}}}))
    record = make_record(extra={"teachers": [{"key": "t" * 24}],
                                "distill_status": {"experts": {"key": "e" * 24, "count": 2}}})
    assert one_time_seconds(record, tmp_path) == 12.5 + 3.0 + 4.0  # only the experts the set used
    assert one_time_seconds(make_record(), tmp_path) is None


def test_report_command(compose_cfg, tmp_path, monkeypatch):
    from dd_bench.app.tasks import run
    from dd_bench.results import write_record

    _without_plotly(monkeypatch)  # the command's wiring, not the figures: the faster page
    for record in _records():
        write_record(record, tmp_path / "runs")
    result = run(compose_cfg("task=report"))
    assert result["report"].endswith("report/index.html")
