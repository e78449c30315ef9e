"""A release is only replaced by a better-founded one.

Before a period's release is written: a period in which nothing was accepted, or a release
whose person count would fall by more than `[thresholds] max_person_drop` (a share) below the
one published, is held back. The evaluators keep the release they have, the run says why and
ends with a non-zero status; `pathlink run --allow-shrink` publishes anyway. Counts only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipelines.state import StateStore
from pipelines.steps.context import RunContext

NOTHING_ACCEPTED = "nothing_accepted"
SHRINK = "shrink"


@dataclass(frozen=True)
class Hold:
    """Why a period's release was not published (no PII: counts and file statuses)."""

    period: str
    kind: str  # nothing_accepted | shrink
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _file_counts(drops: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for drop in drops:
        status = drop.get("status", "failed")
        if status == "accepted" and not int(drop.get("rows_accepted") or 0):
            status = "accepted with no rows"
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def release_guard(run: RunContext, period: str, drops: list[dict[str, Any]],
                  persons: int, *, allow_shrink: bool = False) -> Hold | None:
    """Whether the release after linking `period` (holding `persons` persons) may replace
    the published one.

    Args:
        drops: this run's outcomes for the period's files (empty when the run finishes a
            period an interrupted run stored: then the ledger says what was accepted).
        persons: persons the new release would hold (the link step's count).
        allow_shrink: publish anyway (`pathlink run --allow-shrink`).

    Returns:
        None to publish, or the hold (also recorded in the state's `periods` table).
    """
    if allow_shrink:
        return None
    ws = run.ws
    with StateStore(ws.state_db) as state:
        published = state.published_persons()
        if drops:
            accepted = sum(int(d.get("rows_accepted") or 0) for d in drops
                           if d.get("status") == "accepted")
        else:
            accepted = state.accepted_rows(period)
        hold = None
        if not accepted:
            what = (f"{len(drops)} file(s): {_file_counts(drops)}" if drops else
                    "no accepted file in the ledger")
            hold = Hold(period, NOTHING_ACCEPTED,
                        f"period {period}: nothing was accepted ({what}); the published "
                        "release is left as it was. Fix the drops and run again (pathlink "
                        "status / feedback say why), or pass --allow-shrink to publish anyway")
        elif published is not None and persons < published * (1 - ws.max_person_drop):
            fall = 1 - persons / published if published else 0.0
            hold = Hold(period, SHRINK,
                        f"period {period}: the release would hold {persons} persons, {fall:.0%} "
                        f"fewer than the {published} published (more than the "
                        f"{ws.max_person_drop:.0%} allowed by [thresholds] max_person_drop); "
                        "nothing was published. If the fall is expected (e.g. a partner "
                        "withdrew records), run again with --allow-shrink")
        elif published is None and persons == 0:
            hold = Hold(period, SHRINK,
                        f"period {period}: the release would hold no person; nothing was "
                        "published. Pass --allow-shrink to publish an empty release")
        if hold is not None:
            state.hold_period(period, run.run_id, hold.kind, hold.reason)
    return hold


__all__ = ["NOTHING_ACCEPTED", "SHRINK", "Hold", "release_guard"]
