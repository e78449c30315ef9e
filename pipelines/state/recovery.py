"""Recovery after a killed run: what it may leave behind, cleaned up under the writer lock."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pipelines.state.store import StateStore
from pipelines.workspace import Workspace


def stale_temp_files(ws: Workspace) -> list[Path]:
    """Temporary files a killed run can leave: half-written releases (the published file and
    the analyst warehouse) and quarantine files."""
    found: list[Path] = []
    for release_file in (ws.published_db, ws.warehouse_db):
        if release_file.parent.is_dir():
            found += sorted(release_file.parent.glob(f".{release_file.name}.*.tmp*"))
    if ws.quarantine_dir.is_dir():
        found += sorted(ws.quarantine_dir.rglob("*.tmp"))
    return found


def cleanup_interrupted(ws: Workspace) -> list[str]:
    """Remove stale temporary files and mark runs left `running` as `interrupted`.

    Call only while holding the writer lock: then no other run can be active.

    Returns:
        The run ids marked interrupted.
    """
    for path in stale_temp_files(ws):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with StateStore(ws.state_db) as state:
        return state.mark_interrupted_runs()
