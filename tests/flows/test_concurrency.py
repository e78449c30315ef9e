"""One writer at a time: a second run is refused with a clear message, or waits with --wait."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from _ops import AS_OF, REPO, make_workspace
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.workspace import load_workspace

runner = CliRunner()

HOLD_LOCK = """
import sys, time
from pathlib import Path
from pipelines.state import writer_lock
with writer_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _hold_lock(state_dir: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the workspace's writer lock (as a running `pathlink run` does)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state_dir), str(seconds)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_second_run_is_refused_then_waits(tmp_path: Path, prefect_harness,
                                          ops_drops: Path) -> None:
    root = make_workspace(tmp_path / "w", ops_drops,
                          partners=("workforce_board",))
    ws = load_workspace(root)

    holder = _hold_lock(ws.state_dir, 30)
    try:
        refused = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    finally:
        holder.kill()
        holder.wait()
    assert refused.exit_code == 1
    assert "another pathlink run is active on this workspace" in refused.output
    assert f"pid {holder.pid}" in refused.output
    assert "--wait" in refused.output
    assert not ws.published_db.exists()
    if ws.state_db.exists():  # nothing was written by the refused run
        con = duckdb.connect(str(ws.state_db), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM files").fetchall() == [(0,)]
        finally:
            con.close()

    holder = _hold_lock(ws.state_dir, 2)
    started = time.monotonic()
    try:
        waited = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF,
                                     "--wait", "60", "--timings", str(tmp_path / "t.json")])
    finally:
        holder.wait(timeout=30)
    assert waited.exit_code == 0, waited.output
    assert time.monotonic() - started >= 1.5
    # --timings: seconds per stage, numbers only
    timings = json.loads((tmp_path / "t.json").read_text())
    assert {"startup", "discover", "read", "validate", "normalize", "encode", "store", "link",
            "publish", "command"} <= set(timings)
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert timings["command"] >= timings["link"] + timings["publish"]
    con = duckdb.connect(str(ws.state_db), read_only=True)
    try:
        assert con.execute("SELECT status, count(*) FROM files GROUP BY 1").fetchall() == [
            ("accepted", 2)]
        assert con.execute("SELECT status FROM runs").fetchall() == [("completed",)]
    finally:
        con.close()
