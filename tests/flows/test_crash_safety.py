"""A run killed (SIGKILL) at any stage can be started again and ends with the same release.

One workspace is killed at successive stages, each `pathlink run` resuming what the previous
killed one left (so recovery from a recovery is tested too); the last run completes. Its release
must equal an uninterrupted run's, person IDs aside (see `_ops.canonical_release`), with
no duplicate or lost row in the restricted state. Each killed run is its own process, forked
from one that imported everything once (`_ops.PreimportedCli`).
"""

from __future__ import annotations

import signal
from pathlib import Path

import duckdb
from _ops import (
    AS_OF,
    PreimportedCli,
    canonical_release,
    grouping,
    make_workspace,
    pathlink,
    prefect_env,
    state_invariants,
)

from pipelines.faults import crash_point
from pipelines.orchestration.flows import run_workspace
from pipelines.workspace import load_workspace

# Each entry kills one `pathlink run`; together they walk through both periods.
KILL_SEQUENCE = [
    "store-drop:end",             # the first drop's records and ledger row are committed
    "state:crosswalk-replaced",   # inside the crosswalk transaction, before its commit
    "period:linked",              # crosswalk committed, nothing published for the period
    "publish:start",              # period marked, release not yet written
    "publish:replaced",           # release swapped in, period not yet marked published
    "period:ingested#2",          # 2026-09 done; every 2026-10 drop stored, not linked
    "link:end",                   # 2026-10 linked and committed, not published
]
STATE_DAMAGE = ("duplicate_record_versions", "two_accepted_files", "duplicate_snapshot_rows")


def test_crash_point_is_inert_unless_named(monkeypatch) -> None:
    monkeypatch.delenv("PATHLINK_TEST_KILL_AT", raising=False)
    crash_point("publish:replaced")
    monkeypatch.setenv("PATHLINK_TEST_KILL_AT", "link:end#3")
    crash_point("link:end")  # first of three: survives
    crash_point("publish:replaced")


def test_killed_runs_resume_to_the_uninterrupted_release(tmp_path: Path, prefect_harness,
                                                         ops_drops, uninterrupted) -> None:
    root = make_workspace(tmp_path / "killed", ops_drops)
    ws = load_workspace(root)
    cli = PreimportedCli(prefect_env(), tmp_path)  # each run its own process, imports shared
    try:
        for stage in KILL_SEQUENCE:
            done = cli.run("run", "--workspace", str(root), "--as-of", AS_OF,
                           env=prefect_env(PATHLINK_TEST_KILL_AT=stage))
            assert done.returncode == -signal.SIGKILL, (stage, done.stderr[-3000:])
            damage = state_invariants(root)
            assert all(damage[k] == 0 for k in STATE_DAMAGE), (stage, damage)
            if ws.published_db.exists():  # evaluators only ever see a complete release
                con = duckdb.connect(str(ws.published_db), read_only=True)
                try:
                    assert con.execute(
                        "SELECT count(*) FROM released_release").fetchall() == [(1,)], stage
                finally:
                    con.close()
    finally:
        cli.close()
    # A temporary release a run killed inside publish() would leave behind.
    stale = ws.published_db.with_name(f".{ws.published_db.name}.run-killed.tmp")
    stale.write_bytes(b"partial")

    summary = run_workspace(root, as_of=AS_OF, seed=5)

    assert not stale.exists()
    assert [p["period"] for p in summary["periods"]] == ["2026-10"]  # only what was unfinished
    assert state_invariants(root) == {k: 0 for k in state_invariants(uninterrupted["root"])}
    assert grouping(ws.state_db) == uninterrupted["grouping"]
    assert canonical_release(root) == uninterrupted["release"]
    con = duckdb.connect(str(ws.state_db), read_only=True)
    try:
        statuses = dict(con.execute(
            "SELECT status, count(*) FROM runs GROUP BY 1").fetchall())
    finally:
        con.close()
    assert statuses == {"interrupted": len(KILL_SEQUENCE), "completed": 1}
    # A further run finds nothing to do and changes nothing.
    again = run_workspace(root, as_of=AS_OF, seed=6)
    assert again["periods"] == []
    assert canonical_release(root) == uninterrupted["release"]


def test_console_run_ends_without_teardown_and_loses_nothing(
        tmp_path: Path, prefect_harness, ops_drops: Path, uninterrupted: dict) -> None:
    """The `pathlink` console script ends without Python's module teardown
    (`pipelines.cli._exit`): a real `pathlink run` subprocess leaves the uninterrupted run's
    release, its summary printed, and no DuckDB write-ahead log beside any database (a
    connection left open would leave one: a copied release file would miss its last writes)."""
    root = make_workspace(tmp_path / "console", ops_drops)
    done = pathlink("run", "--workspace", str(root), "--as-of", AS_OF, "--no-progress",
                    env=prefect_env())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # its summary (on standard error) printed, and flushed before the process ended
    assert "2026-10: " in done.stderr
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wal")) == []
    assert grouping(load_workspace(root).state_db) == uninterrupted["grouping"]
    assert canonical_release(root) == uninterrupted["release"]
