"""Progress events for listeners in the flow's process (e.g. the CLI's progress bar).

Counts only, never a value. Events: `discovered` (drops, periods), `drop` (rel_path, status,
rows_read), `linked` (period, records, persons), `published` (period), `stage` (stage, seconds:
how long a stage of the run took; `pathlink run --timings` sums them) and `flow-started` (at: the
`time.perf_counter()` when the monthly flow's body began). Listeners hear events of their own
process only: with the Dask runner the per-partner stages happen in the workers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def emit(event: str, **counts: Any) -> None:
    """Tell progress listeners (in this process) that something happened; never raises."""
    for listener in list(_listeners):
        with contextlib.suppress(Exception):
            listener(event, counts)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Register a progress listener for the duration of a `with` block."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of the run and tell listeners (`stage` event: name and seconds only)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        emit("stage", stage=name, seconds=time.perf_counter() - started)
