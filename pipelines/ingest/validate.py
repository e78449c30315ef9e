"""Validate a read file against its data contract: accept or quarantine every row.

`validate_table` checks a frame from `pipelines.ingest.read.read_table` against the checks
compiled from `data_contracts/<dataset>.yaml` and splits it into accepted and quarantined rows.
Two engines evaluate the same compiled checks on the same prepared frame: the vectorised pass
(`data_contracts.vectorised`, the default: one pass, text checks once per distinct value) and
Great Expectations (`engine="gx"`: the suite partners run themselves). They find the same rows
by the same rules (tests/unit/test_check_engines.py); the partner's Data Docs are GE's renderer
over either engine's results (`ValidationOutcome.gx_result`, built on first use, so GE is
imported only when a report is written or GE validates). Dates and SSNs are judged by the one
rule set in `linkage.normalize` (`parse_date`, `date_issue`, `ssn_issue`). Nothing here ever
puts a data value into a message: issues, exceptions and reports name only the file, row,
field and rule.

Decisions (see docs/contracts.md):
- A header-only file is accepted with 0 rows ("nothing this period") and reported.
- Completely empty rows are skipped (not counted as read).
- Duplicate keys: exact duplicate rows keep the first and quarantine the rest
  (`duplicate_row`); rows sharing a key but differing elsewhere are all quarantined
  (`conflicting_duplicate`): we cannot know which one is right.
- Severity `warning` keeps the row and nulls the field in `accepted`; `error` quarantines.
- A rejected file (missing required column, too many bad rows) publishes nothing: every row
  moves to `quarantined`, so read == accepted + quarantined still holds.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from data_contracts import Contract, Rule, contract_version, load_contract
from data_contracts.compiler import (
    NUMBER_REGEX,
    READ_ISSUE_COLUMN,
    ROW_COLUMN,
    all_rules,
    checks,
    compile_suite,
    derivations,
    derived_column,
    gx_context,
    gx_validation_result,
    suite_name,
)
from data_contracts.vectorised import evaluate
from linkage.normalize import date_issue, parse_date, ssn_issue
from pipelines.ingest.errors import FileRejected, safe_label
from pipelines.ingest.read import cell_text

ROW = ROW_COLUMN
REASONS = "reasons"

_NUMBER = re.compile(NUMBER_REGEX)

_RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": [ROW],
                  "exclude_unexpected_values": True}


@dataclass(frozen=True)
class Issue:
    """One finding. `row` is the partner's row number (0 = the whole file)."""

    row: int
    field: str
    rule: str
    severity: str  # "error" | "warning"
    message: str


#: The engines `validate_table` can check a file with.
ENGINES = ("vectorised", "gx")


@dataclass
class ValidationOutcome:
    """What validation decided for one file. `read == accepted + quarantined` always."""

    dataset: str
    source_name: str
    contract: str
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    issues: list[Issue]
    counts: dict[str, int]
    check_results: Any  # list of CheckResult (vectorised), a GE result (gx), or None
    file_verdict: str  # "accepted" | "rejected"
    reject_reason: str | None = None
    partner_id: str | None = None
    period: str | None = None
    age_range: tuple[int, int] | None = None
    engine: str = "vectorised"
    _gx_result: Any = field(default=None, repr=False)

    def raise_if_rejected(self) -> None:
        if self.file_verdict != "accepted":
            raise FileRejected(self.source_name, self.reject_reason or "rejected")

    @property
    def gx_result(self) -> Any:
        """The GE validation result (row ids only), built from the vectorised pass's results
        on first use; None when no check ran (a file rejected for its header)."""
        if self.check_results is None:
            return None
        if self.engine == "gx":
            return self.check_results
        if self._gx_result is None:
            self._gx_result = gx_validation_result(
                load_contract(self.dataset), self.check_results, age_range=self.age_range)
        return self._gx_result

    def gx_result_json(self) -> dict[str, Any] | None:
        result = self.gx_result
        return None if result is None else result.to_json_dict()


# -- preparing the frame -----------------------------------------------------------------------
def _map_unique(series: pd.Series, func: Callable[[Any], Any], dtype: Any = object
                ) -> np.ndarray:
    """`func` once per distinct non-null value, spread back over the rows (nulls: func(None)).

    The rules below depend on the value alone, so this equals `series.map(func)`.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.empty(len(uniques) + 1, dtype=dtype)
    for position, value in enumerate(uniques):
        mapped[position] = func(value)
    mapped[-1] = func(None)
    return mapped[codes]


def _date_issue(text: Any, *, as_of: date, not_future: bool, earliest: date | None,
                early_code: str) -> str | None:
    if not isinstance(text, str):
        return None
    parsed = parse_date(text)
    if parsed is None:
        return date_issue(text)
    if not_future and parsed > as_of:
        return "future"
    if earliest is not None and parsed < earliest:
        return early_code
    return None


def _period_start(period: str | None, as_of: date) -> date:
    """Ages are judged at the start of the drop's period (the extract's month), else as_of."""
    if period and re.fullmatch(r"\d{4}-\d{2}", period):
        start = date(int(period[:4]), int(period[5:]), 1)
        return min(start, as_of)
    return as_of


def _age(text: Any, as_of: date) -> float:
    parsed = parse_date(text) if isinstance(text, str) else None
    if parsed is None or parsed > as_of:
        return math.nan
    years = as_of.year - parsed.year - ((as_of.month, as_of.day) < (parsed.month, parsed.day))
    return float(years)


def _number(text: Any) -> float:
    if not isinstance(text, str) or not _NUMBER.match(text):
        return math.nan
    try:
        return float(text.replace("$", "").replace(",", ""))
    except ValueError:
        return math.nan


def _duplicates(frame: pd.DataFrame, keys: list[str], columns: list[str]) -> pd.Series:
    """`duplicate_row` for the 2nd.. copies of an exact duplicate, `conflicting_duplicate` for
    every row of a key whose rows differ; None elsewhere (rows missing a key part: None)."""
    out = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    present = frame[keys].notna().all(axis=1)
    subset = frame.loc[present]
    if subset.empty:
        return out
    key_frame = subset[keys].astype(str)
    dup_mask = key_frame.duplicated(keep=False)
    if not dup_mask.any():
        return out
    dups = subset.loc[dup_mask]
    key_id = dups.groupby(keys, sort=False, dropna=True).ngroup()
    body = dups[columns].astype(str).where(dups[columns].notna(), "\x00none")
    distinct_bodies = body.assign(__key=key_id.to_numpy()).drop_duplicates() \
        .groupby("__key").size()
    conflicting = key_id.map(distinct_bodies).to_numpy() > 1
    later_copy = key_id.duplicated(keep="first").to_numpy()
    codes = np.where(conflicting, "conflicting_duplicate",
                     np.where(later_copy, "duplicate_row", None))
    out.loc[dups.index] = codes
    return out


def _add_derived(frame: pd.DataFrame, contract: Contract, as_of: date,
                 age_reference: date | None = None) -> None:
    age_at = age_reference or as_of
    for derivation in derivations(contract):
        rule, column = derivation.rule, derivation.column
        if derivation.kind == "read_issue":
            if column not in frame.columns:
                frame[column] = None
            continue
        source = frame[rule.column]
        if derivation.kind == "date_issue":
            earliest = rule.params.get("min")
            earliest_date = date.fromisoformat(str(earliest)) if earliest else None
            frame[column] = _map_unique(source, lambda v, r=rule, e=earliest_date: _date_issue(
                v, as_of=as_of, not_future=bool(r.params.get("notFuture", False)), earliest=e,
                early_code=str(r.params.get("tooEarlyCode", "too_early"))))
        elif derivation.kind == "age":
            ages = pd.Series(_map_unique(source, lambda v: _age(v, age_at), float),
                             index=frame.index)
            date_issue = f"__date_issue__{rule.column}"
            if date_issue in frame.columns:  # no age for a date already flagged
                ages = ages.where(frame[date_issue].isna())
            frame[column] = ages
        elif derivation.kind == "ssn_issue":
            frame[column] = _map_unique(
                source, lambda v: ssn_issue(v) if isinstance(v, str) else None)
        elif derivation.kind == "number":
            frame[column] = _map_unique(source, _number, float)
        elif derivation.kind == "duplicate":
            frame[column] = _duplicates(frame, list(rule.columns), contract.columns)
        elif derivation.kind == "order_issue":
            other = str(rule.params["other"])
            starts = _map_unique(source, lambda x: parse_date(x) if isinstance(x, str) else None)
            ends = _map_unique(frame[other],
                               lambda y: parse_date(y) if isinstance(y, str) else None)
            frame[column] = np.array(
                [rule.code if a and b and a < b else None
                 for a, b in zip(starts, ends, strict=True)], dtype=object)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = cell_text(value)
    value = value.strip().lstrip("\ufeff").strip()
    return value or None


def _canonical_codes(frame: pd.DataFrame, contract: Contract) -> None:
    """Match allowed values case-insensitively (and via synonyms) to the contract's spelling."""
    for rule in contract.rules:
        if rule.rule != "allowedValues":
            continue
        prop = contract.property(rule.column)
        lookup = {str(k).casefold(): str(v) for k, v in prop.synonyms.items()}
        lookup.update({str(v).casefold(): str(v) for v in rule.params["values"]})
        separator = rule.params.get("separator")

        def fix(value: Any, lookup: dict[str, str] = lookup, sep: Any = separator) -> Any:
            if not isinstance(value, str):
                return value
            if sep:
                parts = [p.strip() for p in value.split(str(sep)) if p.strip()]
                return str(sep).join(lookup.get(p.casefold(), p) for p in parts) or None
            return lookup.get(value.casefold(), value)

        frame[rule.column] = _map_unique(frame[rule.column], fix)


def prepare(work: pd.DataFrame, contract: Contract, *, as_of: date,
            period: str | None = None) -> pd.DataFrame:
    """The frame both engines check: cleaned contract columns, canonical codes, `__row`,
    `__read_issue` and the derived columns (`derivations(contract)`). Modifies `work`."""
    for col in contract.columns:
        work[col] = _map_unique(work[col], _clean) if col in work.columns else None
    _canonical_codes(work, contract)
    if READ_ISSUE_COLUMN not in work.columns:
        work[READ_ISSUE_COLUMN] = None
    work[READ_ISSUE_COLUMN] = work[READ_ISSUE_COLUMN].astype(object)
    _add_derived(work, contract, as_of, _period_start(period, as_of))
    return work.astype({c: object for c in contract.columns})


# -- the engines --------------------------------------------------------------------------------
GX_LOCK = threading.RLock()

_SUITES: dict[tuple[str, tuple[int, int] | None, frozenset[str]], Any] = {}


def _suite(contract: Contract, age_range: tuple[int, int] | None, frame: pd.DataFrame) -> Any:
    """The compiled suite, leaving out checks on columns that are empty in this file.

    A check on an all-empty column passes trivially except `notNull`, which is always kept.
    """
    skip = frozenset(
        check.rule.id for check in checks(contract, age_range=age_range)
        if check.expectation != "ExpectColumnValuesToNotBeNull"
        and frame[check.kwargs["column"]].isna().all()
    )
    key = (suite_name(contract), tuple(age_range) if age_range else None, skip)
    if key not in _SUITES:
        if len(_SUITES) > 256:
            _SUITES.clear()
        _SUITES[key] = compile_suite(contract, age_range=age_range, skip_rule_ids=skip)
    return _SUITES[key]


def run_gx(frame: pd.DataFrame, contract: Contract, age_range: tuple[int, int] | None) -> Any:
    """Validate a prepared frame (contract + derived columns + `__row`) with GE."""
    with GX_LOCK:
        context = gx_context()
        source = context.data_sources.add_or_update_pandas("pathlink_intake")
        asset_name = contract.name
        try:
            asset = source.get_asset(asset_name)
        except LookupError:
            asset = source.add_dataframe_asset(asset_name)
        try:
            batch_definition = asset.get_batch_definition("whole")
        except (KeyError, LookupError):
            batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        suite = _suite(contract, age_range, frame)
        return batch.validate(suite, result_format=_RESULT_FORMAT)


def _unexpected_rows(result: Mapping[str, Any]) -> list[int]:
    rows: list[int] = []
    for item in result.get("unexpected_index_list") or []:
        value = item.get(ROW) if isinstance(item, Mapping) else item
        if isinstance(value, list | tuple):
            rows.extend(int(v) for v in value)
        elif value is not None:
            rows.append(int(value))
    return rows


def gx_findings(gx_result: Any, rules: Mapping[str, Rule]) -> list[tuple[Rule, np.ndarray]]:
    """(rule, failing rows) for every failed expectation of a GE result."""
    out = []
    for result in gx_result.results:
        config = result.expectation_config
        rule = rules[config.meta["rule_id"]]
        if result.exception_info and result.exception_info.get("raised_exception"):
            raise RuntimeError(f"Great Expectations could not evaluate rule {rule.id}")
        if not result.success:
            out.append((rule, np.asarray(_unexpected_rows(result.result), dtype="int64")))
    return out


def vectorised_findings(results: list[Any]) -> list[tuple[Rule, np.ndarray]]:
    """(rule, failing rows) for every failed check of the vectorised pass."""
    return [(r.check.rule, np.asarray(r.unexpected_rows, dtype="int64"))
            for r in results if not r.success]


def check_prepared(prepared: pd.DataFrame, contract: Contract,
                   age_range: tuple[int, int] | None, engine: str = "vectorised"
                   ) -> tuple[Any, list[tuple[Rule, np.ndarray]]]:
    """Run one engine on a prepared frame: (its raw results, (rule, failing rows) pairs)."""
    if engine == "gx":
        gx_result = run_gx(prepared, contract, age_range)
        rules = {rule.id: rule for rule in all_rules(contract)}
        return gx_result, gx_findings(gx_result, rules)
    if engine != "vectorised":
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
    results = evaluate(checks(contract, age_range=age_range), prepared, ROW)
    return results, vectorised_findings(results)


_ISSUE_VALUED = {"dateValid", "ssnValid", "unique", "notBefore", "wellFormed"}


def _collect_issues(findings: list[tuple[Rule, np.ndarray]], prepared: pd.DataFrame
                    ) -> list[Issue]:
    """One Issue per failing row and rule, ordered by row (rules in check order within a row).

    Rules checked on an issue column (dates, SSNs, duplicates, order) report that column's
    code for the row (`future`, `itin`, ...), others the rule's code.
    """
    position = pd.Series(np.arange(len(prepared)), index=prepared[ROW].to_numpy())
    issues: list[Issue] = []
    for rule, rows in findings:
        codes: Any = [rule.code] * len(rows)
        derived = derived_column(rule)
        if rule.rule in _ISSUE_VALUED and derived is not None:
            values = prepared[derived].to_numpy()[position.loc[rows].to_numpy()]
            codes = [v if isinstance(v, str) else rule.code for v in values]
        issues.extend(Issue(int(row), rule.column, code, rule.severity, rule.message)
                      for row, code in zip(rows, codes, strict=True))
    issues.sort(key=lambda i: i.row)
    return issues


def _empty_like(columns: list[str], with_reasons: bool) -> pd.DataFrame:
    cols = [*columns, ROW] + ([REASONS] if with_reasons else [])
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    frame[ROW] = frame[ROW].astype("int64")
    return frame


def validate_table(frame: pd.DataFrame, dataset: str, *, partner_id: str | None = None,
                   period: str | None = None, as_of: date,
                   age_range: tuple[int, int] | None = None,
                   max_quarantine_share: float = 0.5,
                   source_name: str | None = None,
                   engine: str = "vectorised") -> ValidationOutcome:
    """Validate a read frame against the dataset's contract.

    Args:
        frame: From `read_table` (or any frame of canonical columns; `__row` is added as
            index + 2 when absent).
        dataset: Contract name.
        partner_id, period: Recorded on the outcome.
        as_of: Reporting date: future dates are judged against it (ages at the start of
            `period` when given).
        age_range: The program's (min, max) age, overriding the contract's default.
        max_quarantine_share: Reject the whole file when more than this share of rows is
            quarantined.
        source_name: File name for messages.
        engine: `vectorised` (default) or `gx` (Great Expectations validates): the same rows
            by the same rules either way.

    Returns:
        ValidationOutcome. Never raises for partner data problems (a missing required
        column or too many bad rows give `file_verdict == "rejected"`).
    """
    name = source_name or frame.attrs.get("source_name") or dataset
    try:
        contract = load_contract(dataset)
    except KeyError as exc:
        raise FileRejected(name, f"unknown dataset '{safe_label(dataset)}'",
                           code="unknown_dataset") from exc
    age_range = tuple(age_range) if age_range else None
    columns = contract.columns
    work = frame.copy()
    if ROW not in work.columns:
        work[ROW] = range(2, len(work) + 2)
    work = work.reset_index(drop=True)
    work[ROW] = work[ROW].astype("int64")
    dropped = list(frame.attrs.get("dropped_columns", []))
    extra = [c for c in work.columns if c not in columns and not str(c).startswith("__")]
    work = work.drop(columns=extra)
    dropped += extra
    read = len(work)
    issues: list[Issue] = []
    missing = [c for c in contract.required_columns if c not in work.columns]
    for col in dropped if not missing else []:
        issues.append(Issue(0, safe_label(str(col)), "unknown_column", "warning",
                            "Column is not in the data contract; it was dropped (map it in "
                            "pathlink.toml if it holds a contract field)."))
    if missing:
        for col in missing:
            issues.append(Issue(0, col, "missing_column", "error",
                                f"Required column {col} is missing from the header."))
        reason = "missing required column(s): " + ", ".join(missing)
        if len(missing) == len(contract.required_columns):
            reason += " (is the header row missing or the delimiter unusual?)"
        quarantined = work.reindex(columns=[*columns, ROW]).assign(
            **{REASONS: "file:missing_required_column"})
        return ValidationOutcome(
            dataset, name, contract_version(dataset), _empty_like(columns, False),
            quarantined, issues, {"read": read, "accepted": 0, "quarantined": read},
            None, "rejected", reason, partner_id, period, age_range, engine)

    prepared = prepare(work, contract, as_of=as_of, period=period)
    check_results, findings = check_prepared(prepared, contract, age_range, engine)
    row_issues = _collect_issues(findings, prepared)
    issues.extend(row_issues)

    base = prepared[[*columns, ROW]]
    error_rows: dict[int, str] = {}
    warned: dict[str, set[int]] = {}
    warned_rows: set[int] = set()
    for issue in row_issues:
        if issue.severity == "error":
            reason = f"{issue.field}:{issue.rule}"
            held = error_rows.get(issue.row)
            if held is None:
                error_rows[issue.row] = reason
            elif reason not in held.split(";"):
                error_rows[issue.row] = held + ";" + reason
        else:
            warned.setdefault(issue.field, set()).add(issue.row)
            warned_rows.add(issue.row)
    bad = base[ROW].isin(list(error_rows)).to_numpy()
    accepted = base.loc[~bad].copy()
    for col, rows in warned.items():
        if col in accepted.columns:
            accepted.loc[accepted[ROW].isin(list(rows)).to_numpy(), col] = None
    quarantined = base.loc[bad].copy()
    quarantined[REASONS] = quarantined[ROW].map(error_rows).astype(object)

    verdict, reason = "accepted", None
    if read == 0:
        issues.insert(0, Issue(0, "", "no_rows", "warning",
                               "The file has a header but no data rows; accepted as "
                               "'nothing to report this period'."))
    elif len(quarantined) / read > max_quarantine_share:
        verdict = "rejected"
        reason = (f"{len(quarantined)} of {read} rows failed validation, more than the "
                  f"{max_quarantine_share:.0%} allowed")
        issues.insert(0, Issue(0, "", "quarantine_share", "error",
                               "Too many rows failed validation; the whole file was held."))
        moved = accepted.assign(**{REASONS: "file:quarantine_share"})
        quarantined = pd.concat([quarantined, moved]).sort_values(ROW)
        accepted = accepted.iloc[0:0]
    accepted = accepted.reset_index(drop=True)
    quarantined = quarantined.reset_index(drop=True)
    counts = {"read": read, "accepted": len(accepted), "quarantined": len(quarantined),
              "rows_with_warnings": len(warned_rows - set(error_rows))}
    return ValidationOutcome(dataset, name, contract_version(dataset), accepted, quarantined,
                             issues, counts, check_results, verdict, reason, partner_id,
                             period, age_range, engine)


def issues_frame(outcome: ValidationOutcome | None) -> pd.DataFrame:
    """Issues as a frame: source_row, field, rule, severity, action, message (no values)."""
    cols = ["source_row", "field", "rule", "severity", "action", "message"]
    if outcome is None or not outcome.issues:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "source_row" else object)
                             for c in cols})
    quarantined_rows = set(outcome.quarantined[ROW]) if len(outcome.quarantined) else set()

    def action(issue: Issue) -> str:
        if issue.row == 0:
            return {"unknown_column": "column_dropped", "no_rows": "reported"}.get(
                issue.rule, "file_rejected")
        if issue.severity == "error" or issue.row in quarantined_rows:
            return "quarantined"
        return "field_dropped"

    return pd.DataFrame(
        [(i.row, i.field, i.rule, i.severity, action(i), i.message) for i in outcome.issues],
        columns=cols,
    ).astype({"source_row": "int64"})
