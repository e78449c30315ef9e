"""Prefect tasks over the Prefect-free steps (`pipelines.steps`).

Ingest is one task per partner (`ingest_partner`) running each drop's steps as plain calls:
Prefect's bookkeeping is paid once per partner, not once per step and drop, and a partner's
task still fails alone. The task that sees raw PII runs with `persist_result=False` and no
cache policy, so nothing it returns is written to Prefect's result storage; each step's
exceptions are sanitised by `pii_safe` so a library error message quoting a value never
reaches Prefect's state messages or logs. Reading and storing retry on I/O errors; the stages
in between do not. Each step is timed (`progress.stage`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any, ParamSpec, TypeVar

import duckdb
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.ingest import FileRejected
from pipelines.orchestration import progress
from pipelines.state import StateLocked
from pipelines.steps import ingest as ingest_steps
from pipelines.steps import link as link_steps
from pipelines.steps import publish as publish_steps
from pipelines.steps.context import DropContext, RunContext
from pipelines.steps.ingest import DropOutcome, EncodedDropRefused
from pipelines.workspace import WorkspaceError

P = ParamSpec("P")
R = TypeVar("R")

#: Task options for every task that touches raw PII: no result storage, no cache.
PII_TASK = {"persist_result": False, "cache_policy": NO_CACHE}


class StageError(Exception):
    """A pipeline stage failed; the message names the stage and file, never a value."""


def pii_safe(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Re-raise any unexpected exception as a `StageError` without its (possibly PII) message.

    The message names the stage and, when the task was given a `DropContext`, the landing
    path of its file.
    """

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (StageError, FileRejected):
                raise
            except Exception as exc:
                ctx = next((a for a in (*args, *kwargs.values())
                            if isinstance(a, DropContext)), None)
                where = ctx.rel_path if ctx is not None else ""
                raise StageError(
                    f"{stage} failed{' on ' + where if where else ''}: "
                    f"{type(exc).__name__} (details withheld: may contain personal data)"
                ) from None

        return inner

    return wrap


# -- ingest: one task per partner, plain steps inside ------------------------------------------
def _retry_io(fn: Callable[P, R], delays: tuple[float, ...] = (1.0, 5.0)) -> Callable[P, R]:
    """Call `fn`, again after each delay if it fails with an I/O error (a file or the state
    database briefly unavailable); data problems (`FileRejected`) are never retried."""

    @functools.wraps(fn)
    def inner(*args: P.args, **kwargs: P.kwargs) -> R:
        for delay in delays:
            try:
                return fn(*args, **kwargs)
            except (OSError, duckdb.IOException):
                time.sleep(delay)
        return fn(*args, **kwargs)

    return inner


# Each step sanitised by `pii_safe` (the message names stage and file, never a value); reading
# and storing retry on I/O errors.
read_drop = pii_safe("read")(_retry_io(ingest_steps.read_drop))
validate_drop = pii_safe("validate")(ingest_steps.validate_drop)
normalize = pii_safe("normalize")(ingest_steps.normalize)
encode = pii_safe("encode")(ingest_steps.encode)
event_rows = pii_safe("encode")(ingest_steps.event_rows)
read_encoded = ingest_steps.read_encoded  # tokens and filters only; refusals carry no values
store_drop = pii_safe("store")(_retry_io(ingest_steps.store_drop))


def ingest_drop(run: RunContext, rel_path: str, sha256: str, why: str = "new"
                ) -> dict[str, Any]:
    """Read, validate, normalize, encode and store one partner's file (plain steps, timed).

    `why` is the reason it is processed (`new`, `corrected`, `map_changed`, ...: discovery's).
    """
    ctx = run.drop(rel_path, sha256)
    outcome = DropOutcome.for_drop(ctx, why)
    if ctx.ref.encoded:
        batch = None
        try:
            with progress.stage("read"):
                batch = read_encoded(ctx)
            outcome.count(batch.rows_read, batch.rows_accepted, batch.rows_quarantined)
        except EncodedDropRefused as exc:
            outcome.reject(str(exc))
        with progress.stage("store"):
            store_drop(ctx, outcome, batch=batch)
        _log_outcome(outcome)
        return outcome.as_dict()
    validation = batch = events = None
    try:
        with progress.stage("read"):
            read = read_drop(ctx)
        with progress.stage("validate"):
            validation = validate_drop(ctx, read.frame)
        counts = validation.counts
        outcome.count(counts["read"], counts["accepted"], counts["quarantined"])
        if validation.file_verdict != "accepted":
            outcome.reject(validation.reject_reason)
        elif ctx.ref.dataset == "participants":
            with progress.stage("normalize"):
                normalized = normalize(ctx, validation.accepted)
            with progress.stage("encode"):
                batch = encode(ctx, normalized, validation.accepted)
        else:
            with progress.stage("encode"):
                events = event_rows(ctx, validation.accepted)
    except FileRejected as exc:
        outcome.reject(str(exc), code=exc.code, row=exc.row, field=exc.field)
    with progress.stage("store"):
        store_drop(ctx, outcome, batch=batch, events=events, validation=validation)
    _log_outcome(outcome)
    return outcome.as_dict()


def _log_outcome(outcome: DropOutcome) -> None:
    logger = get_run_logger()
    logger.info("%s %s/%s/%s: read %d, accepted %d, quarantined %d", outcome.status,
                outcome.partner_id, outcome.period, outcome.dataset, outcome.rows_read,
                outcome.rows_accepted, outcome.rows_quarantined)
    if outcome.status == "rejected":
        logger.warning("rejected %s", outcome.reason)


def safe_failure(exc: Exception) -> str:
    """A failure message fit for logs and Prefect states: our own messages carry no values."""
    if isinstance(exc, (StageError, FileRejected, WorkspaceError, StateLocked)):
        return str(exc)
    return f"{type(exc).__name__} (details withheld: may contain personal data)"


# Parameters are plain paths, ids and a date; the task runs where the task runner puts it (this
# process's thread pool or a Dask worker process).
@task(name="ingest-partner", task_run_name="ingest-{partner_id}-{period}", **PII_TASK)
def ingest_partner(workspace: str, partner_id: str, period: str,
                   drops: list[dict[str, str]], run_id: str,
                   as_of: date) -> list[dict[str, Any]]:
    """One partner's drops for one period, each drop's steps run in turn.

    A failed file stops neither this partner's other files nor other partners (each partner is
    its own task). Arguments and result are paths, ids and counts: personal data is read,
    encoded and stored inside the task and never travels between processes.
    """
    run = RunContext.load(workspace, run_id, as_of)
    outcomes = []
    for drop in drops:
        try:
            outcomes.append(ingest_drop(run, drop["rel_path"], drop["sha256"],
                                        drop.get("why", "new")))
        except Exception as exc:
            reason = safe_failure(exc)
            get_run_logger().error("drop %s failed: %s", drop["rel_path"], reason)
            outcomes.append({**drop, "status": "failed", "reason": reason})
    if not in_flow_process():  # in another process (a Dask worker): finish its reports
        ingest_steps.wait_reports()
    return outcomes


#: Set in the process that runs the flows: there the period flow waits for the partner reports
#: once all partners are ingested (`wait_reports`), so a partner's task need not.
FLOW_PROCESS = threading.Event()


def in_flow_process() -> bool:
    """Whether this process runs the flows (`FLOW_PROCESS`; a function, so that the task that
    calls it pickles for a Dask worker)."""
    return FLOW_PROCESS.is_set()


def warm_up_helper() -> None:
    """Start the helper process (and its imports) before the partners' drops are read."""
    ingest_steps.warm_up_helper()


def wait_reports() -> None:
    """Wait for the partner reports the helper process is rendering (timed as `report`)."""
    with progress.stage("report"):
        ingest_steps.wait_reports()


# -- link and publish ----------------------------------------------------------------------------
@task(name="link", persist_result=False, cache_policy=NO_CACHE)
def link(run: RunContext, period: str, seed: int | None = None) -> dict[str, Any]:
    """Link all current records into persons, keeping person IDs stable (counts returned)."""
    summary = link_steps.link_workspace(run, period, seed)
    get_run_logger().info("linked %s", summary)
    return summary


@task(name="publish", retries=2, retry_delay_seconds=[1, 5], persist_result=False,
      cache_policy=NO_CACHE)
def publish_release(run: RunContext) -> dict[str, int]:
    """Write the de-identified release and swap it in atomically."""
    counts = publish_steps.publish_release(run)
    get_run_logger().info("published %s", counts)
    return counts
