"""``dd-bench report``: a self-contained HTML page whose every figure renders in headless Chromium (skipped with
a reason locally when Chromium is absent; a failure under CI=true, where .ci/run installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.test_results import make_record


def _records():
    out = []
    for method, accs in (("dm", (48.0, 60.0)), ("mtt", (55.0, 65.0))):
        for ipc, acc in zip((1, 10), accs):
            for model, shift in (("convnet", 0.0), ("mlp", -10.0)):
                out.append(make_record(method=method, ipc=ipc, model=model, accuracies=[acc + shift, acc + shift + 1],
                                       seeds=[0, 1], record_hash=f"{method}{ipc}{model}" + "0" * 50))
    out[0].extra["acc_test_selected"] = {"mean": 52.0, "accuracies": [52.0]}
    return out


def test_report_page_and_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from dd_bench.results.report import FIGURES, build_report

    page = build_report(_records(), out_dir=tmp_path / "report")
    text = page.read_text()
    assert text.count("class='figure'") == len(FIGURES) and "http" not in text.replace("http-equiv", "")
    assert all((tmp_path / "report" / f"{name}.png").stat().st_size > 1000 for name in FIGURES)
    assert "<table" in text and "one_time_seconds" in text and "48.50 +- 0.71" in text


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


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_every_figure_loads_in_headless_chromium(tmp_path):
    pytest.importorskip("matplotlib")
    from dd_bench.results.report import build_report

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no chromium on PATH (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI runs this test")
    page = build_report(_records(), out_dir=tmp_path / "report")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)}).stdout
    images = re.findall(r"<img[^>]*>", dom)
    assert len(images) == 4 and all('data-loaded="1"' in img for img in images), dom[:500]


def test_report_command(compose_cfg, tmp_path):
    pytest.importorskip("matplotlib")
    from dd_bench.results import write_record
    from dd_bench.tasks import run

    for record in _records():
        write_record(record, tmp_path / "runs")
    result = run(compose_cfg("task=report"))
    assert result["report"].endswith("report/index.html")
