"""Named crash points for the crash-safety tests (a leaf: imports nothing from Pathlink).

`crash_point(name)` kills the process with SIGKILL when `PATHLINK_TEST_KILL_AT` names this
point; the crash-safety tests use it. Without that variable it does nothing. Every point is
named where it stands: `store-drop:start|end`, `state:before-commit`,
`state:crosswalk-replaced`, `link:start|end`, `period:ingested|linked|published`,
`publish:start|before-replace|replaced`.
"""

from __future__ import annotations

import os
import signal
import threading

KILL_ENV = "PATHLINK_TEST_KILL_AT"

_hits: dict[str, int] = {}
_hits_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Die here (SIGKILL, no cleanup) when `PATHLINK_TEST_KILL_AT` names this point.

    The variable holds `name` (first time the point is reached) or `name#N` (N-th time in this
    process). Harmless in production: the variable is never set.
    """
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition("#")
    if target != name:
        return
    with _hits_lock:
        _hits[name] = _hits.get(name, 0) + 1
        count = _hits[name]
    if count >= (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)
