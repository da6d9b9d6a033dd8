"""Inter-process locks whose lock files do not outlive their use.

Why this wraps ``filelock`` instead of using ``FileLock`` directly: a ``FileLock`` leaves its lock file on disk
after release (on purpose: every waiter must lock the same inode), so every synthetic set left a
``synsets/.<name>.lock`` beside it and every cache key a ``.locks/<key>.lock``. Deleting the file after release
is the classic race: a waiter that opened the path before the delete goes on to lock the now nameless inode, while
a third process creates a fresh file at the path and locks that one, and both run the critical section at once.
So :func:`removable_lock`

* after acquiring, checks that the path still names the inode it holds (``os.fstat`` of the held descriptor
  against ``os.stat`` of the path) and otherwise releases and retries: a lock on a deleted or replaced file
  protects nothing;
* deletes the file while it still holds the lock, so anyone who then gets that inode fails the check above.

Where the held descriptor cannot be seen (a filelock version without ``_context.lock_file_fd``) or the lock is
filelock's soft lock (the file's existence *is* the lock; used where ``flock`` is missing), the file is left in
place exactly as before: removing it would be unsafe there, and a stale lock file is only clutter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from filelock import FileLock, SoftFileLock


def _held_descriptor(lock: FileLock) -> int | None:
    """The descriptor the held ``lock`` has ``flock``-ed, or None where it cannot be seen or is not a native lock."""
    if isinstance(lock, SoftFileLock):
        return None
    context = getattr(lock, "_context", None)
    if context is None or getattr(context, "soft_fallback", False):  # filelock 4 falls back to soft where flock fails
        return None
    fd = getattr(context, "lock_file_fd", None)
    return fd if isinstance(fd, int) else None


def _names_held_inode(*, lock_file: str, fd: int) -> bool:
    try:
        current = os.stat(lock_file)
    except FileNotFoundError:  # removed by the previous holder after we opened it
        return False
    return os.path.samestat(os.fstat(fd), current)


@contextlib.contextmanager
def removable_lock(lock_file: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``lock_file`` (blocking) for the block, then delete the file."""
    lock_file = os.fspath(lock_file)
    while True:
        lock = FileLock(lock_file)
        lock.acquire()
        try:
            fd = _held_descriptor(lock)
            if fd is None or _names_held_inode(lock_file=lock_file, fd=fd):
                break
        except BaseException:
            lock.release()
            raise
        lock.release()  # we hold an inode the path no longer names: try again on the file that is there now
    try:
        yield
    finally:
        try:
            if fd is not None:
                # Deleted while held: a waiter that opened this inode finds it nameless once it gets the lock, and
                # retries on a new file instead of entering beside whoever holds that one.
                with contextlib.suppress(OSError):  # already gone, or a platform that cannot delete an open file
                    os.unlink(lock_file)
        finally:
            lock.release()
