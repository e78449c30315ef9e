"""Deployment helpers: serve the monthly flow on its schedule without a separate worker."""

from __future__ import annotations

from pathlib import Path

from prefect.schedules import Cron

from pipelines.orchestration.flows import monthly_flow
from pipelines.workspace import load_workspace

DEFAULT_CRON = "0 6 5 * *"  # the 5th of each month, 06:00
DEFAULT_TIMEZONE = "America/New_York"


def schedule_for(workspace: Path) -> Cron:
    """The workspace's schedule (`[schedule] cron`, `timezone`), defaulting to the 5th, 06:00."""
    raw = load_workspace(workspace).raw.get("schedule", {})
    return Cron(raw.get("cron", DEFAULT_CRON), timezone=raw.get("timezone", DEFAULT_TIMEZONE))


def serve(workspace: Path, *, name: str = "monthly") -> None:
    """Serve `pathlink-monthly` for one workspace on its cron schedule (blocks)."""
    root = load_workspace(workspace).root
    monthly_flow.serve(
        name=name,
        schedules=[schedule_for(root)],
        parameters={"workspace": str(root)},
        tags=["pathlink"],
        global_limit=1,
        description="Process every unprocessed period in landing/, then publish.",
    )
