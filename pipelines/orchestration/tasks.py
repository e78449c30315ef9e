"""Prefect tasks: a few lines each over a Prefect-free step (`pipelines.steps`).

Every task that sees raw PII runs with `persist_result=False` and no cache policy, so nothing it
returns is written to Prefect's result storage; its exceptions are sanitised by `pii_safe` so a
library error message quoting a value never reaches Prefect's state messages or logs. Reading
and storing (I/O) retry; the stages in between do not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.ingest import EncodedBatch, FileRejected, ReadResult, ValidationOutcome
from pipelines.steps import ingest as ingest_steps
from pipelines.steps import link as link_steps
from pipelines.steps import publish as publish_steps
from pipelines.steps.context import DropContext, RunContext
from pipelines.steps.ingest import DropOutcome

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


# -- ingest a drop -------------------------------------------------------------------------------
@task(name="read-drop", retries=2, retry_delay_seconds=[1, 5], **PII_TASK)
@pii_safe("read")
def read_drop(ctx: DropContext) -> ReadResult:
    """Read one dropped file into strings, applying the partner's column and value maps."""
    return ingest_steps.read_drop(ctx)


@task(name="validate-drop", **PII_TASK)
@pii_safe("validate")
def validate_drop(ctx: DropContext, frame: pd.DataFrame) -> ValidationOutcome:
    """Validate against the dataset's contract: accept or quarantine every row."""
    return ingest_steps.validate_drop(ctx, frame)


@task(name="normalize", **PII_TASK)
@pii_safe("normalize")
def normalize(ctx: DropContext, accepted: pd.DataFrame) -> pd.DataFrame:
    """Normalize identifiers (names, dates, SSN, phone, email, address)."""
    return ingest_steps.normalize(ctx, accepted)


@task(name="encode", **PII_TASK)
@pii_safe("encode")
def encode(ctx: DropContext, normalized: pd.DataFrame, accepted: pd.DataFrame) -> EncodedBatch:
    """Keyed tokens and Bloom filters with lineage; no raw PII leaves this task."""
    return ingest_steps.encode(ctx, normalized, accepted)


@task(name="event-rows", **PII_TASK)
@pii_safe("encode")
def event_rows(ctx: DropContext, accepted: pd.DataFrame) -> pd.DataFrame:
    """Rows of an event dataset for the restricted state (wage identities become tokens)."""
    return ingest_steps.event_rows(ctx, accepted)


@task(name="read-encoded-drop", persist_result=False, cache_policy=NO_CACHE)
def read_encoded(ctx: DropContext) -> EncodedBatch:
    """Read a partner-side encoded drop (tokens and filters only), refusing a foreign one."""
    return ingest_steps.read_encoded(ctx)


@task(name="store-drop", retries=2, retry_delay_seconds=[1, 5], **PII_TASK)
@pii_safe("store")
def store_drop(ctx: DropContext, outcome: DropOutcome, *, batch: EncodedBatch | None = None,
               events: pd.DataFrame | None = None,
               validation: ValidationOutcome | None = None) -> DropOutcome:
    """Record the file in the ledger, its row issues, encrypted quarantine and rows."""
    ingest_steps.store_drop(ctx, outcome, batch=batch, events=events, validation=validation)
    get_run_logger().info(
        "%s %s/%s/%s: read %d, accepted %d, quarantined %d", outcome.status,
        outcome.partner_id, outcome.period, outcome.dataset, outcome.rows_read,
        outcome.rows_accepted, outcome.rows_quarantined,
    )
    return outcome


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
