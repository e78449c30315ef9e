"""Intake: landing paths, reading partner files, contract validation, encoded drops.

Each module is one concern: `landing` (where a drop is and whose it is), `read` (a file as
text), `validate` (the contract's verdict per row), `check` (`pathlink check` and the
partner's report), `encoded` (partner-side encoded drops), `events` (event rows for the
restricted state), `batch` (encoded records with their provenance). The names below are the
package's public surface.
"""

from __future__ import annotations

from data_contracts import contract_version
from pipelines.ingest.batch import EncodedBatch, encoded_batch
from pipelines.ingest.check import (
    CheckReport,
    check_file,
    check_report_json,
    issue_rows,
    render_check_report,
    rows_csv,
    summary_by_rule,
    wait_partner_reports,
    warm_up_renderer,
    write_data_docs,
    write_partner_report,
)
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.landing import (
    FORMATS,
    PARTNER_RE,
    PERIOD_RE,
    DropRef,
    display_name,
    parse_drop_path,
    sha256_file,
)
from pipelines.ingest.read import ReadResult, canonical_header, read_table
from pipelines.ingest.validate import (
    ENGINES,
    Issue,
    ValidationOutcome,
    issues_frame,
    run_gx,
    validate_table,
)

__all__ = [
    "ENGINES",
    "FORMATS",
    "PARTNER_RE",
    "PERIOD_RE",
    "CheckReport",
    "DropRef",
    "EncodedBatch",
    "FileRejected",
    "Issue",
    "ReadResult",
    "ValidationOutcome",
    "canonical_header",
    "check_file",
    "check_report_json",
    "contract_version",
    "display_name",
    "encoded_batch",
    "issue_rows",
    "issues_frame",
    "parse_drop_path",
    "read_table",
    "render_check_report",
    "rows_csv",
    "run_gx",
    "sha256_file",
    "summary_by_rule",
    "validate_table",
    "wait_partner_reports",
    "warm_up_renderer",
    "write_data_docs",
    "write_partner_report",
]
