"""A run's bookkeeping: open it (recover, discover, plan periods), mark periods, close it.

The order is what makes a killed run safe to start again: a period counts as done only once
its release is swapped in (`mark_published`), so a run killed before that links and
publishes the period again.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pipelines.state import StateStore, cleanup_interrupted
from pipelines.steps.context import RunContext
from pipelines.steps.discover import Discovery, discover, reprocess_targets
from pipelines.steps.keys import KeyPinError, check_keys
from pipelines.workspace import Workspace

WHY = {
    "new": "a new file",
    "corrected": "replaces the partner's earlier file for this period",
    "map_changed": "the partner's map, values, sheet or age range changed since it was read",
    "contract_changed": "the dataset's contract version changed since it was read",
    "reprocess_requested": "asked for with --reprocess",
}


@dataclass
class RunPlan:
    """What a run will do: the periods to process (oldest first) and their drops."""

    discovery: Discovery
    interrupted: list[str] = field(default_factory=list)
    by_period: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    @property
    def periods(self) -> list[str]:
        return sorted(self.by_period)


def open_run(run: RunContext, reprocess: list[str] | tuple[str, ...] = ()) -> RunPlan:
    """Start a run under the writer lock (the caller holds it).

    Removes what a killed run left, finds the pending drops, adds every period a killed run
    stored but did not publish, and, when nothing else is to be done but review decisions
    were made since the last link, the last linked period (so the decisions take effect), and
    records the run as `running`.
    """
    ws = run.ws
    targets = reprocess_targets(list(reprocess), ws)  # refuses an unknown partner first
    interrupted = cleanup_interrupted(ws)
    found = discover(ws, run.as_of, targets)
    plan = RunPlan(found, interrupted)
    for drop in found.pending:
        plan.by_period.setdefault(drop.period, []).append(drop.as_params())
    with StateStore(ws.state_db) as state:
        for period in state.unfinished_periods():  # stored, but never published
            plan.by_period.setdefault(period, [])
        review_period = state.decisions_since_link()
        if review_period is not None and not plan.by_period:  # a new period applies them too
            plan.by_period[review_period] = []
        state.start_run(run.run_id, run.code_version, ws.fingerprint_or_none())
    return plan


def close_run(run: RunContext, status: str, periods: list[str]) -> None:
    """Record how the run ended (`completed` or `failed`) and the periods it covered."""
    with StateStore(run.ws.state_db) as state:
        state.finish_run(run.run_id, status, periods)


def mark_linked(run: RunContext, period: str) -> None:
    """The period's drops are linked; its release is about to be written."""
    with StateStore(run.ws.state_db) as state:
        state.mark_period(period, run.run_id)


def mark_published(run: RunContext, period: str, persons: int | None = None) -> None:
    """The release including `period` (holding `persons` persons) is swapped in: only now is
    the period done."""
    with StateStore(run.ws.state_db) as state:
        state.mark_published(period, run.run_id, persons)


def preview_run(ws: Workspace, as_of: date, reprocess: list[str] | tuple[str, ...] = ()
                ) -> dict[str, Any]:
    """What `pathlink run` would do now, without reading a drop, writing or publishing
    (`pathlink run --dry-run`): the files it would process per period and why, the periods
    an interrupted run left to finish, held periods, refused files, and whether the key check
    would stop it.
    """
    targets = reprocess_targets(list(reprocess), ws)
    try:
        check_keys(ws, pin_unpinned=False)
        key_problem = None
    except KeyPinError as exc:
        key_problem = str(exc)
    unfinished: list[str] = []
    held: list[dict[str, Any]] = []
    if ws.state_db.is_file():
        found = discover(ws, as_of, targets)
        with StateStore(ws.state_db) as state:
            unfinished = state.unfinished_periods()
            held = state.held_periods()
    else:  # no ledger yet: discover against an empty one, and leave the workspace as it is
        with tempfile.TemporaryDirectory(prefix="pathlink-dry-run-") as tmp:
            found = discover(ws, as_of, targets, state_db=Path(tmp) / "state.duckdb")
    periods: dict[str, list[dict[str, str]]] = {}
    for drop in found.pending:
        periods.setdefault(drop.period, []).append(
            {"file": drop.rel_path, "partner_id": drop.partner_id, "dataset": drop.dataset,
             "why": drop.why, "explained": WHY.get(drop.why, drop.why)})
    for period in unfinished:
        periods.setdefault(period, [])
    return {
        "workspace": str(ws.root),
        "periods": [{"period": p, "files": periods[p], "finish": p in unfinished}
                    for p in sorted(periods)],
        "held": [{k: (str(v) if k == "held_at" else v) for k, v in h.items()} for h in held],
        "refused": found.refused,
        "unchanged": found.unchanged,
        "key_problem": key_problem,
    }
