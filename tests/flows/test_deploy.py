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
