"""How a run executes: the task runner for per-partner ingest, progress events, crash points.

* `ingest_runner(ws)` picks Prefect's default thread pool or, with `[runner] kind = "dask"` in
  `pathlink.toml`, a `prefect_dask.DaskTaskRunner` (a local cluster of worker processes, or the
  scheduler at `[runner] address`). Dask workers never spill to disk and keep their scratch
  space under the restricted `state/` folder (see docs/operations.md).
* `report(event, **counts)` sends progress (drops, rows, periods) to listeners in the flow's
  process, e.g. the CLI's progress bar. Counts only, never a value.
* `crash_point(name)` kills the process with SIGKILL when `PATHLINK_TEST_KILL_AT` names this
  point; the crash-safety tests use it. Without that variable it does nothing.
* `cleanup_interrupted(ws)` removes what a killed run may leave behind (temporary files) and
  marks its ledger row; it runs under the writer lock at the start of every run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.workspace import Workspace, WorkspaceError

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


# -- progress ------------------------------------------------------------------------------------
Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def report(event: str, **counts: Any) -> None:
    """Tell progress listeners (in this process) that something happened; never raises.

    Events: `discovered` (drops, periods), `drop` (rel_path, status, rows_read), `linked`
    (period, records, persons), `published` (period).
    """
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


# -- task runners --------------------------------------------------------------------------------
# Worker memory settings for every Dask worker Pathlink starts: never spill task data to disk
# (task data may be personal data in memory), never pause on memory pressure.
DASK_NO_SPILL = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
}


def dask_scratch_dir(ws: Workspace) -> Path:
    """Where local Dask workers keep scratch files: under the restricted state folder (0700)."""
    path = ws.state_dir / "dask-scratch"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def ingest_runner(ws: Workspace) -> Iterator[Any]:
    """The Prefect task runner `[runner] kind` selects, for one run's per-partner ingest.

    `default`: a thread pool of one (drops are ingested one after another, as tasks).
    `dask`: a `DaskTaskRunner` on the scheduler at `[runner] address`, or on a local cluster of
    `[runner] workers` processes (one thread each) started here for the whole run and shut down
    after it. Local workers never spill to disk and keep scratch files under `state/`.
    """
    kind = (ws.task_runner or "default").lower()
    if kind in ("default", "thread", "threads"):
        from prefect.task_runners import ThreadPoolTaskRunner

        yield ThreadPoolTaskRunner(max_workers=1)
        return
    if kind != "dask":
        raise WorkspaceError(f"{ws.config_path}: [runner] kind must be 'default' or 'dask', "
                             f"not {kind!r}")
    import dask
    from prefect_dask import DaskTaskRunner

    if ws.dask_address:
        yield DaskTaskRunner(address=ws.dask_address)
        return
    from distributed import LocalCluster

    scratch = dask_scratch_dir(ws)
    with dask.config.set({**DASK_NO_SPILL, "temporary-directory": str(scratch)}), LocalCluster(
        n_workers=max(1, ws.dask_workers),
        threads_per_worker=1,
        processes=True,
        memory_limit=0,  # no memory manager at all: nothing is ever spilled to disk
        local_directory=str(scratch),
        dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:
        yield DaskTaskRunner(address=cluster.scheduler_address)


# -- recovery after a killed run ----------------------------------------------------------------
def stale_temp_files(ws: Workspace) -> list[Path]:
    """Temporary files a killed run can leave: half-written releases and quarantine files."""
    found: list[Path] = []
    published = ws.published_db
    if published.parent.is_dir():
        found += sorted(published.parent.glob(f".{published.name}.*.tmp*"))
    if ws.quarantine_dir.is_dir():
        found += sorted(ws.quarantine_dir.rglob("*.tmp"))
    return found


def cleanup_interrupted(ws: Workspace) -> list[str]:
    """Remove stale temporary files and mark runs left `running` as `interrupted`.

    Call only while holding the writer lock: then no other run can be active.

    Returns:
        The run ids marked interrupted.
    """
    from pipelines.state import StateStore

    for path in stale_temp_files(ws):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with StateStore(ws.state_db) as state:
        return state.mark_interrupted_runs()


# -- command-line views --------------------------------------------------------------------------
class RunProgress:
    """A rich progress display fed by `report()` events: drops ingested, rows read, periods."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                                 console=console, transient=False)
        self.drops = self.progress.add_task("drops", total=None, detail="")
        self.periods = self.progress.add_task("periods", total=None, detail="")
        self.rows = 0

    def __call__(self, event: str, counts: dict[str, Any]) -> None:
        if event == "discovered":
            self.progress.update(self.drops, total=counts.get("drops", 0))
            self.progress.update(self.periods, total=counts.get("periods", 0))
        elif event == "drop":
            self.rows += int(counts.get("rows_read") or 0)
            self.progress.update(self.drops, advance=1,
                                 detail=f"{self.rows:,} rows read; last: {counts['rel_path']} "
                                        f"({counts.get('status')})")
        elif event == "linked":
            self.progress.update(self.periods, detail=f"{counts.get('period')}: "
                                 f"{counts.get('records', 0):,} records -> "
                                 f"{counts.get('persons', 0):,} persons; publishing")
        elif event == "published":
            self.progress.update(self.periods, advance=1,
                                 detail=f"{counts.get('period')} published")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        _listeners.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _listeners.remove(self)
        self.progress.stop()


def status_report(ws: Workspace, *, as_of: Any = None) -> dict[str, Any]:
    """What `pathlink status` shows: the file ledger, pending arrivals, unfinished periods, runs.

    Everything is counts, paths, hashes and versions: never a personal value.
    """
    from datetime import date

    from pipelines.orchestration.flows import discover
    from pipelines.state import StateStore

    found = discover(ws, as_of or date.today())
    fingerprints: dict[str, tuple[str, str]] = {}  # fingerprint -> (key id, role)
    for key_id in ws.key_ids:
        fingerprint = ws.fingerprint_or_none(key_id)  # a key it cannot load is not shown
        if fingerprint is not None:
            fingerprints[fingerprint] = (key_id, "current" if key_id == ws.key_id else "previous")
    current_fp = next((fp for fp, (_, role) in fingerprints.items() if role == "current"),
                      None)
    with StateStore(ws.state_db) as state:
        files = state.status()
        runs = state.runs()
        unfinished = state.unfinished_periods()
        # without the current key's fingerprint (e.g. a passphrase not set) roles are unknown
        per_key = state.records_per_key(current_fp) if current_fp else None

    def records(frame: Any) -> list[dict[str, Any]]:
        out = []
        for row in frame.to_dict(orient="records"):
            out.append({k: (None if v is None or v != v else
                            v.isoformat(sep=" ", timespec="seconds") if hasattr(v, "isoformat")
                            else v.item() if hasattr(v, "item") else v)
                        for k, v in row.items()})
        return out

    return {
        "workspace": str(ws.root),
        "files": records(files),
        "pending": [{"file": d.rel_path, "partner_id": d.partner_id, "period": d.period,
                     "dataset": d.dataset} for d in found.pending],
        "refused": found.refused,
        "unpublished_periods": unfinished,
        "runs": records(runs),
        "keys": {
            "current": ws.key_id,
            "previous": list(ws.previous_key_ids),
            # records per key: linked under the current key, or (after a rotation) known
            # only under an earlier key: they keep their persons but are not linked
            "records": [{"key_fingerprint": fp,
                         "key_id": fingerprints.get(fp, (None, None))[0],
                         "role": fingerprints.get(fp, (None, "retired"))[1],
                         "records": int(n), "linked": fp == current_fp}
                        for fp, n in ([] if per_key is None else zip(
                            per_key["key_fingerprint"], per_key["records"], strict=True))],
        },
    }
