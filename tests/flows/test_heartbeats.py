"""Flow runs Pathlink starts send no Prefect heartbeat unless one is asked for.

Prefect ends every flow run by waiting for its heartbeat thread, which sleeps in 1 s steps
(`pipelines.orchestration.flows.heartbeats_as_configured` says why they are off).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from _ops import AS_OF, make_workspace
from prefect import flow_engine

from pipelines.orchestration.flows import run_workspace


def _record_heartbeats(monkeypatch) -> list[tuple[str, int | None]]:
    """(flow name, heartbeat interval) of every flow run started from now on."""
    seen: list[tuple[str, int | None]] = []
    send = flow_engine._send_heartbeats

    @contextlib.contextmanager
    def recording(engine, join_on_exit: bool = True):
        seen.append((engine.flow.name, engine.heartbeat_seconds))
        with send(engine, join_on_exit=join_on_exit):
            yield

    monkeypatch.setattr(flow_engine, "_send_heartbeats", recording)
    return seen


def test_no_heartbeat_unless_the_setting_asks_for_one(tmp_path: Path, prefect_harness,
                                                      ops_drops: Path, monkeypatch) -> None:
    root = make_workspace(tmp_path / "w", ops_drops, partners=("workforce_board",))
    seen = _record_heartbeats(monkeypatch)
    for name in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"):
        monkeypatch.delenv(name, raising=False)

    summary = run_workspace(root, as_of=AS_OF, seed=1)

    assert [p["period"] for p in summary["periods"]] == ["2026-09", "2026-10"]
    assert seen == [("pathlink-monthly", None), ("process-period", None),
                    ("process-period", None)]

    seen.clear()
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")  # asked for: Prefect's own
    assert run_workspace(root, as_of=AS_OF, seed=1)["periods"] == []  # nothing left to do
    assert [name for name, _ in seen] == ["pathlink-monthly"]
    assert seen[0][1] is not None
