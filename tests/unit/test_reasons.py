"""One vocabulary of reason codes (issue 14): every code intake can produce is in
`data_contracts/reasons.yaml`, with a meaning and a fix, and docs/contracts.md lists them all."""

from __future__ import annotations

import re
from pathlib import Path

import data_contracts as dc
from linkage.normalize import DATE_ISSUES, ssn_issue

REPO = Path(__file__).resolve().parents[2]
SSN_EXAMPLES = ["2.12E+08", "12-345", "999-99-9999", "078-05-1120", "000-12-3456",
                "212-00-3456", "212-34-0000", "912-70-1234"]


def producible_codes() -> set[str]:
    codes: set[str] = set()
    for name in dc.DATASETS:
        contract = dc.load_contract(name)
        for rule in contract.rules:
            codes.add(rule.code)
            if rule.rule == "dateValid":
                codes |= {*DATE_ISSUES, "future", str(rule.params.get("tooEarlyCode",
                                                                       "too_early"))}
            if rule.rule == "unique":
                codes |= {"duplicate_row", "conflicting_duplicate"}
    codes |= {ssn_issue(text) for text in SSN_EXAMPLES}
    # file- and column-level codes: FileRejected(code=...) and Issue(0, ...) in the reader,
    # landing checks and validation
    for path in (REPO / "pipelines").rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'code="([a-z_]+)"', text))
        codes |= set(re.findall(r'Issue\(0, [^,]+, "([a-z_]+)"', text))
    return codes - {"rejected"}  # FileRejected's default, never raised without a code


def test_every_producible_code_is_in_the_vocabulary() -> None:
    codes = producible_codes()
    assert {"two_digit_year", "day_first", "excel_serial", "scientific_notation",
            "missing_column", "unknown_column", "too_many_rows", "unsafe_path"} <= codes
    missing = sorted(codes - set(dc.reasons()))
    assert missing == [], missing


def test_every_code_has_a_meaning_and_a_fix_without_a_value() -> None:
    for reason in dc.reasons().values():
        assert reason.scope in {"row", "column", "file"}
        assert len(reason.meaning) > 15 and len(reason.fix) > 15, reason.code
    assert dc.fix("two_digit_year").startswith("Write the year with four digits")
    assert dc.fix("not-a-code") == ""
    assert "cannot be used" in dc.fix("missing", "partner_record_id")  # a field's own fix
    assert dc.fix("missing", "first_name") == dc.fix("missing")


def test_the_docs_list_every_code() -> None:
    text = (REPO / "docs" / "contracts.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_]+)` \| (?:row|column|file) \|", text, re.M))
    assert listed == set(dc.reasons())
