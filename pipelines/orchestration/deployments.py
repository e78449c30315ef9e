"""Deployment helpers: serve the monthly flow on its schedule without a separate worker.

A schedule needs a Prefect server that keeps running: Prefect's ephemeral (in-process)
server cannot schedule flows. `pathlink serve` therefore uses the server `PREFECT_API_URL`
names (it must answer), or starts one of its own on 127.0.0.1 whose database lives in the
workspace (`state/prefect/prefect.db`), and stops it when serving ends. It never says it is
serving before a server answers and the deployment is registered.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipelines.orchestration.flows import monthly_flow
from pipelines.orchestration.server import SERVER_START_SETTINGS, api_answers, free_port
from pipelines.workspace import Workspace, WorkspaceError, load_workspace
from pipelines.workspace.modes import PRIVATE_DIR, private_umask

DEFAULT_CRON = "0 6 5 * *"  # the 5th of each month, 06:00
DEFAULT_TIMEZONE = "America/New_York"
SERVER_START_SECONDS = 120.0


class ServeError(WorkspaceError):
    """Nothing could run the schedule (no Prefect server answers); one line, no data."""


def schedule_for(workspace: Path) -> Any:
    """The workspace's schedule: `[schedule] cron` and `timezone` (default: the 5th, 06:00
    America/New_York), or `[schedule] interval` in seconds (e.g. for a test)."""
    from prefect.schedules import Cron, Interval

    ws = load_workspace(workspace)
    raw = ws.raw.get("schedule", {})
    if "interval" in raw:
        seconds = raw["interval"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise WorkspaceError(f"{ws.config_path}: [schedule] interval must be a positive "
                                 "number of seconds")
        return Interval(timedelta(seconds=seconds),
                        timezone=raw.get("timezone", DEFAULT_TIMEZONE))
    return Cron(raw.get("cron", DEFAULT_CRON), timezone=raw.get("timezone", DEFAULT_TIMEZONE))


def configured_api_url() -> str | None:
    """`PREFECT_API_URL` from the environment or the active Prefect profile, if any."""
    from prefect.settings import PREFECT_API_URL

    return os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value() or None


def server_home(ws: Workspace) -> Path:
    """Where `pathlink serve`'s own Prefect server keeps its database and log."""
    return ws.state_dir / "prefect"


@contextlib.contextmanager
def local_server(ws: Workspace, *, timeout: float = SERVER_START_SECONDS) -> Iterator[str]:
    """Start a Prefect server on 127.0.0.1 with its database in the workspace; yield its API
    URL once it answers, and stop it afterwards.

    Raises:
        ServeError: it exited or did not answer within `timeout` seconds.
    """
    home = server_home(ws)
    with private_umask():
        home.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        log = (home / "server.log").open("ab")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**SERVER_START_SETTINGS,
           **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        # a monthly schedule needs few runs ahead; every one inserted is a SQLite write
        "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "3",
        # a busy machine: wait for SQLite's lock rather than fail a state change
        "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
    })
    with private_umask():  # the database and its journal: the analyst's only
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=home)
    log.close()
    try:
        deadline = time.monotonic() + timeout
        while not api_answers(url, timeout=2.0):
            if proc.poll() is not None:
                raise ServeError(f"the local Prefect server stopped at start (exit status "
                                 f"{proc.returncode}; see {home / 'server.log'}); nothing is "
                                 "served")
            if time.monotonic() > deadline:
                raise ServeError(f"the local Prefect server did not answer within "
                                 f"{timeout:.0f} s (see {home / 'server.log'}); nothing is "
                                 "served")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def serve(workspace: Path, *, name: str = "monthly", start_server: bool = True,
          announce: Any = print) -> None:
    """Serve `pathlink-monthly` for one workspace on its schedule (blocks until stopped).

    Uses the Prefect server `PREFECT_API_URL` or `[runner] prefect_api_url` names, which must
    answer; with none, starts a local one whose database lives in the workspace (unless
    `start_server` is False, when it refuses). `announce` hears one line once the schedule
    can really run.

    Raises:
        ServeError: no server to schedule on (one line saying how to get one).
    """
    import signal

    ws = load_workspace(workspace)
    schedule = schedule_for(ws.root)  # a bad schedule is refused before any server starts

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # unwinds: the runner stops, then the local server

    with contextlib.suppress(ValueError):  # not the main thread (a test): no handler
        signal.signal(signal.SIGTERM, stop)
    configured = configured_api_url() or ws.prefect_api_url  # as `start_api` takes them
    if configured:
        if not api_answers(configured):
            raise ServeError(
                f"the Prefect server at {configured} (PREFECT_API_URL or [runner] "
                "prefect_api_url) does not answer, so no scheduled run could start; start it "
                "(`prefect server start`), or unset it to let `pathlink serve` start one whose "
                f"database lives in {server_home(ws)}")
        _serve(ws, name, schedule, configured, announce)
        return
    if not start_server:
        raise ServeError(
            "no Prefect server to schedule on: Prefect's ephemeral server cannot run "
            "schedules. Set PREFECT_API_URL to a running server (`prefect server start`), or "
            f"drop --no-start-server to start one whose database lives in {server_home(ws)}")
    with local_server(ws) as url:
        os.environ["PREFECT_API_URL"] = url  # for the flow-run processes the runner starts
        try:
            _serve(ws, name, schedule, url, announce,
                   note=f"local Prefect server {url} (database {server_home(ws)}/prefect.db)")
        finally:
            os.environ.pop("PREFECT_API_URL", None)


def _serve(ws: Workspace, name: str, schedule: Any, url: str, announce: Any,
           note: str | None = None) -> None:
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.types.entrypoint import EntrypointType

    with temporary_settings(updates={PREFECT_API_URL: url}):
        runner = Runner(name=f"pathlink-{name}")
        # Added as a deployment, not a flow: each scheduled run then starts as a fresh
        # `python -m prefect.engine` that imports the flow by its module path (from any working
        # directory), as a worker would; the in-memory flow is never pickled (it refers to
        # locks and threads of this process, and pickling it failed: "cannot pickle
        # '_thread.lock' object").
        runner.add_deployment(monthly_flow.to_deployment(
            name=name,
            schedules=[schedule],
            parameters={"workspace": str(ws.root)},
            tags=["pathlink"],
            concurrency_limit=1,
            description="Process every unprocessed period in landing/, then publish.",
            entrypoint_type=EntrypointType.MODULE_PATH,
        ))
        # only now: a server answers and the deployment with its schedule is registered
        announce(f"serving pathlink-monthly/{name} for {ws.root} on {url}"
                 + (f"; {note}" if note else "") + "; stop with Ctrl-C")
        with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
            asyncio.run(runner.start())


__all__ = ["ServeError", "local_server", "schedule_for", "serve"]
