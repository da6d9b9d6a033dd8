"""Inter-process locks leave no lock file behind and still serialise contending threads and processes, including a
waiter that was already waiting on the file its holder deletes (dd_bench.io.locking)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from filelock import FileLock

from dd_bench.io import KeyedStore
from dd_bench.io.locking import removable_lock
from dd_bench.io.store import path_lock

fcntl = pytest.importorskip("fcntl")  # the lock files removal is for flock-based locks (POSIX)

LOCKING = Path(__file__).resolve().parent.parent / "dd_bench" / "io" / "locking.py"

# Each worker enters the lock `rounds` times; inside, it creates a marker with O_EXCL (which fails while another
# holder is inside), counts, and leaves. Loaded straight from its file: no torch import per process.
WORKER = """
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("locking", sys.argv[1])
locking = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locking)
lock_file, marker, counter, rounds = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
for _ in range(rounds):
    with locking.removable_lock(lock_file):
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # FileExistsError: two holders at once
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(0.002)
        os.unlink(marker)
"""


def test_no_lock_file_outlives_its_lock(tmp_path):
    with path_lock(tmp_path / "synsets" / "dm-digits-ipc1"):
        assert (tmp_path / "synsets" / ".dm-digits-ipc1.lock").is_file()
    store = KeyedStore("experts", tmp_path / "cache")
    with store.lock("k" * 24):
        assert list(store.root.glob(".locks/*.lock"))
    assert not list(tmp_path.rglob("*.lock"))


def test_an_exception_inside_still_releases_and_removes(tmp_path):
    with pytest.raises(RuntimeError), removable_lock(tmp_path / "a.lock"):
        raise RuntimeError("boom")
    assert not (tmp_path / "a.lock").exists()
    with removable_lock(tmp_path / "a.lock"):  # not left held
        pass


def test_contending_threads_serialise(tmp_path):
    lock_file, inside, entries, overlaps = tmp_path / "t.lock", [], [], []

    def work():
        for _ in range(15):
            with removable_lock(lock_file):
                if inside:
                    overlaps.append(1)
                inside.append(1)
                entries.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(entries) == 60 and not overlaps and not lock_file.exists()


def test_contending_processes_serialise(tmp_path):
    lock_file, marker, counter = tmp_path / "p.lock", tmp_path / "inside", tmp_path / "count"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(LOCKING), str(lock_file), str(marker), str(counter),
                               "40"], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert counter.read_text() == "x" * 120 and not lock_file.exists() and not marker.exists()


class NaiveFlockLock:
    """filelock 3's UnixFileLock in miniature (setup.cfg does not pin filelock 4, which checks for a deleted file
    itself): open or create the file, flock it, and take it as the lock without asking whether it still has a name."""

    def __init__(self, lock_file: str) -> None:
        self.lock_file = lock_file
        self._context = types.SimpleNamespace(lock_file_fd=None)

    def acquire(self) -> None:
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._context.lock_file_fd = fd

    def release(self) -> None:
        fd, self._context.lock_file_fd = self._context.lock_file_fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@pytest.mark.parametrize("backend", ["filelock", "naive flock"])
def test_a_waiter_on_a_deleted_lock_file_retries_on_the_current_one(tmp_path, monkeypatch, backend):
    """The race the removal must handle: a waiter opened the lock file before its holder deleted it, and a third
    process has made a new file at the path since. The waiter must not count the old, nameless file as the lock."""
    if backend == "naive flock":
        monkeypatch.setattr("dd_bench.io.locking.FileLock", NaiveFlockLock)
    lock_file = tmp_path / "r.lock"
    holder = FileLock(str(lock_file))
    holder.acquire()
    entered, probed, held_current = threading.Event(), threading.Event(), []

    def waiter():
        with removable_lock(lock_file):
            entered.set()
            probed.wait(timeout=30)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)  # the waiter has opened r.lock and blocks on it
    os.unlink(lock_file)
    lock_file.touch()  # the third process's new file
    holder.release()
    assert entered.wait(timeout=30)
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_current.append(True)  # the waiter holds the file the path names now: others wait on it
    finally:
        os.close(fd)
        probed.set()
        thread.join()
    assert held_current and not lock_file.exists()
