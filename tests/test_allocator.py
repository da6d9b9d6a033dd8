"""The C heap setting at start-up (dd_bench/tracking/allocator.py): when it applies, when it is left alone, and that
what was done is in the provenance of every run. Its speed is measured by scripts/bench_allocator.py, not here.

The decision tests reset the module's record of this process (a real ``mallopt`` cannot be undone, so the module
keeps saying so); the real call is made in a fresh interpreter."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from dd_bench.app.cli import main
from dd_bench.errors import UserError
from dd_bench.tracking import allocator

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_raised", None)
    monkeypatch.setattr(allocator, "_state", "not tuned: tune_allocator() was not called in this process")


@pytest.mark.parametrize(("environ", "named"), [
    ({"DD_BENCH_MALLOC": "system"}, "DD_BENCH_MALLOC=system"),
    ({"MALLOC_TRIM_THRESHOLD_": "131072"}, "the user's MALLOC_TRIM_THRESHOLD_"),
    ({"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_ARENA_MAX": "2"},
     "the user's MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}, "the user's GLIBC_TUNABLES"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "jemalloc preloaded"),
])
def test_left_alone_when_the_user_chose(fresh: None, environ: dict[str, str], named: str) -> None:
    state = allocator.tune_allocator(environ=environ)
    assert state.startswith("left as it is (") and named in state
    assert allocator.allocator_state() == state


def test_a_raised_setting_is_never_reported_as_left_alone_later(fresh: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_raised", "glibc mmap threshold 1024 MiB, trim threshold 1024 MiB (...)")
    assert allocator.tune_allocator(environ={"DD_BENCH_MALLOC": "system"}) == allocator._raised


def test_other_tunables_do_not_count_as_a_malloc_choice(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    state = allocator.tune_allocator(environ={"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})
    assert state.startswith("left as it is (not glibc (") and "musl" in state


def test_unknown_choice_is_one_line_naming_the_choices() -> None:
    with pytest.raises(UserError, match=r"^Unknown DD_BENCH_MALLOC 'jemalloc'; use tuned \(the default\) or system$"):
        allocator.tune_allocator(environ={"DD_BENCH_MALLOC": "jemalloc"})


@pytest.mark.skipif(not GLIBC, reason="mallopt exists only in glibc")
@pytest.mark.parametrize("value", ["", "tuned"])
def test_thresholds_raised_by_default_on_glibc_and_recorded(value: str) -> None:
    code = ("import json\n"
            "from dd_bench.tracking.allocator import tune_allocator\n"
            "from dd_bench.tracking.provenance import collect_provenance\n"
            "print(json.dumps([tune_allocator(), collect_provenance('cpu')['allocator']]))")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD", "DD_BENCH_MALLOC")}
    if value:
        env["DD_BENCH_MALLOC"] = value
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    state, recorded = json.loads(out.stdout)
    # glibc 2.35+ takes 1 GiB for both; an older one caps the mmap threshold at 32 MiB.
    assert state in ("glibc mmap threshold 1024 MiB, trim threshold 1024 MiB (dd-bench default; DD_BENCH_MALLOC=system"
                     " keeps glibc's)", "glibc mmap threshold 32 MiB, trim threshold 1024 MiB (dd-bench default; "
                     "DD_BENCH_MALLOC=system keeps glibc's)")
    assert recorded == state


def test_cli_refuses_an_unknown_choice_before_any_work(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DD_BENCH_MALLOC", "bogus")
    assert main(["evaluate", "eval=mtt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: Unknown DD_BENCH_MALLOC 'bogus'; use tuned (the default) or system"]
