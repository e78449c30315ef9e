"""The workspace's single-writer lock: one Pathlink run at a time writes a workspace."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from pipelines.state.store import now_utc


class StateLocked(Exception):
    """Another Pathlink run holds the workspace's writer lock."""


@contextlib.contextmanager
def writer_lock(state_dir: Path, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the workspace's single-writer lock, waiting up to `wait_seconds` for it.

    Raises:
        StateLocked: when another process holds the lock after the wait.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / "writer.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise StateLocked(
                        "another pathlink run is active on this workspace"
                        + (f" ({holder})" if holder else "")
                        + "; wait for it to finish or pass --wait SECONDS"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {now_utc():%Y-%m-%d %H:%M:%S} UTC".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
