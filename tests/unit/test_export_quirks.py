"""A catalogue of real export quirks (issue 14): each is accepted with the right value, or
refused with a message that names the fix.

Every case writes one small file the way a case-management system or Excel exports it, runs it
through the same reading, validation and normalization as `pathlink check`, `run` and `encode`
(`read_table` -> `validate_table` -> `normalize_participants`), and checks either the value that
reaches linkage or the reason code and its plain-language fix (`data_contracts.fix`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from data_contracts import fix, reasons
from linkage.normalize import normalize_participants
from pipelines import ingest
from pipelines.ingest.errors import FileRejected

AS_OF = date(2026, 1, 15)
HEADER = ["partner_record_id", "first_name", "last_name", "date_of_birth", "ssn", "zip"]


def csv_file(header: list[str], row: list[str], *, before: list[str] = (),
             delimiter: str = ",", encoding: str = "utf-8") -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        path = tmp / "participants.csv"
        lines = [*before, delimiter.join(header), delimiter.join(row)]
        path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        return path
    return build


def xlsx_file(sheets: dict[str, list[list[Any]]]) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        workbook = openpyxl.Workbook()
        workbook.remove(workbook.active)
        for title, rows in sheets.items():
            sheet = workbook.create_sheet(title)
            for values in rows:
                sheet.append(values)
        path = tmp / "participants.xlsx"
        workbook.save(path)
        return path
    return build


def row(**fields: str) -> list[str]:
    base = {"partner_record_id": "R1", "first_name": "Ann", "last_name": "Lee",
            "date_of_birth": "1982-07-03", "ssn": "", "zip": ""}
    base.update(fields)
    return [base[h] for h in HEADER]


@dataclass(frozen=True)
class Quirk:
    name: str
    build: Callable[[Path], Path]
    field: str = ""           # normalized field expected (accepted) ...
    value: Any = None         # ... with this value
    code: str = ""            # or: a reason code, the field dropped ...
    fix_names: str = ""       # ... and its fix naming this
    file_refused: str = ""    # or: the whole file refused, the reason naming this


QUIRKS = [
    # -- dates ------------------------------------------------------------------------------
    Quirk("unpadded M/D/YYYY", csv_file(HEADER, row(date_of_birth="7/3/1982")),
          "dob", "1982-07-03"),
    Quirk("padded MM/DD/YYYY", csv_file(HEADER, row(date_of_birth="07/03/1982")),
          "dob", "1982-07-03"),
    Quirk("ISO with a T time part", csv_file(HEADER, row(date_of_birth="1982-07-03T00:00:00")),
          "dob", "1982-07-03"),
    Quirk("ISO with a space time part and Z",
          csv_file(HEADER, row(date_of_birth="1982-07-03 00:00:00.000Z")), "dob", "1982-07-03"),
    Quirk("Excel CSV datetime 7/3/1982 0:00",
          csv_file(HEADER, row(date_of_birth="7/3/1982 0:00")), "dob", "1982-07-03"),
    Quirk("12-hour time part", csv_file(HEADER, row(date_of_birth="7/3/1982 12:00:00 AM")),
          "dob", "1982-07-03"),
    Quirk("YYYYMMDD", csv_file(HEADER, row(date_of_birth="19820703")), "dob", "1982-07-03"),
    Quirk("month name, four-digit year", csv_file(HEADER, row(date_of_birth='"Jul 3, 1982"')),
          "dob", "1982-07-03"),
    Quirk("d-mmm-yyyy", csv_file(HEADER, row(date_of_birth="3-Jul-1982")), "dob", "1982-07-03"),
    Quirk("two-digit year refused", csv_file(HEADER, row(date_of_birth="7/3/82")),
          code="two_digit_year", fix_names="four digits"),
    Quirk("d-mmm-yy refused", csv_file(HEADER, row(date_of_birth="3-Jul-82")),
          code="two_digit_year", fix_names="four digits"),
    Quirk("day-first refused", csv_file(HEADER, row(date_of_birth="25/12/1990")),
          code="day_first", fix_names="month first"),
    Quirk("European dotted date refused", csv_file(HEADER, row(date_of_birth="25.12.1990")),
          code="day_first", fix_names="month first"),
    Quirk("Excel serial in a CSV refused", csv_file(HEADER, row(date_of_birth="30135")),
          code="excel_serial", fix_names="Format the column as a date"),
    Quirk("XLSX date cell", xlsx_file({"S": [HEADER, ["R1", "Ann", "Lee", date(1982, 7, 3)]]}),
          "dob", "1982-07-03"),
    Quirk("XLSX datetime cell with a time",
          xlsx_file({"S": [HEADER, ["R1", "Ann", "Lee", datetime(1982, 7, 3, 14, 5)]]}),
          "dob", "1982-07-03"),
    Quirk("XLSX serial number in the date column",
          xlsx_file({"S": [HEADER, ["R1", "Ann", "Lee", 30135]]}), "dob", "1982-07-03"),
    # -- headers ----------------------------------------------------------------------------
    Quirk("First Name / Last Name / DOB / SSN headers",
          csv_file(["Client ID", "First Name", "Last Name", "DOB", "SSN"],
                   ["R1", "Ann", "Lee", "7/3/1982", "212-34-5678"]), "ssn", "212345678"),
    Quirk("upper case header with trailing spaces",
          csv_file(["PARTNER_RECORD_ID ", " FIRST_NAME ", "LAST_NAME", "DATE_OF_BIRTH"],
                   ["R1", "Ann", "Lee", "1982-07-03"]), "given_name", "ann"),
    Quirk("punctuated headers (First.Name, last-name, Date of Birth)",
          csv_file(["Participant ID", "First.Name", "last-name", "Date of Birth"],
                   ["R1", "Ann", "Lee", "1982-07-03"]), "dob", "1982-07-03"),
    Quirk("Zip Code, E-mail and Phone Number headers",
          csv_file([*HEADER[:4], "Zip Code", "E-mail", "Phone Number"],
                   [*row()[:4], "06106", "Ann@Example.org", "(860) 555-0100"]),
          "email", "ann@example.org"),
    Quirk("SS# header", csv_file(["Student ID", "Fname", "Lname", "Birthdate", "SS#"],
                                 ["R1", "Ann", "Lee", "1982-07-03", "212345678"]),
          "ssn", "212345678"),
    Quirk("byte-order mark before the first header",
          csv_file(["\ufeffClient ID", "First Name", "Surname", "DOB"],
                   ["R1", "Ann", "Lee", "1982-07-03"]), "family_name", "lee"),
    # -- Excel artifacts --------------------------------------------------------------------
    Quirk("ZIP that lost its leading zero (CSV)", csv_file(HEADER, row(zip="6106")),
          "zip5", "06106"),
    Quirk("ZIP kept as text with =\"...\"", csv_file(HEADER, row(zip='"=""06106"""')),
          "zip5", "06106"),
    Quirk("numeric ZIP cell in XLSX",
          xlsx_file({"S": [HEADER, ["R1", "Ann", "Lee", "1982-07-03", None, 6106]]}),
          "zip5", "06106"),
    Quirk("numeric SSN cell that lost a leading zero (XLSX)",
          xlsx_file({"S": [HEADER, ["R1", "Ann", "Lee", "1982-07-03", 31234567]]}),
          "ssn", "031234567"),
    Quirk("SSN in scientific notation refused", csv_file(HEADER, row(ssn="2.12346E+08")),
          code="scientific_notation", fix_names="Format the column as text"),
    Quirk("formula cell in a name (XLSX) dropped, never evaluated",
          xlsx_file({"S": [HEADER, ["R1", '=HYPERLINK("http://x.test","y")', "Lee",
                                    "1982-07-03"]]}),
          code="formula_injection", fix_names="Remove the leading character"),
    Quirk("#N/A in the SSN column", csv_file(HEADER, row(ssn="#N/A")), "ssn", None),
    # -- title rows and sheets --------------------------------------------------------------
    Quirk("two title rows above the header (CSV)",
          csv_file(HEADER, row(), before=["Participant export,,,,,", "June 2026,,,,,"]),
          "given_name", "ann"),
    Quirk("title row and a blank row above the header (XLSX)",
          xlsx_file({"Export": [["Youth Works participants"], [], HEADER,
                                ["R1", "Ann", "Lee", "1982-07-03"]]}), "given_name", "ann"),
    Quirk("an instructions sheet before the data sheet",
          xlsx_file({"Instructions": [["Fill in one row per participant"], ["Do not edit"]],
                     "Data": [HEADER, ["R1", "Ann", "Lee", "1982-07-03"]]}),
          "family_name", "lee"),
    Quirk("two sheets with the header, neither named for the dataset",
          xlsx_file({"June": [HEADER, ["R1", "Ann", "Lee", "1982-07-03"]],
                     "July": [HEADER, ["R1", "Ann", "Lee", "1982-07-03"]]}),
          file_refused="name the data sheet 'participants'"),
    Quirk("semicolon export with a title row",
          csv_file(HEADER, row(), before=["Export;;;;;"], delimiter=";"), "given_name", "ann"),
    # -- spaces and placeholders ------------------------------------------------------------
    Quirk("trailing spaces in values", csv_file(HEADER, row(first_name="Ann   ",
                                                             last_name=" Lee ")),
          "given_name", "ann"),
    Quirk("N/A placeholder in the SSN", csv_file(HEADER, row(ssn="N/A")), "ssn", None),
    Quirk("NULL placeholder in a name", csv_file(HEADER, row(first_name="NULL")),
          code="missing", fix_names="leave it empty"),
    Quirk("non-breaking space inside a name",
          csv_file(HEADER, row(first_name="Mary\u00a0Ann")), "given_name", "maryann"),
    Quirk("non-breaking spaces around an id and a ZIP",
          csv_file(HEADER, row(partner_record_id="\u00a0R1\u00a0", zip="\u00a006106")),
          "zip5", "06106"),
    Quirk("zero-width space in a name", csv_file(HEADER, row(last_name="Le\u200be")),
          "family_name", "lee"),
    Quirk("SSN with spaces", csv_file(HEADER, row(ssn="212 34 5678")), "ssn", "212345678"),
    Quirk("Windows-1252 accented name",
          csv_file(HEADER, row(first_name="José"), encoding="cp1252"), "given_name", "jose"),
]


def _outcome(path: Path) -> tuple[ingest.ValidationOutcome, Any]:
    read = ingest.read_table(path)
    outcome = ingest.validate_table(read.frame, "participants", as_of=AS_OF,
                                    source_name=path.name)
    counts = outcome.counts
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    normalized = normalize_participants(outcome.accepted, as_of=AS_OF)
    return outcome, normalized


def test_the_catalogue_holds_at_least_30_quirks() -> None:
    assert len(QUIRKS) >= 30
    assert len({q.name for q in QUIRKS}) == len(QUIRKS)


@pytest.mark.parametrize("quirk", QUIRKS, ids=[q.name for q in QUIRKS])
def test_export_quirk(tmp_path: Path, quirk: Quirk) -> None:
    path = quirk.build(tmp_path)
    if quirk.file_refused:
        with pytest.raises(FileRejected) as info:
            ingest.read_table(path)
        assert quirk.file_refused in info.value.reason
        assert info.value.code in reasons()
        return
    outcome, normalized = _outcome(path)
    assert outcome.file_verdict == "accepted"
    assert outcome.counts["accepted"] == 1, outcome.issues  # never the row
    if quirk.code:
        issue = next(i for i in outcome.issues if i.rule == quirk.code)
        assert issue.severity == "warning" and issue.row == 2
        assert outcome.accepted.loc[0, issue.field] is None  # the field dropped
        assert quirk.fix_names in fix(quirk.code)
        return
    assert normalized.loc[0, quirk.field] == quirk.value
    assert not [i for i in outcome.issues if i.row], outcome.issues
