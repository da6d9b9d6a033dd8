"""The C heap setting at start-up (dd_bench/tracking/allocator.py): when it applies, when it is left alone, and that
what was done is in the provenance of every run. Its speed is measured by scripts/bench_allocator.py, not here."""

from __future__ import annotations

import platform
import sys

import pytest

from dd_bench.app.cli import main
from dd_bench.errors import UserError
from dd_bench.tracking import allocator
from dd_bench.tracking.provenance import collect_provenance

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize(("environ", "named"), [
    ({"DD_BENCH_MALLOC": "system"}, "DD_BENCH_MALLOC=system"),
    ({"MALLOC_TRIM_THRESHOLD_": "131072"}, "MALLOC_TRIM_THRESHOLD_"),
    ({"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TOP_PAD_": "0"}, "MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "GLIBC_TUNABLES"),
])
def test_left_alone_when_the_user_chose(environ: dict[str, str], named: str) -> None:
    state = allocator.tune_allocator(environ=environ)
    assert state.startswith("left as it is") and named in state
    assert allocator.allocator_state() == state


def test_other_tunables_do_not_count_as_a_malloc_choice() -> None:
    state = allocator.tune_allocator(environ={"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})
    assert ("1024 MiB" in state) if GLIBC else state.startswith("left as it is (not glibc")


@pytest.mark.skipif(not GLIBC, reason="mallopt exists only in glibc")
@pytest.mark.parametrize("value", ["", "tuned"])
def test_thresholds_raised_by_default_on_glibc(value: str) -> None:
    state = allocator.tune_allocator(environ={"DD_BENCH_MALLOC": value} if value else {})
    assert state == (f"glibc mmap and trim thresholds {allocator.THRESHOLD_BYTES >> 20} MiB (dd-bench default; "
                     "DD_BENCH_MALLOC=system keeps glibc's)")
    assert collect_provenance("cpu")["allocator"] == state


def test_unknown_choice_is_one_line_naming_the_choices() -> None:
    with pytest.raises(UserError, match=r"^Unknown DD_BENCH_MALLOC 'jemalloc'; use tuned \(the default\) or system$"):
        allocator.tune_allocator(environ={"DD_BENCH_MALLOC": "jemalloc"})


def test_cli_refuses_an_unknown_choice_before_any_work(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DD_BENCH_MALLOC", "bogus")
    assert main(["evaluate", "eval=mtt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: Unknown DD_BENCH_MALLOC 'bogus'; use tuned (the default) or system"]
