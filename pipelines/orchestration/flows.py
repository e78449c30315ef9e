"""Prefect flows: the monthly run, one subflow per period and one per partner drop.

Flow parameters are paths, ids and periods only: never a secret and never personal data.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed

from pipelines.ingest import validate as intake
from pipelines.orchestration import runners
from pipelines.orchestration import tasks as t
from pipelines.state import StateStore, writer_lock
from pipelines.warehouse.facts import EVENT_DATASETS
from pipelines.workspace import Workspace, WorkspaceError, load_workspace

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PROCESSED_DATASETS = ("participants", *EVENT_DATASETS)


def code_version() -> str:
    """The installed Pathlink version, recorded with every run and file."""
    return f"pathlink {version('pathlink')}"


@dataclass
class Drop:
    """A file found in landing/ that is ready to process."""

    partner_id: str
    period: str
    dataset: str
    rel_path: str
    sha256: str


@dataclass
class Discovery:
    """What landing/ holds: drops to process and drops refused before reading."""

    pending: list[Drop] = field(default_factory=list)
    unchanged: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)


def discover(ws: Workspace, as_of: date) -> Discovery:
    """Find every drop in landing/ not yet processed; refuse what cannot be a valid drop."""
    found = Discovery()
    if not ws.landing.is_dir():
        return found
    with StateStore(ws.state_db) as state:
        for path in sorted(p for p in ws.landing.rglob("*") if p.is_file()):
            rel = path.relative_to(ws.landing).as_posix()
            if path.name.startswith("."):
                continue
            try:
                ref = intake.parse_drop_path(ws.landing, path, as_of=as_of)
                ws.partner(ref.partner_id)
            except (intake.FileRejected, WorkspaceError) as exc:
                found.refused.append({"file": rel, "reason": str(exc)})
                continue
            if ref.dataset not in PROCESSED_DATASETS:
                found.refused.append({
                    "file": rel,
                    "reason": f"{rel}: dataset '{ref.dataset}' is validated by `pathlink check` "
                              "but not yet linked or published",
                })
                continue
            sha = t.sha256_file(path)
            if state.known_file(sha, ref.partner_id, ref.period, ref.dataset):
                found.unchanged += 1
                continue
            found.pending.append(Drop(ref.partner_id, ref.period, ref.dataset, rel, sha))
    return found


def ingest_drop(workspace: str, rel_path: str, sha256: str, run_id: str,
                as_of: date) -> dict[str, Any]:
    """Read, validate, normalize, encode and store one partner's file (thin tasks)."""
    ws = load_workspace(workspace)
    ref = intake.parse_drop_path(ws.landing, ws.landing / rel_path, as_of=as_of)
    outcome = t.DropOutcome(ref.partner_id, ref.period, ref.dataset, rel_path, sha256,
                            status="accepted")
    validation = None
    encoded = None
    if ref.encoded:
        try:
            encoded, counts = t.read_encoded(workspace, rel_path=rel_path, sha256=sha256)
            outcome.rows_read, outcome.rows_accepted, outcome.rows_quarantined = counts
        except t.EncodedDropRefused as exc:
            outcome.status = "rejected"
            outcome.reason = str(exc)
        t.store_drop(workspace, outcome, encoded, None, run_id, code_version(),
                     rel_path=rel_path)
        return outcome.as_dict()
    try:
        read = t.read_drop(workspace, rel_path=rel_path)
        validation = t.validate_drop(workspace, rel_path=rel_path, frame=read.frame,
                                     as_of=as_of)
        outcome.rows_read = validation.counts["read"]
        outcome.rows_accepted = validation.counts["accepted"]
        outcome.rows_quarantined = validation.counts["quarantined"]
        if validation.file_verdict != "accepted":
            outcome.status = "rejected"
            outcome.reason = validation.reject_reason
        elif ref.dataset == "participants":
            normalized = t.normalize(validation.accepted, as_of, rel_path=rel_path)
            encoded = t.encode(workspace, normalized, validation.accepted,
                               partner_id=ref.partner_id, period=ref.period, sha256=sha256,
                               rel_path=rel_path)
        else:
            encoded = t.event_rows(workspace, validation.accepted, dataset=ref.dataset,
                                   partner_id=ref.partner_id, period=ref.period,
                                   sha256=sha256, as_of=as_of, rel_path=rel_path)
    except intake.FileRejected as exc:
        outcome.status = "rejected"
        outcome.reason = str(exc)
    t.store_drop(workspace, outcome, encoded, validation, run_id, code_version(),
                 rel_path=rel_path)
    if outcome.status == "rejected":
        get_run_logger().warning("rejected %s", outcome.reason)
    return outcome.as_dict()


def _safe_failure(exc: Exception) -> str:
    """A failure message fit for logs and Prefect states: our own messages carry no values."""
    if isinstance(exc, (t.StageError, intake.FileRejected, WorkspaceError)):
        return str(exc)
    return f"{type(exc).__name__} (details withheld: may contain personal data)"


# Parameters are plain paths, ids and a date; not validated so the flow also starts inside a
# Dask worker (pydantic cannot resolve postponed annotations of a function shipped there).
@flow(name="ingest-partner", flow_run_name="ingest-{partner_id}-{period}",
      validate_parameters=False)
def ingest_partner_flow(workspace: str, partner_id: str, period: str,
                        drops: list[dict[str, str]], run_id: str,
                        as_of: date) -> list[dict[str, Any]]:
    """One partner's drops for one period; a failed file stops neither this partner's other
    files nor other partners (each partner is its own subflow)."""
    outcomes = []
    for drop in drops:
        try:
            outcomes.append(ingest_drop(workspace, drop["rel_path"], drop["sha256"], run_id,
                                        as_of))
        except Exception as exc:
            reason = _safe_failure(exc)
            get_run_logger().error("drop %s failed: %s", drop["rel_path"], reason)
            outcomes.append({**drop, "status": "failed", "reason": reason})
    return outcomes


@task(name="ingest-partner", task_run_name="ingest-{partner_id}-{period}",
      persist_result=False, cache_policy=NO_CACHE)
def ingest_partner_task(workspace: str, partner_id: str, period: str,
                        drops: list[dict[str, str]], run_id: str,
                        as_of: date) -> list[dict[str, Any]]:
    """Run one partner's ingest subflow where the task runner puts it (thread or Dask worker).

    Arguments and result are paths, ids and counts: personal data is read, encoded and stored
    inside the worker and never travels between processes.
    """
    return ingest_partner_flow(workspace, partner_id, period, drops, run_id, as_of)


def ingest_drops(workspace: str, drops: list[dict[str, str]], run_id: str,
                 as_of: date) -> list[dict[str, Any]]:
    """Submit every partner's ingest at once and collect outcomes; a failure stops no other."""
    logger = get_run_logger()
    by_partner: dict[str, list[dict[str, str]]] = {}
    for drop in drops:
        by_partner.setdefault(drop["partner_id"], []).append(drop)
    futures: list[PrefectFuture] = [
        ingest_partner_task.submit(workspace, partner_id, partner_drops[0]["period"],
                                   partner_drops, run_id, as_of)
        for partner_id, partner_drops in sorted(by_partner.items())
    ]
    partner_of = {id(f): p for f, p in zip(futures, sorted(by_partner), strict=True)}
    outcomes: dict[str, dict[str, Any]] = {}
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
            runners.report("drop", rel_path=outcome["rel_path"], status=outcome["status"],
                           rows_read=int(outcome.get("rows_read") or 0))
    runners.crash_point("period:ingested")
    return [outcomes[d["rel_path"]] for d in drops]


@flow(name="process-period", flow_run_name="period-{period}")
def period_flow(workspace: str, period: str, drops: list[dict[str, str]], run_id: str,
                as_of: date, seed: int | None = None) -> dict[str, Any]:
    """Ingest every partner's drop for one period (concurrently), then link and publish.

    Also called with no drops for a period a killed run stored but did not publish.
    """
    outcomes = ingest_drops(workspace, drops, run_id, as_of)
    linked = t.link(workspace, run_id, period, seed)
    runners.report("linked", period=period, records=linked.get("records", 0),
                   persons=linked.get("persons", 0))
    runners.crash_point("period:linked")
    ws = load_workspace(workspace)
    with StateStore(ws.state_db) as state_store:
        state_store.mark_period(period, run_id)
    published = t.publish_release(workspace, run_id, code_version())
    runners.crash_point("period:published")
    # Only now is the period done: a run killed before this line links and publishes it again.
    with StateStore(ws.state_db) as state_store:
        state_store.mark_published(period, run_id)
    runners.report("published", period=period)
    return {"period": period, "drops": outcomes, "link": linked, "published": published}


@flow(name="pathlink-monthly", log_prints=False)
def monthly_flow(workspace: str, as_of: str | None = None, seed: int | None = None,
                 wait_seconds: float = 0.0) -> dict[str, Any]:
    """Process every period in landing/ that is not yet processed, oldest first.

    Args:
        workspace: path of the workspace folder.
        as_of: ISO date used for "future" checks and ages (default: today).
        seed: seed for new person IDs (tests only; IDs are random otherwise).
        wait_seconds: how long to wait for another run's writer lock.
    """
    ws = load_workspace(workspace)
    as_of_date = date.fromisoformat(as_of) if as_of else date.today()
    run_id = f"run-{as_of_date:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    logger = get_run_logger()
    with writer_lock(ws.state_dir, wait_seconds=wait_seconds):
        interrupted = runners.cleanup_interrupted(ws)
        if interrupted:
            logger.warning("resuming after interrupted run(s): %s", ", ".join(interrupted))
        found = discover(ws, as_of_date)
        for refusal in found.refused:
            logger.warning("refused %s", refusal["reason"])
        by_period: dict[str, list[dict[str, str]]] = {}
        for drop in found.pending:
            by_period.setdefault(drop.period, []).append(drop.__dict__)
        with StateStore(ws.state_db) as state:
            for period in state.unfinished_periods():  # stored, but never published
                by_period.setdefault(period, [])
            state.start_run(run_id, code_version(), ws.fingerprint_or_none())
        runners.report("discovered", drops=len(found.pending), periods=len(by_period))
        results = []
        status = "failed"
        try:
            if by_period:
                with runners.ingest_runner(ws) as task_runner:
                    process_period = period_flow.with_options(task_runner=task_runner)
                    for period in sorted(by_period):
                        results.append(process_period(str(ws.root), period,
                                                      by_period[period], run_id, as_of_date,
                                                      seed))
            status = "completed"
        finally:
            with StateStore(ws.state_db) as state:
                state.finish_run(run_id, status, sorted(by_period))
    summary = {"run_id": run_id, "periods": results, "refused": found.refused,
               "unchanged": found.unchanged}
    create_markdown_artifact(key="pathlink-run-summary", markdown=run_summary_markdown(summary),
                             description=f"Pathlink run {run_id}: counts only, no PII")
    return summary


def run_summary_markdown(summary: dict[str, Any]) -> str:
    """A run's summary for the Prefect UI: files, row counts, links and releases (no PII)."""
    lines = [f"# Pathlink run {summary['run_id']}", ""]
    if not summary["periods"]:
        lines.append(f"Nothing new to process ({summary['unchanged']} files unchanged).")
    for period in summary["periods"]:
        lines += [f"## Period {period['period']}", "",
                  "| file | status | read | accepted | quarantined |", "|---|---|---:|---:|---:|"]
        for drop in period["drops"]:
            lines.append(f"| {drop['rel_path']} | {drop['status']} | "
                         f"{drop.get('rows_read', '')} | {drop.get('rows_accepted', '')} | "
                         f"{drop.get('rows_quarantined', '')} |")
        link = period.get("link", {})
        lines += ["", f"Linked {link.get('records', 0)} records into {link.get('persons', 0)} "
                      f"persons ({link.get('matches', 0)} matching pairs, "
                      f"{link.get('possible', 0)} for clerical review, "
                      f"{link.get('id_events', 0)} person-ID events).", ""]
        note = rotation_note(link)
        if note:
            lines += [note, ""]
        published = period.get("published", {})
        if published:
            lines.append("Published: " + ", ".join(f"{k} {v}" for k, v in
                                                   sorted(published.items())) + ".")
            lines.append("")
    for refusal in summary["refused"]:
        lines.append(f"- refused: {refusal['file']}")
    return "\n".join(lines) + "\n"


def rotation_note(link: dict[str, Any]) -> str | None:
    """A line on key rotation for run summaries (counts only), or None when nothing to say."""
    parts = []
    if link.get("overlap_bridged") or link.get("overlap_old_only"):
        parts.append(f"overlap period: {link.get('overlap_bridged', 0)} partner records "
                     f"encoded under both keys ({link.get('overlap_persons_kept', 0)} kept "
                     f"their person), {link.get('overlap_old_only', 0)} sent only under the "
                     f"previous key, {link.get('overlap_new_only', 0)} only under the new key")
    if link.get("old_key_records"):
        parts.append(f"{link['old_key_records']} records known only under an earlier key keep "
                     "their persons but are not linked")
    return "Key rotation: " + "; ".join(parts) + "." if parts else None


def run_workspace(workspace: str | Path, *, as_of: str | None = None, seed: int | None = None,
                  wait_seconds: float = 0.0) -> dict[str, Any]:
    """Run the monthly flow (used by the CLI and tests)."""
    return monthly_flow(str(Path(workspace).resolve()), as_of=as_of, seed=seed,
                        wait_seconds=wait_seconds)
