"""How the `pathlink` console script ends: as Python's own exit, minus tearing down modules.

Python's exit joins the non-daemon threads, runs the `atexit` handlers (Prefect's last logs
and events, the helper process's and the temporary server's shutdown) and then takes every
module and object apart one by one: after a run, which has imported Prefect, pandas, numba
and DuckDB, that last step alone took 1.0-1.3 s (measured here), every command, for nothing
that outlives the process. So the first `atexit` handler registered (the last to run) ends
the process at once, once the command has armed it with its exit code, after flushing
the logging handlers (`logging.shutdown`, in case `logging` registered its own handler
earlier) and standard output and error. Whatever a command writes is closed by then (files
in `with` blocks, DuckDB connections closed explicitly; a test checks that a run leaves no
write-ahead log behind).

Only the console script arms it (`main`); `run_cli` called in-process never does.
`PATHLINK_FULL_EXIT=1` keeps Python's full exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

FULL_EXIT_ENV = "PATHLINK_FULL_EXIT"

_code: list[int] = []


def arm(code: int) -> None:
    """Let the process end without the teardown, with this exit code."""
    _code[:] = [code]


def _exit_without_teardown() -> None:
    if not _code or os.environ.get(FULL_EXIT_ENV, "").strip() not in ("", "0"):
        return
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(_code[0])


atexit.register(_exit_without_teardown)
