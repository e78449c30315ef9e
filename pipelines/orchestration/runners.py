"""The task runner for per-partner ingest: Prefect's thread pool, or Dask.

`ingest_runner(ws)` picks Prefect's default thread pool or, with `[runner] kind = "dask"` in
`pathlink.toml`, a `prefect_dask.DaskTaskRunner` (a local cluster of worker processes, or the
scheduler at `[runner] address`). Dask workers never spill to disk and keep their scratch
space under the restricted `state/` folder (see docs/operations.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.workspace import Workspace, WorkspaceError

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
    if ws.ingests_in_process:
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
