"""The run's helper process: the second core for work that pays for a process.

`helper()` gives one process-wide `ProcessPoolExecutor` with a single worker, created on first
use (`forkserver`: a clean process, not a fork of this one and its threads) and shut down at
exit. Intake hands it half of the distinct addresses to standardize and the partner reports
(Data Docs) to render, so those run beside the main process instead of after it.

There is none (callers do the work themselves) when this process may not have children (a
daemonic Dask worker), when only one core is available, or when `PATHLINK_HELPER_PROCESSES=0`.
Jobs and results are plain values; nothing is logged. A leaf: imports nothing from Pathlink.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection

HELPER_ENV = "PATHLINK_HELPER_PROCESSES"

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_run_alive: Connection | None = None  # the write end only this process holds


def available() -> bool:
    """Whether this process may start a helper (a second core, not a daemonic process)."""
    if os.environ.get(HELPER_ENV, "1").strip() == "0":
        return False
    if multiprocessing.current_process().daemon:
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) > 1


def _exit_with_run(run_alive: Connection) -> None:
    """Worker initializer: leave as soon as the run that started this helper is gone.

    A pool's worker waits on a queue it holds both ends of, and the forkserver waits for every
    process it forked, so neither would notice a killed run (and both would keep the run's
    stdout and stderr open). The run holds the only write end of `run_alive`; when the run
    ends, however it ends, the read here sees end-of-file and the worker exits.
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            run_alive.recv()
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-run", daemon=True).start()


def helper() -> ProcessPoolExecutor | None:
    """The helper process pool (one worker), or None when `available()` says no."""
    global _pool, _pool_pid
    if not available():
        return None
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            global _run_alive
            context = multiprocessing.get_context("forkserver")
            watched, _run_alive = context.Pipe(duplex=False)
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=context,
                                        initializer=_exit_with_run, initargs=(watched,))
            _pool_pid = os.getpid()
        return _pool


def shutdown() -> None:
    """Stop the helper (waiting for its jobs); the next `helper()` starts a new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None and _pool_pid == os.getpid():
        pool.shutdown(wait=True, cancel_futures=False)


atexit.register(shutdown)

__all__ = ["HELPER_ENV", "available", "helper", "shutdown"]
