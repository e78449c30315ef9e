"""Tell someone how a run ended: a configured command and/or a webhook on this machine.

`[notify]` in pathlink.toml (docs/operations.md, "Notifications"). The payload is the run's
counts-only summary as JSON: periods, files by status, row counts, records and persons, what
was published or held and, on failure, the error in the words Pathlink's own messages use
(never a value: an unexpected exception is named by its type only). A notification that fails
is reported back, never raised: it does not change how the run ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any

from pipelines.workspace import Workspace

FAILURE = "failure"
SUCCESS = "success"


def summary_payload(ws: Workspace, summary: dict[str, Any] | None, *,
                    status: str, error: str | None = None,
                    run_id: str | None = None) -> dict[str, Any]:
    """The counts-only summary sent to the command and the webhook."""
    periods = []
    for period in (summary or {}).get("periods", []):
        drops = period.get("drops", [])
        by_status: dict[str, int] = {}
        for drop in drops:
            by_status[drop.get("status", "failed")] = by_status.get(
                drop.get("status", "failed"), 0) + 1
        link = period.get("link", {})
        held = period.get("held")
        periods.append({
            "period": period["period"],
            "files": by_status,
            "rows_read": sum(int(d.get("rows_read") or 0) for d in drops),
            "rows_accepted": sum(int(d.get("rows_accepted") or 0) for d in drops),
            "rows_quarantined": sum(int(d.get("rows_quarantined") or 0) for d in drops),
            "records": int(link.get("records", 0)),
            "persons": int(link.get("persons", 0)),
            "published": bool(period.get("published")) and not held,
            "held": held.get("kind") if held else None,
            "held_reason": held.get("reason") if held else None,
        })
    summary = summary or {}
    return {
        "source": "pathlink",
        "status": status,
        "workspace": ws.name,
        "run_id": summary.get("run_id", run_id),
        "periods": periods,
        "held": [h["period"] for h in summary.get("held", [])],
        "refused_files": len(summary.get("refused", [])),
        "unchanged_files": int(summary.get("unchanged", 0)),
        "error": error,
    }


def notify(ws: Workspace, payload: dict[str, Any]) -> list[str]:
    """Send `payload` to the configured command and webhook when its status is one they want.

    Returns:
        One line per notification that failed (for the run's log); empty when all went out.
    """
    config = ws.notify
    if not config.configured or payload["status"] not in config.on:
        return []
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    problems = []
    if config.command:
        env = {**os.environ, "PATHLINK_NOTIFY_STATUS": payload["status"],
               "PATHLINK_RUN_ID": str(payload.get("run_id") or ""),
               "PATHLINK_WORKSPACE": str(ws.root)}
        try:
            done = subprocess.run(list(config.command), input=body, env=env, cwd=ws.root,
                                  capture_output=True, timeout=config.timeout, check=False)
            if done.returncode != 0:
                problems.append(f"notify command {config.command[0]} exited with status "
                                f"{done.returncode}")
        except subprocess.TimeoutExpired:
            problems.append(f"notify command {config.command[0]} did not finish within "
                            f"{config.timeout:g} s")
        except OSError as exc:
            problems.append(f"notify command {config.command[0]} could not start: "
                            f"{exc.strerror or type(exc).__name__}")
    if config.webhook:
        request = urllib.request.Request(  # noqa: S310 - a local http(s) URL, checked at load
            config.webhook, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "pathlink"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        try:
            with opener.open(request, timeout=config.timeout) as response:
                response.read(1024)
        except OSError as exc:  # URLError, HTTPError, timeouts
            problems.append(f"notify webhook {config.webhook} failed: "
                            f"{getattr(exc, 'reason', None) or type(exc).__name__}")
    return problems


__all__ = ["FAILURE", "SUCCESS", "notify", "summary_payload"]
