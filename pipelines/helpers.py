"""The run's helper process: the second core for work that pays for a process.

`helper()` gives one process-wide `ProcessPoolExecutor` with a single worker, created on first
use (`forkserver`: a clean process, not a fork of this one and its threads) and shut down at
exit. Unlike a plain forkserver child it never re-imports the caller's `__main__` (a script
without a main guard would run again inside it): its jobs are functions of importable modules.
Intake hands it half of the distinct addresses to standardize and the partner reports (Data
Docs) to render, so those run beside the main process instead of after it.

There is none (callers do the work themselves) when this process may not have children (a
daemonic Dask worker), when only one core is available, or when `PATHLINK_HELPER_PROCESSES=0`.
Jobs and results are plain values; nothing is logged. A leaf: imports nothing from Pathlink.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess, set_spawning_popen

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


class _NoMainPopen(popen_forkserver.Popen):
    """The forkserver start, minus the instruction to re-import the caller's `__main__`.

    `multiprocessing` tells each child to import the parent's main script (as `__mp_main__`)
    so that functions defined there unpickle; a script without a main guard then runs again in
    the child. The helper's jobs live in importable modules, so the child is not told to.
    (Python 3.11's `popen_forkserver.Popen._launch`, with that one change.)
    """

    def _launch(self, process_obj):  # type: ignore[no-untyped-def]
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _NoMainProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):  # type: ignore[no-untyped-def]
        return _NoMainPopen(process_obj)


class _NoMainContext(ForkServerContext):
    Process = _NoMainProcess


def helper() -> ProcessPoolExecutor | None:
    """The helper process pool (one worker), or None when `available()` says no."""
    global _pool, _pool_pid
    if not available():
        return None
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            global _run_alive
            context = _NoMainContext()
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
