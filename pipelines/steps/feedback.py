"""`pathlink feedback`: what a partner should fix in its latest drops, from the ledger.

Row numbers, fields, reason codes and the plain-language fix of each (the vocabulary in
`data_contracts/reasons.yaml`); never a value: the ledger holds none.
"""

from __future__ import annotations

import json
from typing import Any

from data_contracts import fix
from pipelines.ingest.check import rows_csv, summary_by_rule
from pipelines.state import StateStore
from pipelines.workspace import Workspace, WorkspaceError

FEEDBACK_COLUMNS = ("period", "file", "row", "field", "rule", "severity", "action", "fix")


def partner_feedback(ws: Workspace, partner_id: str, period: str | None = None
                     ) -> dict[str, Any]:
    """The latest file of each dataset the partner dropped for `period` (default: its most
    recent period), with every recorded issue and a summary by rule.

    Raises:
        WorkspaceError: the partner is not registered, or has no processed file (for the
            period).
    """
    ws.partner(partner_id)
    with StateStore(ws.state_db) as state:
        files = state.partner_files(partner_id)
        if files.empty:
            raise WorkspaceError(f"partner '{partner_id}' has no processed drop yet")
        if period is None:
            period = str(files["period"].max())
        here = files[(files["period"] == period) & (files["status"] != "superseded")]
        if here.empty:
            raise WorkspaceError(f"partner '{partner_id}' has no processed drop for {period} "
                                 f"(periods: {', '.join(sorted(set(files['period'])))})")
        latest = here.drop_duplicates(["dataset"], keep="first")
        out_files, rows = [], []
        for item in latest.to_dict(orient="records"):
            name = str(item["rel_path"])
            out_files.append({
                "file": name, "dataset": item["dataset"], "status": item["status"],
                "reason": item["reason"], "rows_read": _int(item["rows_read"]),
                "rows_accepted": _int(item["rows_accepted"]),
                "rows_quarantined": _int(item["rows_quarantined"]),
                "contract": item["contract"]})
            for issue in state.file_issues(str(item["sha256"])).to_dict(orient="records"):
                rows.append({"period": period, "file": name, "row": int(issue["source_row"]),
                             "field": issue["field"], "rule": issue["rule"],
                             "severity": issue["severity"], "action": issue["action"],
                             "fix": fix(str(issue["rule"]), str(issue["field"]))})
    return {"partner_id": partner_id, "period": period, "files": out_files,
            "summary": summary_by_rule(rows), "issues": rows}


def _int(value: Any) -> int | None:
    return None if value is None or value != value else int(value)


def render_feedback(feedback: dict[str, Any], fmt: str) -> str:
    """The feedback as `csv` (every issue), `json` (everything) or `text` (for a person)."""
    if fmt == "csv":
        return rows_csv(feedback["issues"], FEEDBACK_COLUMNS)
    if fmt == "json":
        return json.dumps(feedback, indent=2, default=str) + "\n"
    lines = [f"Feedback for {feedback['partner_id']}, period {feedback['period']}",
             "Row numbers are those of your file (the header row counts); no values are "
             "shown.", ""]
    for item in feedback["files"]:
        lines.append(f"{item['file']}: {item['status']}; rows read {item['rows_read']}, "
                     f"accepted {item['rows_accepted']}, quarantined "
                     f"{item['rows_quarantined']}")
        if item["reason"] and item["status"] == "rejected":
            lines.append(f"  why: {item['reason']}")
    if not feedback["issues"]:
        lines += ["", "Nothing to fix."]
        return "\n".join(lines) + "\n"
    lines += ["", "What to fix, by rule:"]
    for item in feedback["summary"]:
        where = "the whole file" if item["action"] == "file_rejected" else \
            f"{item['rows']} row(s)"
        lines.append(f"  {item['rule']} in {item['field'] or 'the file'}: {where}, "
                     f"{item['action'].replace('_', ' ')}. {item['fix']}")
    lines += ["", f"{'row':>6}  {'field':22}  {'rule':22}  action"]
    for issue in feedback["issues"]:
        row = "file" if issue["row"] == 0 else str(issue["row"])
        lines.append(f"{row:>6}  {issue['field']:22}  {issue['rule']:22}  "
                     f"{issue['action'].replace('_', ' ')}")
    return "\n".join(lines) + "\n"
