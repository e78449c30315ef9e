"""The vectorised check pass and Great Expectations find the same rows by the same rules.

Intake checks files with `data_contracts.vectorised` (one pass); GE stays the engine of the
suites partners run themselves (`pathlink check --engine gx`) and renders the Data Docs. Here
both run on every contract's bad-input catalogue: one good row per contract, then for every
rule of the contract rows that break it (built from the rule's kind and parameters, so a rule
added to a contract is covered without editing this file), plus codes written in other cases or
as synonyms, blanks and an all-empty column. Every rule must be broken at least once, and the
two engines must agree on every rule's failing rows, on the issues, and on the accepted and
quarantined rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import data_contracts as dc
from data_contracts.compiler import READ_ISSUE_COLUMN, all_rules, checks
from data_contracts.vectorised import evaluate
from pipelines.ingest.validate import (
    ROW,
    gx_findings,
    prepare,
    validate_table,
    vectorised_findings,
)

AS_OF = date(2026, 1, 15)

#: A value that passes every rule of its column, for every column of every contract.
GOOD: dict[str, str] = {
    "partner_record_id": "R1", "first_name": "Ann", "middle_name": "Marie", "last_name": "Lee",
    "suffix": "Jr", "date_of_birth": "1990-05-01", "ssn": "212-34-5678", "sex": "F",
    "street_address": "12 Main St", "city": "Hartford", "state": "CT", "zip": "06103",
    "phone": "860-555-0100", "email": "ann@example.org", "hispanic_latino": "no",
    "race": "asian", "disability": "no", "veteran": "no",
    "highest_education": "high_school_diploma", "employment_status_at_entry": "unemployed",
    "returning_citizen": "no", "homeless": "no", "low_income": "yes", "english_learner": "no",
    "basic_skills_deficient": "no", "single_parent": "no", "foster_care": "no",
    "program_id": "HC1", "funding_stream": "wioa_adult", "sector": "healthcare",
    "entry_date": "2025-01-10", "exit_date": "2025-06-30",
    "exit_exclusion_reason": "health_medical", "service_date": "2025-02-01",
    "service_type": "training_occupational_skills", "onet_code": "31-1131.00",
    "cip_code": "51.3902", "amount": "1250.00", "description": "bus pass",
    "credential_type": "associate_degree", "credential_name": "Nursing Assistant",
    "issuer": "Capital CC", "date_attained": "2025-05-20", "employer_name": "Hartford HealthCare",
    "naics_sector": "62", "start_date": "2025-07-01", "end_date": "2025-12-01",
    "hourly_wage": "21.50", "weekly_hours": "40", "year_quarter": "2025Q3",
    "employer_id": "CT-000123", "wages": "5100.00", "competency": "reading", "score": "3",
    "assessment_date": "2025-03-03", "assessor_role": "instructor",
    "cost_period": "2025-03", "cost_amount": "12500.00", "cost_category": "training",
}
#: Columns given a distinct value per row, so rows do not duplicate each other by accident.
DISTINCT: dict[str, Callable[[int], str]] = {
    "partner_record_id": lambda i: f"R{i}",
    "employer_id": lambda i: f"CT-{i:06d}",
}


def _breaking_values(rule: dc.Rule) -> list[str | None]:
    """Values of `rule.column` that break `rule` (single-column rules)."""
    kind, params = rule.rule, rule.params
    good = GOOD[rule.column]
    if kind == "notNull":
        return [None, "   "]
    if kind == "regex":
        return ["#bad#", good + " !"]
    if kind == "allowedValues":
        separator = params.get("separator")
        return ["zz_not_a_code", f"{good}{separator}zz_not_a_code"] if separator else [
            "zz_not_a_code"]
    if kind == "maxLength":
        return ["A" * (int(params["value"]) + 1)]
    if kind == "noControlCharacters":
        return [good[:1] + "\x00" + good[1:], good + "\x1f"]
    if kind == "noFormula":
        return ["=SUM(A1)", "@x", "+(1)", " -cmd"]
    if kind == "numeric":
        return ["12abc", "1,2,3"]
    if kind == "between":
        low, high = params.get("min"), params.get("max")
        return [str(v) for v in ((low - 1) if low is not None else None,
                                 (high + 1) if high is not None else None) if v is not None]
    if kind == "ageInRange":
        return ["2020-01-01", "1910-01-01"]  # aged 5 and 115 on the reporting date
    if kind == "dateValid":
        return ["2023-02-30", "13/01/1990", "yesterday", "2099-01-01", "1850-01-01"]
    if kind == "ssnValid":
        return ["000-12-3456", "666-12-3456", "078-05-1120", "12-345-678", "912-70-1234",
                "212-00-3456", "212-34-0000", "111-11-1111"]
    raise AssertionError(f"no breaking values for rule kind {kind}")  # a new kind: add it


def _boundary_values(rule: dc.Rule) -> list[str]:
    """Values on the edge of `rule` (inside or just outside), where engines could differ."""
    if rule.rule == "between":
        low, high = rule.params.get("min"), rule.params.get("max")
        return [str(v) for v in (low, high) if v is not None] + (
            [f"{high}.01"] if high is not None else [])
    if rule.rule == "maxLength":
        return ["A" * int(rule.params["value"]), "A" * (int(rule.params["value"]) - 1)]
    if rule.rule == "ageInRange":  # 14 and 13, 99 and 100 on AS_OF; 16 and 24 likewise
        return ["2012-01-15", "2012-01-16", "1926-01-16", "1926-01-15", "2010-01-15",
                "2010-01-16", "2001-01-16", "2001-01-15"]
    return []


def catalogue(contract: dc.Contract) -> pd.DataFrame:
    """Good rows, then rows breaking each rule of the contract, with distinct `__row`s."""
    columns = contract.columns
    missing = [c for c in columns if c not in GOOD]
    assert not missing, f"add a good value for {missing} to GOOD"
    rows: list[dict[str, object]] = []

    def add(changes: dict[str, object], issue: str | None = None) -> None:
        index = len(rows) + 1
        row: dict[str, object] = {c: GOOD[c] for c in columns}
        for column, make in DISTINCT.items():
            if column in row:
                row[column] = make(index)
        row.update(changes)
        row[READ_ISSUE_COLUMN] = issue
        rows.append(row)

    for _ in range(3):
        add({})
    add({c: None for c in columns if c not in contract.required_columns})  # blanks
    for rule in all_rules(contract):
        if rule.rule == "wellFormed":
            add({}, issue="malformed_row")
        elif rule.rule == "unique":
            add({})
            rows.append(dict(rows[-1]))  # an exact duplicate: the copy is `duplicate_row`
            add({})
            other = next(c for c in columns if c not in rule.columns and GOOD[c] != "x")
            twin = dict(rows[-1])
            twin[other] = "x"  # same key, other content: both are `conflicting_duplicate`
            rows.append(twin)
        elif rule.rule == "notBefore":
            later = GOOD[str(rule.params["other"])]
            add({rule.column: "2000-01-02", str(rule.params["other"]): later})
        else:
            for value in _breaking_values(rule):
                add({rule.column: value})
            for value in _boundary_values(rule):
                add({rule.column: value})
    for rule in contract.rules:  # codes written in another case or as a synonym are fine
        if rule.rule == "allowedValues":
            add({rule.column: str(rule.params["values"][0]).upper()})
            for synonym in list(contract.property(rule.column).synonyms)[:2]:
                add({rule.column: str(synonym)})
    frame = pd.DataFrame(rows, columns=[*columns, READ_ISSUE_COLUMN], dtype=object)
    frame[ROW] = np.arange(2, len(frame) + 2, dtype="int64")
    keys = {c for rule in contract.rules if len(rule.columns) > 1 or rule.rule == "notBefore"
            for c in (*rule.columns, rule.params.get("other"))}
    optional = [c for c in columns if c not in contract.required_columns and c not in keys]
    if optional:  # a column empty in the whole file: GE's suite leaves its checks out
        frame[optional[-1]] = None
    return frame


def _rows_by_rule(findings) -> dict[str, list[int]]:
    return {rule.id: sorted(int(r) for r in rows) for rule, rows in findings}


CASES = [(name, None) for name in dc.DATASETS] + [("participants", (16, 24))]


def _gx_rows(result) -> list[int]:
    rows: list[int] = []
    for item in result.result.get("unexpected_index_list") or []:
        value = item[ROW]
        rows.extend(value if isinstance(value, list) else [value])
    return sorted(int(r) for r in rows)


@pytest.mark.slow  # GE validates ~100 expectations per case (2-5 s each)
@pytest.mark.parametrize(("dataset", "age_range"), CASES)
def test_engines_find_the_same_rows_by_the_same_rules(dataset: str, age_range) -> None:
    contract = dc.load_contract(dataset)
    frame = catalogue(contract)
    kwargs = {"as_of": AS_OF, "age_range": age_range, "max_quarantine_share": 1.0}
    by_gx = validate_table(frame, dataset, engine="gx", **kwargs)
    by_fast = validate_table(frame, dataset, **kwargs)
    rules = {rule.id: rule for rule in all_rules(contract)}
    gx = _rows_by_rule(gx_findings(by_gx.check_results, rules))
    fast = _rows_by_rule(vectorised_findings(by_fast.check_results))
    assert fast == gx

    # every rule is broken by the catalogue (but those on the column left empty for GE's skip)
    emptied = {rule.id for rule in all_rules(contract)
               if rule.rule != "notNull" and rule.column in frame
               and frame[rule.column].isna().all()}
    assert set(rules) - emptied <= set(fast), sorted(set(rules) - emptied - set(fast))

    # the same issues, counts, accepted and quarantined rows
    assert by_fast.issues == by_gx.issues
    assert by_fast.counts == by_gx.counts
    assert by_fast.counts["quarantined"] > 0
    pd.testing.assert_frame_equal(by_fast.accepted, by_gx.accepted)
    pd.testing.assert_frame_equal(by_fast.quarantined, by_gx.quarantined)

    # the Data Docs' input rebuilt from the vectorised pass: per expectation the same success,
    # counts and row ids as GE's own result
    evaluated = {r.expectation_config.meta["rule_id"]: r for r in by_gx.gx_result.results}
    rebuilt = {r.expectation_config.meta["rule_id"]: r for r in by_fast.gx_result.results}
    assert set(evaluated) <= set(rebuilt) == set(rules)
    for rule_id, result in rebuilt.items():
        theirs = evaluated.get(rule_id)
        if theirs is None:  # GE left out the checks of the all-empty column
            assert result.success and rule_id in emptied
            continue
        assert result.success == theirs.success, rule_id
        assert result.expectation_config.to_json_dict() == theirs.expectation_config \
            .to_json_dict() | {"kwargs": result.expectation_config.to_json_dict()["kwargs"]}
        assert result.expectation_config.kwargs.get("column") == \
            theirs.expectation_config.kwargs.get("column")
        for key in ("element_count", "unexpected_count", "missing_count"):
            assert result.result.get(key) == theirs.result.get(key), (rule_id, key)
        assert _gx_rows(result) == _gx_rows(theirs)


def test_vectorised_pass_reports_rows_not_values() -> None:
    contract = dc.load_contract("participants")
    frame = catalogue(contract)
    prepared = prepare(frame.copy(), contract, as_of=AS_OF)
    results = evaluate(checks(contract), prepared, ROW)
    rows = set(prepared[ROW])
    for result in results:
        assert set(result.unexpected_rows.tolist()) <= rows
    assert not all(r.success for r in results)


def test_gx_findings_raise_on_a_gx_exception() -> None:
    result = SimpleNamespace(expectation_config=SimpleNamespace(meta={"rule_id": "x"}),
                             exception_info={"raised_exception": True}, success=False,
                             result={})
    rule = dc.Rule(id="x", rule="notNull", columns=("a",), severity="error", message="m" * 11,
                   code="missing")
    with pytest.raises(RuntimeError, match="rule x"):
        gx_findings(SimpleNamespace(results=[result]), {"x": rule})
