"""How long `dd-bench --help` takes, as a whole process: interpreter start, imports, printing, exit.

Each command is started --runs times after one warm-up run that is not counted (it fills the OS file cache), and
its wall time is read from a monotonic clock around the child process. Prints min, median and max per command and
the median against the target (issue 22: under 2 s, which means printing help imports no torch). Exit status 1
when a median misses the target, so the script can gate a check.

Usage: python scripts/bench_help.py [--runs 7] [--target 2.0] [--command "dd-bench --help"] ...
Default commands: `dd-bench --help` and `dd-bench run --help` (the installed console script when it is on PATH,
else `python -m dd_bench.app.cli`), and `python -c pass` for scale (what any Python command costs here).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import subprocess
import sys
import time


def time_command(*, argv: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv`` (after one uncounted warm-up); fails if the command fails."""
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, timeout=120)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"error: {shlex.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
        if i:
            times.append(elapsed)
    return times


def default_commands() -> list[list[str]]:
    cli = shutil.which("dd-bench")
    base = [cli] if cli else [sys.executable, "-m", "dd_bench.app.cli"]
    return [[*base, "--help"], [*base, "run", "--help"], [sys.executable, "-c", "pass"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="counted runs per command (default 7)")
    parser.add_argument("--target", type=float, default=2.0, help="seconds a help command's median must stay under")
    parser.add_argument("--command", action="append", default=None,
                        help="a command to time instead of the defaults (repeat for several)")
    args = parser.parse_args()
    commands = [shlex.split(c) for c in args.command] if args.command else default_commands()
    missed = False
    print(f"{'command':<44} {'min s':>7} {'median s':>9} {'max s':>7}  vs target {args.target:.1f} s")
    for argv in commands:
        times = time_command(argv=argv, runs=args.runs)
        median = statistics.median(times)
        is_help = "--help" in argv or "-h" in argv
        verdict = ("ok" if median < args.target else "MISSED") if is_help else "(scale)"
        missed |= is_help and median >= args.target
        program = "dd-bench" if argv[0].endswith("dd-bench") else "python" if argv[0] == sys.executable else argv[0]
        shown = shlex.join([program, *argv[1:]])
        print(f"{shown[:44]:<44} {min(times):7.3f} {median:9.3f} {max(times):7.3f}  {verdict}")
    print(f"{args.runs} runs each after one warm-up; whole-process wall time on {sys.platform}, Python "
          f"{sys.version.split()[0]}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
