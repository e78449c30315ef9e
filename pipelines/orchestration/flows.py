"""Prefect flows: the monthly run and one subflow per period; one task per partner's drops.

Flows only sequence: partner ingest, link and publish are tasks over `pipelines.steps`
(`pipelines.orchestration.tasks`). Flow and task parameters are paths, ids, periods and dates
only: never a secret and never personal data. Each flow loads the workspace once into a
`RunContext`; each drop becomes a `DropContext` once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture, as_completed

from pipelines.faults import crash_point
from pipelines.orchestration import progress
from pipelines.orchestration.runners import ingest_runner
from pipelines.orchestration.summary import run_summary_markdown
from pipelines.orchestration.tasks import (
    FLOW_PROCESS,
    ingest_partner,
    link,
    publish_release,
    safe_failure,
    wait_reports,
    warm_up_helper,
)
from pipelines.state import writer_lock
from pipelines.steps.context import RunContext, new_run_id, shared_memo
from pipelines.steps.guard import NOTHING_ACCEPTED, release_guard
from pipelines.steps.ingest import stores_checkpointed_once
from pipelines.steps.keys import check_keys
from pipelines.steps.notify import FAILURE, SUCCESS, notify, summary_payload
from pipelines.steps.run import close_run, mark_linked, mark_published, open_run
from pipelines.workspace import enforce_modes
from pipelines.workspace.modes import private_umask


def ingest_drops(run: RunContext, drops: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Submit every partner's ingest at once and collect outcomes; a failure stops no other."""
    logger = get_run_logger()
    if drops:
        warm_up_helper()
    by_partner: dict[str, list[dict[str, str]]] = {}
    for drop in drops:
        by_partner.setdefault(drop["partner_id"], []).append(drop)
    outcomes: dict[str, dict[str, Any]] = {}
    # partners ingested in this process parse an address once, and their stores are
    # checkpointed into the state file once
    with shared_memo(run.run_id), stores_checkpointed_once(run) as checkpoint:
        futures: list[PrefectFuture] = [
            ingest_partner.submit(str(run.ws.root), partner_id, partner_drops[0]["period"],
                                  partner_drops, run.run_id, run.as_of)
            for partner_id, partner_drops in sorted(by_partner.items())
        ]
        partner_of = {id(f): p for f, p in zip(futures, sorted(by_partner), strict=True)}
        for future in as_completed(futures):
            partner_drops = by_partner[partner_of[id(future)]]
            result = future.result(raise_on_failure=False)  # also settles `future.state`
            state = future.state
            if state.is_completed() and isinstance(result, list):
                partner_outcomes = result
            else:
                logger.error("partner %s failed: %s", partner_of[id(future)], state.message)
                partner_outcomes = [{**d, "status": "failed", "reason": state.message}
                                    for d in partner_drops]
            for outcome in partner_outcomes:
                outcomes[outcome["rel_path"]] = outcome
                progress.emit("drop", rel_path=outcome["rel_path"], status=outcome["status"],
                              rows_read=int(outcome.get("rows_read") or 0))
        with progress.stage("store"):
            checkpoint()
    crash_point("period:ingested")
    return [outcomes[d["rel_path"]] for d in drops]


@flow(name="process-period", flow_run_name="period-{period}")
def period_flow(workspace: str, period: str, drops: list[dict[str, str]], run_id: str,
                as_of: date, seed: int | None = None,
                allow_shrink: bool = False) -> dict[str, Any]:
    """Ingest every partner's drop for one period (concurrently), then link and publish; the
    partners' report pages are waited for last.

    Also called with no drops for a period a killed run stored but did not publish. The
    release is held back (`held`) when nothing was accepted or it would lose more persons
    than `[thresholds] max_person_drop` allows, unless `allow_shrink`.
    """
    run = RunContext.load(workspace, run_id, as_of)
    outcomes = ingest_drops(run, drops)
    with progress.stage("link"):
        linked = link(run, period, seed)
    progress.emit("linked", period=period, records=linked.get("records", 0),
                  persons=linked.get("persons", 0))
    crash_point("period:linked")
    hold = release_guard(run, period, outcomes, int(linked.get("persons", 0)),
                         allow_shrink=allow_shrink)
    if hold is not None:
        get_run_logger().warning("not published: %s", hold.reason)
        wait_reports()
        return {"period": period, "drops": outcomes, "link": linked, "published": {},
                "held": hold.as_dict()}
    mark_linked(run, period)
    with progress.stage("publish"):
        published = publish_release(run)
    crash_point("period:published")
    # Only now is the period done: a run killed before this line links and publishes it again.
    mark_published(run, period, int(linked.get("persons", 0)))
    progress.emit("published", period=period)
    # The partners' Data Docs pages, rendered in the helper process meanwhile (its GE import
    # and the rendering overlap linking and publishing; summary.md was written with the drop).
    wait_reports()
    return {"period": period, "drops": outcomes, "link": linked, "published": published,
            "held": None}


@flow(name="pathlink-monthly", log_prints=False)
def monthly_flow(workspace: str, as_of: str | None = None, seed: int | None = None,
                 wait_seconds: float = 0.0, reprocess: list[str] | None = None,
                 allow_shrink: bool = False) -> dict[str, Any]:
    """Process every period in landing/ that is not yet processed, oldest first.

    Args:
        workspace: path of the workspace folder.
        as_of: ISO date used for "future" checks and ages (default: today).
        seed: seed for new person IDs (tests only; IDs are random otherwise).
        wait_seconds: how long to wait for another run's writer lock.
        reprocess: `PARTNER` or `PARTNER/YYYY-MM` whose drops are processed again even
            though unchanged (recorded in the ledger's `reprocessed` table).
        allow_shrink: publish even a release with nothing new accepted or fewer persons
            than `[thresholds] max_person_drop` allows (docs/operations.md).

    Everything runs under umask 077. A secret whose fingerprint is not the pinned one stops
    the run before anything is written; `[notify]` hears of success and failure.
    """
    progress.emit("flow-started", at=time.perf_counter())
    FLOW_PROCESS.set()
    as_of_date = date.fromisoformat(as_of) if as_of else date.today()
    with private_umask():
        run = RunContext.load(workspace, new_run_id(as_of_date), as_of_date)
        try:
            summary = _monthly(run, seed, wait_seconds, reprocess or [], allow_shrink)
        except Exception as exc:
            _notify(run, summary_payload(run.ws, None, status=FAILURE,
                                         error=safe_failure(exc), run_id=run.run_id))
            raise
        held = summary["held"]
        _notify(run, summary_payload(
            run.ws, summary, status=FAILURE if held else SUCCESS,
            error="; ".join(h["reason"] for h in held) or None))
    return summary


def _notify(run: RunContext, payload: dict[str, Any]) -> None:
    for problem in notify(run.ws, payload):
        get_run_logger().warning("%s", problem)


def _monthly(run: RunContext, seed: int | None, wait_seconds: float, reprocess: list[str],
             allow_shrink: bool) -> dict[str, Any]:
    ws, as_of_date = run.ws, run.as_of
    logger = get_run_logger()
    for note in check_keys(ws):  # before anything is written: the lock file included
        logger.info("%s", note)
    with writer_lock(ws.state_dir, wait_seconds=wait_seconds):
        changed = enforce_modes(ws)
        if changed:
            logger.warning("tightened the modes of %d workspace files and folders "
                           "(docs/operations.md, File modes)", len(changed))
        with progress.stage("discover"):
            plan = open_run(run, reprocess)
        if plan.interrupted:
            logger.warning("resuming after interrupted run(s): %s", ", ".join(plan.interrupted))
        for refusal in plan.discovery.refused:
            logger.warning("refused %s", refusal["reason"])
        progress.emit("discovered", drops=len(plan.discovery.pending),
                      periods=len(plan.by_period))
        results = []
        covered = plan.periods
        status = "failed"
        try:
            if plan.by_period:
                with ingest_runner(ws) as task_runner:
                    process_period = period_flow.with_options(task_runner=task_runner)
                    for period in plan.periods:
                        result = process_period(str(ws.root), period, plan.by_period[period],
                                                run.run_id, as_of_date, seed, allow_shrink)
                        results.append(result)
                        held = result.get("held")
                        if held and held["kind"] != NOTHING_ACCEPTED:
                            # later periods would build on the shrunken state: they wait
                            covered = [r["period"] for r in results]
                            break
            status = "completed"
        finally:
            close_run(run, status, covered)
    processed = {r["period"] for r in results}
    summary = {"run_id": run.run_id, "periods": results, "refused": plan.discovery.refused,
               "unchanged": plan.discovery.unchanged,
               "held": [r["held"] for r in results if r.get("held")],
               "waiting": [p for p in plan.periods if p not in processed]}
    create_markdown_artifact(key="pathlink-run-summary", markdown=run_summary_markdown(summary),
                             description=f"Pathlink run {run.run_id}: counts only, no PII")
    return summary


#: Prefect's settings that ask for flow-run heartbeats (the second is its legacy name).
HEARTBEAT_SETTINGS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextlib.contextmanager
def heartbeats_as_configured() -> Iterator[None]:
    """Flow runs started in this block send no Prefect heartbeat unless one was asked for.

    Prefect 3.8 sends each flow run's heartbeat (every 180 s by default) from a thread that
    sleeps in 1 s steps, and every flow run's end waits for that thread to wake: up to a
    second per flow, and a month is a flow plus one per period. A heartbeat serves only an
    automation on a persistent server that marks a silent run crashed; a run Pathlink starts
    is marked `interrupted` by its own ledger at the next start (docs/operations.md), and a
    temporary server stops with the command. Heartbeats stay as Prefect sends them when
    `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` is set, in the environment or the active profile.
    """
    from prefect.context import get_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    profile = {setting.name for setting in get_settings_context().profile.settings}
    if any(name in os.environ or name in profile for name in HEARTBEAT_SETTINGS):
        yield
        return
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def run_workspace(workspace: str | Path, *, as_of: str | None = None, seed: int | None = None,
                  wait_seconds: float = 0.0, reprocess: list[str] | None = None,
                  allow_shrink: bool = False) -> dict[str, Any]:
    """Run the monthly flow (used by the CLI and tests), without heartbeats unless asked
    for (`heartbeats_as_configured`)."""
    with heartbeats_as_configured():
        return monthly_flow(str(Path(workspace).resolve()), as_of=as_of, seed=seed,
                            wait_seconds=wait_seconds, reprocess=list(reprocess or []),
                            allow_shrink=allow_shrink)
