"""`pathlink check` and the partner's validation report: verdict, counts, rows, fields, rules.

The report and the Great Expectations Data Docs name rows, fields and rules, never a value.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from data_contracts import DATASETS, contract_version, fix, load_contract
from data_contracts.compiler import suite_name
from pipelines import helpers
from pipelines.ingest.errors import FileRejected, safe_label
from pipelines.ingest.headers import HeaderMapping
from pipelines.ingest.landing import display_name
from pipelines.ingest.read import read_table
from pipelines.ingest.validate import (
    GX_LOCK,
    Issue,
    ValidationOutcome,
    issues_frame,
    validate_table,
)
from pipelines.workspace import IntakeLimits


@dataclass
class CheckReport:
    """`pathlink check` result for one file."""

    file: str
    dataset: str
    partner_id: str | None
    verdict: str
    reason: str | None
    counts: dict[str, int]
    issues: list[Issue]
    contract: str
    file_format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    outcome: ValidationOutcome | None = field(default=None, repr=False)
    header: HeaderMapping | None = field(default=None, repr=False)
    sheet: str | None = None


ISSUE_COLUMNS = ("file", "row", "field", "rule", "severity", "action", "fix")
SUMMARY_COLUMNS = ("rule", "field", "severity", "action", "rows", "fix")


# -- check reports and data docs --------------------------------------------------------------
def _partner_setting(config: Any, name: str) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    return getattr(config, name, None)


def check_file(path: Path, dataset: str, *, partner_id: str | None = None,
               partner_config: Any = None, as_of: date,
               max_quarantine_share: float = 0.5, engine: str = "vectorised",
               limits: IntakeLimits | None = None) -> CheckReport:
    """Read and validate one file for `pathlink check` (never raises for bad data).

    `partner_config` may be a `PartnerConfig`-like object or mapping with `columns`
    (header map), `values` (value map), `sheet` and `age_range`. Without it, headers are still
    matched by the contract's names and aliases. `engine="gx"` validates with Great
    Expectations instead of the vectorised pass (the same rows by the same rules).
    """
    path = Path(path)
    name = display_name(path)
    try:
        contract = contract_version(dataset)
    except KeyError:
        return CheckReport(name, dataset, partner_id, "rejected",
                           f"{name}: unknown dataset; expected one of {', '.join(DATASETS)}",
                           {"read": 0, "accepted": 0, "quarantined": 0},
                           [Issue(0, "", "unknown_dataset", "error",
                                  "The dataset name is not one of the contracts.")], "")
    age_range = _partner_setting(partner_config, "age_range")
    try:
        read = read_table(path, column_map=_partner_setting(partner_config, "columns"),
                          value_map=_partner_setting(partner_config, "values"),
                          dataset=dataset, source_name=name,
                          sheet=_partner_setting(partner_config, "sheet"), limits=limits)
        outcome = validate_table(read.frame, dataset, partner_id=partner_id, as_of=as_of,
                                 age_range=tuple(age_range) if age_range else None,
                                 max_quarantine_share=max_quarantine_share, source_name=name,
                                 engine=engine)
    except FileRejected as exc:
        issue = Issue(exc.row or 0, exc.field or "", exc.code, "error", exc.reason)
        return CheckReport(name, dataset, partner_id, "rejected", str(exc),
                           {"read": 0, "accepted": 0, "quarantined": 0}, [issue], contract)
    return CheckReport(name, dataset, partner_id, outcome.file_verdict,
                       outcome.reject_reason, dict(outcome.counts), outcome.issues, contract,
                       read.file_format, read.encoding, read.delimiter, outcome,
                       header=read.header, sheet=read.sheet)


def issue_rows(report: CheckReport) -> list[dict[str, Any]]:
    """Every issue as a row: file, row, field, rule, severity, action and the plain-language
    fix from the reason vocabulary (never a value)."""
    if report.outcome is not None:
        frame = issues_frame(report.outcome)
        actions = list(frame["action"])
    else:
        actions = ["file_rejected"] * len(report.issues)
    return [{"file": report.file, "row": issue.row, "field": issue.field, "rule": issue.rule,
             "severity": issue.severity, "action": action,
             "fix": fix(issue.rule, issue.field) or issue.message}
            for issue, action in zip(report.issues, actions, strict=True)]


def summary_by_rule(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues counted by (rule, field, severity, action), most rows first."""
    counts: dict[tuple[str, str, str, str], set[Any]] = {}
    for row in rows:
        key = (row["rule"], row["field"], row["severity"], row["action"])
        counts.setdefault(key, set()).add((row.get("file"), row.get("period"), row["row"]))
    out = [{"rule": k[0], "field": k[1], "severity": k[2], "action": k[3], "rows": len(v),
            "fix": fix(k[0], k[1])} for k, v in counts.items()]
    return sorted(out, key=lambda r: (-r["rows"], r["rule"], r["field"]))


def render_check_report(report: CheckReport, *, max_issues: int = 200,
                        partner_id: str | None = None) -> str:
    """Plain text for partners: how the file was read, the verdict, counts, a summary by rule,
    then one line per issue (no values; `--format csv|json` lists every issue)."""
    lines = [f"File:      {report.file}", f"Dataset:   {report.dataset}"
             + (f" (contract {report.contract})" if report.contract else "")]
    if report.partner_id:
        lines.append(f"Partner:   {report.partner_id}")
    if report.file_format:
        detail = report.file_format
        if report.encoding:
            detail += f", {report.encoding}"
        if report.delimiter:
            detail += f", delimiter {report.delimiter!r}"
        if report.sheet:
            detail += f", sheet '{safe_label(report.sheet)}'"
        if report.header is not None:
            detail += f", header row {report.header.row}"
        lines.append(f"Read as:   {detail}")
    if report.header is not None:
        described = report.header.describe()
        lines.append(f"Columns:   {described[0]}" if described else "Columns:   none")
        lines += [f"           {line}" for line in described[1:]]
    verdict = report.verdict.upper()
    lines.append(f"Verdict:   {verdict}" + (f" - {report.reason}" if report.reason else ""))
    counts = report.counts
    lines.append(f"Rows:      read {counts.get('read', 0)}, accepted {counts.get('accepted', 0)}, "
                 f"quarantined {counts.get('quarantined', 0)}, with dropped fields "
                 f"{counts.get('rows_with_warnings', 0)}")
    rows = issue_rows(report)
    if rows:
        errors = sum(i.severity == "error" for i in report.issues)
        lines.append(f"Issues:    {errors} errors, {len(report.issues) - errors} warnings")
        lines += ["", "Summary by rule:",
                  f"  {'rows':>6}  {'rule':22}  {'field':20}  {'action':14}  fix"]
        for item in summary_by_rule(rows):
            lines.append(f"  {item['rows']:>6}  {item['rule']:22}  {item['field']:20}  "
                         f"{item['action']:14}  {item['fix']}")
        lines += ["", f"{'row':>7}  {'severity':8}  {'field':24}  {'rule':24}  message"]
        for issue in report.issues[:max_issues]:
            row = "file" if issue.row == 0 else str(issue.row)
            lines.append(f"{row:>7}  {issue.severity:8}  {issue.field:24}  {issue.rule:24}  "
                         f"{issue.message}")
        if len(report.issues) > max_issues:
            lines.append(f"... and {len(report.issues) - max_issues} more issues "
                         "(--format csv or json lists every one)")
    else:
        lines.append("Issues:    none")
    suggestions = report.header.suggestions(partner_id or report.partner_id) \
        if report.header is not None else []
    if suggestions:
        lines += ["", "Headers not placed; if one holds a contract field, add its line to "
                  "pathlink.toml (the analyst's workspace) and check again:"]
        lines += [f"  {line}" for line in suggestions]
    return "\n".join(lines) + "\n"


def check_report_json(report: CheckReport) -> str:
    """Everything `render_check_report` says, as JSON, with every issue."""
    rows = issue_rows(report)
    header = report.header
    doc = {
        "file": report.file, "dataset": report.dataset, "contract": report.contract,
        "partner_id": report.partner_id, "verdict": report.verdict, "reason": report.reason,
        "counts": report.counts, "format": report.file_format, "encoding": report.encoding,
        "delimiter": report.delimiter, "sheet": report.sheet,
        "header_row": header.row if header else None,
        "columns": ([{"header": m.label, "field": m.field, "matched_by": m.how}
                     for m in header.matches if m.header.strip() or m.field]
                    if header is not None and header.looks_like_header else None),
        "map_suggestions": header.suggestions(report.partner_id) if header else [],
        "summary": summary_by_rule(rows), "issues": rows,
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


def rows_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = ISSUE_COLUMNS) -> str:
    """Rows as CSV with a header line (every row; no cut-off)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_data_docs(gx_result: Any, out_dir: Path, *, title: str | None = None) -> Path:
    """Write GE Data Docs HTML (`index.html`) and `summary.md` for one validation.

    The result carries only `__row` ids (validated with `exclude_unexpected_values`), so the
    page shows which rules failed on how many rows, never a value.

    Returns:
        The path of index.html.
    """
    out_dir = Path(out_dir)
    index = _render_index(gx_result, out_dir)
    stats = gx_result.statistics or {}
    failed = []
    for result in gx_result.results:
        if result.success:
            continue
        meta = result.expectation_config.meta or {}
        failed.append((meta.get("field", ""), meta.get("code", ""), meta.get("severity", ""),
                       (result.result or {}).get("unexpected_count", 0)))
    _write_summary(out_dir, title, gx_result.suite_name, gx_result.success,
                   stats.get("evaluated_expectations", 0),
                   stats.get("unsuccessful_expectations", 0), failed)
    return index


def _render_index(gx_result: Any, out_dir: Path) -> Path:
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from data_contracts.compiler import gx_context

    out_dir.mkdir(parents=True, exist_ok=True)
    with GX_LOCK:
        gx_context()
        document = ValidationResultsPageRenderer().render(gx_result)
        html = DefaultJinjaPageView().render(document)
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def _write_summary(out_dir: Path, title: str | None, suite: str, success: bool,
                   evaluated: int, unsuccessful: int,
                   failed: list[tuple[str, str, str, int]]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title or 'Validation summary'}", "",
             f"- suite: {suite}",
             f"- success: {success}",
             f"- expectations: {evaluated} evaluated, {unsuccessful} failed", "",
             "| field | rule | severity | rows |", "|---|---|---|---|"]
    lines += [f"| {field_} | {code} | {severity} | {rows} |"
              for field_, code, severity, rows in failed]
    path = out_dir / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the partner's report during a run -----------------------------------------------------------
_PENDING: list[tuple[Path, Future]] = []
_PENDING_LOCK = threading.Lock()


def _render_vectorised(dataset: str, age_range: tuple[int, int] | None, results: list[Any],
                       out_dir: str) -> str:
    """Helper-process job: GE's Data Docs page from the vectorised pass's results."""
    from data_contracts import load_contract
    from data_contracts.compiler import gx_validation_result

    gx_result = gx_validation_result(load_contract(dataset), results, age_range=age_range)
    return str(_render_index(gx_result, Path(out_dir)))


def warm_up_renderer() -> None:
    """Helper-process job run at the start of a run: import what the helper's jobs need before
    they arrive (normalization comes with this module, then GE's renderer)."""
    from great_expectations.render.renderer import ValidationResultsPageRenderer  # noqa: F401
    from great_expectations.render.view import DefaultJinjaPageView  # noqa: F401

    from data_contracts.compiler import gx_context

    gx_context()


def write_partner_report(outcome: ValidationOutcome, out_dir: Path, *,
                         title: str | None = None) -> None:
    """The report sent back to the partner: `summary.md` now, GE's `index.html` in the helper
    process when there is one (`wait_partner_reports` waits for it), else now.

    Rules and row numbers only, never values.
    """
    out_dir = Path(out_dir)
    if outcome.engine != "vectorised" or outcome.check_results is None:
        write_data_docs(outcome.gx_result, out_dir, title=title)
        return
    results = outcome.check_results
    failed = [(r.check.rule.column, r.check.rule.code, r.check.rule.severity,
               r.unexpected_count) for r in results if not r.success]
    contract = load_contract(outcome.dataset)
    _write_summary(out_dir, title, suite_name(contract), not failed, len(results), len(failed),
                   failed)
    pool = helpers.helper()
    if pool is None:
        _render_vectorised(outcome.dataset, outcome.age_range, results, str(out_dir))
        return
    future = pool.submit(_render_vectorised, outcome.dataset, outcome.age_range, results,
                         str(out_dir))
    with _PENDING_LOCK:
        _PENDING.append((out_dir, future))


def wait_partner_reports() -> int:
    """Wait for the reports being rendered in the helper process; how many were written.

    Raises:
        RuntimeError: a report could not be rendered (names its folder, never a value).
    """
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    for out_dir, future in pending:
        try:
            future.result()
        except Exception as exc:
            raise RuntimeError(f"the partner report in {out_dir} could not be rendered: "
                               f"{type(exc).__name__}") from None
    return len(pending)
