"""`[runner] kind = "dask"`: per-partner ingest on a local Dask cluster gives the same release."""

from __future__ import annotations

from pathlib import Path

import pytest
from _ops import (
    AS_OF,
    canonical_release,
    grouping,
    make_workspace,
)

from pipelines.orchestration.flows import run_workspace
from pipelines.orchestration.runners import DASK_NO_SPILL, ingest_runner
from pipelines.workspace import load_workspace

pytest.importorskip("prefect_dask")
pytest.importorskip("distributed")


def test_dask_runner_gives_the_same_release_as_the_default(
        tmp_path: Path, prefect_harness, ops_drops, uninterrupted) -> None:
    root = make_workspace(tmp_path / "dask", ops_drops,
                          runner={"kind": "dask", "workers": 2})
    summary = run_workspace(root, as_of=AS_OF, seed=3)

    drops = [d for p in summary["periods"] for d in p["drops"]]
    assert len(drops) == 6 and {d["status"] for d in drops} == {"accepted"}
    assert grouping(load_workspace(root).state_db) == uninterrupted["grouping"]
    assert canonical_release(root) == uninterrupted["release"]
    scratch = load_workspace(root).state_dir / "dask-scratch"
    assert scratch.is_dir() and scratch.stat().st_mode & 0o077 == 0


def _worker_settings(dask_worker) -> dict:
    import dask

    return {"memory_limit": dask_worker.memory_manager.memory_limit,
            "spill": dask.config.get("distributed.worker.memory.spill"),
            "target": dask.config.get("distributed.worker.memory.target"),
            "local_directory": dask_worker.local_directory}


def test_local_dask_workers_never_spill(tmp_path: Path, ops_drops) -> None:
    """The local cluster's workers have no memory manager and keep scratch under state/."""
    root = make_workspace(tmp_path / "dask-config", ops_drops,
                          runner={"kind": "dask", "workers": 1})
    ws = load_workspace(root)
    with ingest_runner(ws) as runner:
        from distributed import Client

        with Client(runner.address, timeout=30) as client:
            found = list(client.run(_worker_settings).values())
    assert found and all(s["memory_limit"] is None for s in found), found
    assert all(s["spill"] is False and s["target"] is False for s in found), found
    assert all(Path(s["local_directory"]).is_relative_to(ws.state_dir) for s in found), found
    assert set(DASK_NO_SPILL) >= {"distributed.worker.memory.spill"}
