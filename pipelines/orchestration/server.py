"""The Prefect API a command's flows talk to: started once per command, early, or reused.

Prefect 3 runs every flow against an API. With none configured it starts a temporary server
(a uvicorn subprocess over the local Prefect database) the first time a flow needs it, which
takes seconds: Prefect's `SubprocessASGIServer` first imports the whole server application
into the calling process (about 3 s of CPU, only to find the class) and only then starts the
subprocess, which imports it all again. `start_api` starts that same subprocess itself, as the
command's first act and without importing Prefect, so the server comes up on the second core
while the first imports Pathlink and Prefect. The command then runs its flows inside
`PrefectAPI.active()`, which waits for the server's health check and points Prefect at it; the
address is also put in `PREFECT_API_URL`, so processes the run starts later (local Dask
workers) use this server instead of starting their own. It stops when the command exits.

A persistent server is reused instead when one is configured: `PREFECT_API_URL` in the
environment or in Prefect's settings (a profile, a test harness), or `[runner]
prefect_api_url` in `pathlink.toml`. When the settings name a server only Prefect can see (a
profile), the subprocess started on speculation is stopped again.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

API_URL_ENV = "PREFECT_API_URL"

# Settings for every Prefect server a Pathlink command starts. At start a Prefect server
# imports every installed Prefect collection (prefect-dask imports Dask) to register their
# block types, about 0.8 s of the temporary server's 4-5 s to answer. Pathlink's only block is
# the key's `Secret`, which Prefect registers itself when the block is saved, and a block that
# can be loaded was saved, so the start-up registration is skipped (a user's environment wins).
SERVER_START_SETTINGS = {
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",  # else it imports them anyway
}
PORT_IN_USE = 3  # uvicorn's exit code when the port was taken after all


def free_port() -> int:
    """A local TCP port free right now (the operating system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_answers(api_url: str, timeout: float = 5.0) -> bool:
    """Whether a Prefect API answers its health check (never through a proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(api_url.rstrip("/") + "/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def _site_packages() -> str:
    """The folder holding the `prefect` package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Prefect is not installed in this environment")
    return str(Path(next(iter(spec.submodule_search_locations))).parent)


class TemporaryServer:
    """Prefect's temporary API server as a subprocess: the command Prefect's
    `SubprocessASGIServer._run_uvicorn_command` runs (3.8), started without importing Prefect."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._spawn()
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _spawn(self) -> None:
        env = {**SERVER_START_SETTINGS, **os.environ, "PREFECT_UI_ENABLED": "0",
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop(API_URL_ENV, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", _site_packages(), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout: float) -> None:
        """Poll `/api/health` until it answers 200 (a taken port: start again elsewhere)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code == PORT_IN_USE:
                self.port = free_port()
                self._spawn()
                continue
            if code is not None:
                raise RuntimeError(f"the temporary Prefect server exited with code {code} "
                                   "before it answered")
            if api_answers(self.api_url, timeout=2.0):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the temporary Prefect server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PrefectAPI:
    """A Prefect API being made ready for this command (see `start_api`)."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.started_here = False
        self._server: TemporaryServer | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _make_ready(self) -> None:
        """Thread body: keep the speculative server only if Prefect's settings name none,
        then wait for it to answer."""
        try:
            from prefect.settings import (
                PREFECT_API_URL,
                PREFECT_SERVER_EPHEMERAL_ENABLED,
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
            )

            configured = PREFECT_API_URL.value()
            assert self._server is not None
            if configured or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
                self._server.stop()  # a profile names a server (or forbids ours): Prefect's
                self._server = None
                self.url = configured or None
                return
            self._server.wait_healthy(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
            self.url, self.started_here = self._server.api_url, True
            os.environ[API_URL_ENV] = self.url  # for worker processes started later
        except BaseException as exc:  # reported by wait()
            if self._server is not None:
                self._server.stop()
            self._error = exc

    @property
    def server_starting(self) -> bool:
        """Whether a temporary server was started for this command (perhaps still coming up;
        or stopped again for a server the settings name). False: a configured server."""
        return self._thread is not None or self.started_here

    def close(self) -> None:
        """Forget the temporary server's address. The server itself stops at exit, after
        Prefect's own exit handlers (registered later, run earlier) have sent their logs."""
        if self.started_here and os.environ.get(API_URL_ENV) == self.url:
            del os.environ[API_URL_ENV]

    def wait(self) -> PrefectAPI:
        """Block until the API is up (re-raises a failure to start it)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self

    @contextlib.contextmanager
    def active(self, meanwhile: Callable[[], object] | None = None) -> Iterator[PrefectAPI]:
        """Wait for the API, and run the block with Prefect pointed at it (Prefect reads its
        settings once, at import: a server started here is made current for the block).

        Args:
            meanwhile: work for the time a server started here is still coming up (the
                command's warm-up); skipped when the API is already there.
        """
        if meanwhile is not None and self._thread is not None and self._thread.is_alive():
            meanwhile()
        self.wait()
        if not self.started_here:
            yield self
            return
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.url}):
            yield self


def _configured_in_this_process() -> str | None:
    """A Prefect API named by settings already loaded here (a test harness), if any."""
    if "prefect.settings" not in sys.modules:
        return None
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def start_api(configured_url: str | None = None) -> PrefectAPI:
    """Begin making a Prefect API ready for this command's flows; run them in `.active()`.

    Args:
        configured_url: `[runner] prefect_api_url` from the workspace: a persistent server to
            use (taken only when `PREFECT_API_URL` is not already set).
    """
    api = PrefectAPI()
    if os.environ.get(API_URL_ENV):
        api.url = os.environ[API_URL_ENV]
        return api
    if configured_url:
        os.environ[API_URL_ENV] = configured_url  # read by Prefect when it is imported
        api.url = configured_url
        return api
    already = _configured_in_this_process()
    if already:
        api.url = already
        return api
    api._server = TemporaryServer()  # now, before anything imports Prefect
    # The thread sees this context's Prefect settings (a profile's, a test harness's).
    context = contextvars.copy_context()
    api._thread = threading.Thread(target=context.run, args=(api._make_ready,),
                                   name="prefect-api-start", daemon=True)
    api._thread.start()
    return api


__all__ = ["API_URL_ENV", "SERVER_START_SETTINGS", "PrefectAPI", "TemporaryServer",
           "api_answers", "free_port", "start_api"]
