"""The Prefect API a command's flows talk to: started once per command, early, or reused.

Prefect 3 runs every flow against an API. With none configured it starts a temporary server
(a uvicorn subprocess over the local Prefect database) the first time a flow needs it, which
takes seconds. `start_api` lets a command begin that start *before* it imports the flows, so
the server comes up on the second core while the first imports Pathlink and Prefect; the
command calls `PrefectAPI.wait()` before its first flow. The server's address is then put in
`PREFECT_API_URL`, so processes the run starts later (local Dask workers) use this server
instead of starting their own. It stops when the command exits.

A persistent server is reused instead when one is configured: `PREFECT_API_URL` in the
environment or the Prefect profile (e.g. a `prefect server start` left running), or
`[runner] prefect_api_url` in `pathlink.toml`.
"""

from __future__ import annotations

import contextvars
import os
import threading

API_URL_ENV = "PREFECT_API_URL"


class PrefectAPI:
    """A Prefect API being made ready for this command (see `start_api`)."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.started_here = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _start_temporary(self) -> None:
        try:
            from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

            configured = PREFECT_API_URL.value()
            if configured or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
                self.url = configured or None  # a profile names a server: Prefect uses it
                return
            from prefect.server.api.server import SubprocessASGIServer

            server = SubprocessASGIServer()
            server.start()
            self.url, self.started_here = server.api_url, True
            os.environ[API_URL_ENV] = server.api_url  # for worker processes started later
        except BaseException as exc:  # reported by wait()
            self._error = exc

    def close(self) -> None:
        """Forget the temporary server's address (the server itself stops at exit)."""
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


def start_api(configured_url: str | None = None) -> PrefectAPI:
    """Begin making a Prefect API ready for this command's flows; call `.wait()` before them.

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
    # The thread sees this context's Prefect settings (a test harness's API, a profile's).
    context = contextvars.copy_context()
    api._thread = threading.Thread(target=context.run, args=(api._start_temporary,),
                                   name="prefect-api-start", daemon=True)
    api._thread.start()
    return api


__all__ = ["API_URL_ENV", "PrefectAPI", "start_api"]
