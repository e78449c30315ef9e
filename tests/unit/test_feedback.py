"""`pathlink feedback` as text: a file-level refusal reads as the whole file, not as rows."""

from __future__ import annotations

from data_contracts import fix
from pipelines.ingest.check import summary_by_rule
from pipelines.steps.feedback import render_feedback


def _feedback(issues: list[dict]) -> dict:
    return {"partner_id": "nfc", "period": "2026-10", "summary": summary_by_rule(issues),
            "issues": issues,
            "files": [{"file": "nfc/2026-10/participants.csv", "dataset": "participants",
                       "status": "rejected", "reason": "missing required column(s): "
                       "partner_record_id", "rows_read": 5, "rows_accepted": 0,
                       "rows_quarantined": 5, "contract": "participants@1.1.0"}]}


def _issue(row: int, field: str, rule: str, action: str, severity: str = "error") -> dict:
    return {"period": "2026-10", "file": "nfc/2026-10/participants.csv", "row": row,
            "field": field, "rule": rule, "severity": severity, "action": action,
            "fix": fix(rule, field)}


def test_a_rejected_file_is_named_as_the_whole_file() -> None:
    text = render_feedback(_feedback([_issue(0, "partner_record_id", "missing_column",
                                             "file_rejected")]), "text")
    assert "missing_column in partner_record_id: the whole file, file rejected. Add the " \
        "column" in text
    assert "row(s)" not in text
    assert "  why: missing required column(s): partner_record_id" in text
    assert "  file  partner_record_id" in text


def test_row_issues_are_counted_in_rows() -> None:
    issues = [_issue(r, "date_of_birth", "two_digit_year", "field_dropped", "warning")
              for r in (3, 4, 7)]
    text = render_feedback(_feedback(issues), "text")
    assert "two_digit_year in date_of_birth: 3 row(s), field dropped. Write the year" in text
    assert render_feedback(_feedback(issues), "csv").count("two_digit_year") == 3
