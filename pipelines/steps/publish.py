"""Publish: gather the de-identified inputs from the restricted state, write the release.

`warehouse.publish.publish` builds the analyst warehouse (state/warehouse.duckdb) and the
aggregates-only published file, each next to its current version and swapped in atomically;
the HTML report is written from the released relations only.
"""

from __future__ import annotations

from linkage.encode import load_encoding_schema
from linkage.spec import SPEC_VERSION
from pipelines.faults import crash_point
from pipelines.records import WAGE_MATCH_TOKENS
from pipelines.state import StateStore, now_utc
from pipelines.steps.context import RunContext
from pipelines.steps.review import report_accuracy
from pipelines.warehouse.publish import RECORD_COLUMNS, PublishInputs, publish
from pipelines.warehouse.report import write_report
from pipelines.workspace.modes import open_release


def publish_inputs(run: RunContext) -> PublishInputs:
    """Everything the release is built from, read in one state transaction."""
    ws = run.ws
    with StateStore(ws.state_db) as state:
        return PublishInputs(
            crosswalk=state.crosswalk(),
            records=state.latest_records(ws.fingerprint_or_none(), columns=RECORD_COLUMNS),
            record_periods=state.record_periods(),
            partners={p.partner_id: p.name or p.partner_id for p in ws.partners.values()},
            id_history=state.id_history(),
            run_id=run.run_id,
            periods=sorted(state.processed_periods()),
            code_version=run.code_version,
            linkage_spec=SPEC_VERSION,
            encoding_schema=load_encoding_schema().id,
            published_at=now_utc(),
            events=state.event_rows(),
            small_cell_threshold=ws.small_cell_threshold,
            match_records=state.token_records(WAGE_MATCH_TOKENS),
            datasets_sent=state.datasets_sent(),
            release=ws.release,
            roi=ws.roi,
        )


def publish_release(run: RunContext) -> dict[str, int]:
    """Write the de-identified release, swap it in atomically, then the evaluator report.

    Returns:
        Row counts per published table.
    """
    crash_point("publish:start")
    counts = publish(publish_inputs(run), run.ws.published_db, warehouse=run.ws.warehouse_db)
    crash_point("publish:replaced")
    write_report(run.ws.published_db, run.ws.published_db.parent / "report.html",
                 linkage_accuracy=report_accuracy(run.ws))
    open_release(run.ws.published_db.parent)  # the evaluators' files: 0644 in a 0755 folder
    return counts
