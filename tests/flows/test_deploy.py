"""Deployments: `prefect deploy --all` registers the monthly schedule; `pathlink serve` starts.

Both run as subprocesses against this session's Prefect test server (no server of their own).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _ops import REPO, prefect_env

from pipelines.workspace import init_workspace

DEPLOYMENT = "pathlink-monthly/monthly"


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _deployment(name: str):
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            return client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None


def _cron(deployment) -> tuple[str, str]:
    schedule = deployment.schedules[0].schedule
    return schedule.cron, schedule.timezone


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deploy") / "hartford"
    init_workspace(root, ["workforce_board"], key_id="deploy-key")
    return root


def test_prefect_deploy_all_registers_the_monthly_schedule(prefect_harness,
                                                           workspace: Path) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate

    with _client() as client:
        client.create_work_pool(WorkPoolCreate(name="pathlink-process", type="process"),
                                overwrite=True)
    env = prefect_env(PATHLINK_CODE_DIR=str(REPO), PATHLINK_WORKSPACE=str(workspace))
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    deployment = _deployment(DEPLOYMENT)
    assert deployment is not None
    assert _cron(deployment) == ("0 6 5 * *", "America/New_York")
    assert deployment.schedules[0].active
    assert deployment.work_pool_name == "pathlink-process"
    assert deployment.parameters == {"workspace": str(workspace)}
    limit = deployment.global_concurrency_limit
    assert deployment.concurrency_limit == 1 or (limit is not None and limit.limit == 1)
    assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
        "directory": str(REPO)}}]


def test_pathlink_serve_registers_and_stops(prefect_harness, workspace: Path) -> None:
    name = "serve-test"
    env = prefect_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--workspace", str(workspace),
         "--name", name],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        deployment = None
        while deployment is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(1)
            deployment = _deployment(f"pathlink-monthly/{name}")
        assert deployment is not None, "pathlink serve did not register its deployment"
        assert _cron(deployment) == ("0 6 5 * *", "America/New_York")
        assert deployment.parameters == {"workspace": str(workspace)}
        limit = deployment.global_concurrency_limit
        assert deployment.concurrency_limit == 1 or (limit is not None and limit.limit == 1)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _post(url: str, body: dict) -> list[dict]:
    import json
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read())


def test_serve_on_a_fresh_machine_starts_its_own_server_and_the_schedule_fires(
        tmp_path: Path) -> None:
    """No PREFECT_API_URL, no profile: `pathlink serve` starts a local Prefect server whose
    database lives in the workspace, says it is serving only once the deployment is
    registered, and a 5-second interval schedule brings a flow run to COMPLETED."""
    import re

    import tomli_w

    from pipelines.state import StateStore
    from pipelines.workspace import load_workspace

    root = tmp_path / "fresh"
    init_workspace(root, ["workforce_board"], key_id="serve-key")
    raw = load_workspace(root).raw
    raw["schedule"] = {"interval": 5}
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # a fresh machine: no profile
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "1"  # the runner looks for due runs every 1 s, not 10
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--workspace", str(root)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the first line says where it serves, once it can
            lines.append(line)
            if line.startswith("serving"):
                break
        announced = "".join(lines)
        assert announced.startswith("serving pathlink-monthly/monthly"), announced[-3000:]
        url = re.search(r" on (http://127\.0\.0\.1:\d+/api)", announced).group(1)
        assert str(root / "state" / "prefect" / "prefect.db") in announced
        deadline = time.monotonic() + 300
        completed: list[dict] = []
        while not completed and time.monotonic() < deadline:
            assert proc.poll() is None, "pathlink serve stopped"
            time.sleep(1)
            completed = _post(f"{url}/flow_runs/filter", {"flow_runs": {
                "state": {"type": {"any_": ["COMPLETED"]}}}})
        assert completed, "no scheduled flow run completed within 300 s"
        assert completed[0]["parameters"] == {"workspace": str(root)}
        assert completed[0]["deployment_id"] is not None  # started by the schedule
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 0
    with StateStore(root / "state" / "state.duckdb") as state:
        statuses = [r[0] for r in state.con.execute("SELECT status FROM runs").fetchall()]
    assert "completed" in statuses  # the scheduled run wrote its ledger entry
    database = root / "state" / "prefect" / "prefect.db"
    assert database.is_file() and (database.stat().st_mode & 0o077) == 0
    _run_on_a_temporary_server(root, env, database)


def _temporary_servers(database: Path) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if ("prefect.server.api.server:create_app" in " ".join(proc.info["cmdline"] or ())
                    and str(database) in proc.environ().get(
                        "PREFECT_SERVER_DATABASE_CONNECTION_URL", "")):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _run_on_a_temporary_server(root: Path, env: dict[str, str], database: Path) -> None:
    """No server configured: `pathlink run` starts Prefect's temporary server itself (without
    importing Prefect's server first), its flow run is recorded there, and the server is gone
    when the command is (over the database serve left, already migrated)."""
    import sqlite3

    def completed_runs() -> int:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'"
                              ).fetchone()[0]

    before = completed_runs()
    run_env = {**env, "PREFECT_SERVER_DATABASE_CONNECTION_URL":
               f"sqlite+aiosqlite:///{database}"}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--workspace",
                           str(root), "--no-progress"], cwd=REPO, env=run_env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert completed_runs() == before + 1
    assert _temporary_servers(database) == []


def test_serve_refuses_in_one_line_when_nothing_could_run(tmp_path: Path,
                                                         workspace: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    for extra, args in (({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, []),
                        ({}, ["--no-start-server"])):
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "serve", "--workspace", str(workspace),
             *args], cwd=REPO, env={**env, **extra}, capture_output=True, text=True,
            timeout=120, check=False)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "serving" not in done.stdout
        out = (done.stdout + done.stderr).strip()
        assert len(out.splitlines()) == 1 and out.startswith("error:"), out
        assert "Prefect server" in out
