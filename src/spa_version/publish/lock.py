"""One publish at a time per web directory: an advisory lock (``fcntl.flock``, POSIX).

The lock is a file in the web directory's record (`spa_version.publish.record.RECORD_DIR`),
so every run that publishes into the same directory, from any process on the host,
agrees on it. The kernel releases it when its holder exits, even after ``kill -9``:
a killed run never leaves the directory locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["LOCK_NAME", "LockTimeout", "held"]

#: The lock file's name inside the record directory.
LOCK_NAME = "lock"


class LockTimeout(Exception):
    """Another run held the lock for longer than the timeout."""


@contextlib.contextmanager
def held(
    record_dir: Path, *, timeout: float, on_wait: Callable[[], None] | None = None, interval: float = 0.05
) -> Iterator[None]:
    """Hold the exclusive lock of *record_dir* (created if missing) for the ``with`` body.

    If another run holds it, *on_wait* is called once, then the lock is retried every
    *interval* seconds for up to *timeout* seconds; `LockTimeout` after that.
    """
    record_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(record_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another publish into {record_dir.parent} held its lock for {timeout:g} s"
                    ) from None
                time.sleep(interval)
        yield
    finally:
        os.close(fd)  # releases the lock
