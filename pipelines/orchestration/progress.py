"""Progress events for listeners in the flow's process (e.g. the CLI's progress bar).

Counts only, never a value. Events: `discovered` (drops, periods), `drop` (rel_path, status,
rows_read), `linked` (period, records, persons), `published` (period).
"""

from __future__ import annotations

import contextlib
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
