"""Intake: a catalogue of bad inputs, row accounting, and PII canaries.

Every case asserts either a clear file-level error (FileRejected naming the file and, where
relevant, row and field) or the row accounting read == accepted + quarantined.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipelines import ingest as intake
from pipelines.ingest.validate import FileRejected

AS_OF = date(2026, 1, 15)
HEADER = "partner_record_id,first_name,last_name,date_of_birth,ssn,phone"
GOOD = ["R1,Ann,Lee,1990-05-01,212-34-5678,+1 860 555 0100",
        "R2,Bob,Diaz,03/04/1985,,860-555-0101",
        "R3,Cy,Oh,19991231,,"]


def write(tmp_path: Path, lines: list[str] | str, name: str = "participants.csv", *,
          encoding: str = "utf-8", newline: str = "\n") -> Path:
    text = lines if isinstance(lines, str) else newline.join(lines) + newline
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def ingest(path: Path, dataset: str = "participants", **kwargs) -> intake.ValidationOutcome:
    read = intake.read_table(path, column_map=kwargs.pop("column_map", None),
                             value_map=kwargs.pop("value_map", None))
    kwargs.setdefault("as_of", AS_OF)
    outcome = intake.validate_table(read.frame, dataset, source_name=path.name, **kwargs)
    assert_accounting(outcome)
    return outcome


def assert_accounting(outcome: intake.ValidationOutcome) -> None:
    counts = outcome.counts
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    assert counts["accepted"] == len(outcome.accepted)
    assert counts["quarantined"] == len(outcome.quarantined)
    assert not set(outcome.accepted["__row"]) & set(outcome.quarantined["__row"])
    if len(outcome.quarantined):
        assert outcome.quarantined["reasons"].str.len().gt(0).all()


def reasons(outcome: intake.ValidationOutcome) -> dict[int, str]:
    return dict(zip(outcome.quarantined["__row"], outcome.quarantined["reasons"], strict=True))


def rejected(path: Path, **kwargs) -> FileRejected:
    with pytest.raises(FileRejected) as info:
        intake.read_table(path, **kwargs)
    assert path.name in str(info.value)
    return info.value


# -- the good path -------------------------------------------------------------------------------
def test_good_file_accepted(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, *GOOD]))
    assert outcome.file_verdict == "accepted"
    assert outcome.counts == {"read": 3, "accepted": 3, "quarantined": 0,
                              "rows_with_warnings": 0}
    assert list(outcome.accepted["__row"]) == [2, 3, 4]
    assert outcome.issues == []
    # phone "+1 ..." is not a formula
    assert outcome.accepted.loc[0, "phone"] == "+1 860 555 0100"
    assert "__age__date_of_birth" not in outcome.accepted.columns


# -- file-level catalogue ------------------------------------------------------------------------
def test_01_empty_file(tmp_path: Path) -> None:
    exc = rejected(write(tmp_path, ""))
    assert "empty" in exc.reason


def test_02_whitespace_only_file(tmp_path: Path) -> None:
    exc = rejected(write(tmp_path, "\n\r\n  \n"))
    assert "empty" in exc.reason


def test_03_header_only_is_accepted_with_zero_rows(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER]))
    assert outcome.file_verdict == "accepted"
    assert outcome.counts["read"] == 0
    assert [i.rule for i in outcome.issues] == ["no_rows"]


def test_04_semicolon_delimiter(tmp_path: Path) -> None:
    lines = [HEADER.replace(",", ";"), *(g.replace(",", ";") for g in GOOD)]
    read = intake.read_table(write(tmp_path, lines))
    assert read.delimiter == ";"
    outcome = ingest(write(tmp_path, lines))
    assert outcome.counts["accepted"] == 3


def test_05_pipe_and_tab_delimiters(tmp_path: Path) -> None:
    for delimiter in ("|", "\t"):
        lines = [HEADER.replace(",", delimiter), *(g.replace(",", delimiter) for g in GOOD)]
        path = write(tmp_path, lines)
        assert intake.read_table(path).delimiter == delimiter
        assert ingest(path).counts["accepted"] == 3


def test_06_utf8_bom(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, *GOOD], encoding="utf-8-sig")
    read = intake.read_table(path)
    assert read.encoding == "utf-8-sig"
    assert "partner_record_id" in read.frame.columns
    assert ingest(path).counts["accepted"] == 3


def test_07_windows_1252_accented_names(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, "R1,José,Muñoz-Peña,1990-05-01,,"], encoding="cp1252")
    read = intake.read_table(path)
    assert read.encoding == "windows-1252"
    outcome = ingest(path)
    assert outcome.accepted.loc[0, "first_name"] == "José"
    assert outcome.accepted.loc[0, "last_name"] == "Muñoz-Peña"


def test_08_missing_required_column(tmp_path: Path) -> None:
    path = write(tmp_path, ["partner_record_id,first_name,last_name", "R1,Ann,Lee"])
    outcome = ingest(path)
    assert outcome.file_verdict == "rejected"
    assert "date_of_birth" in outcome.reject_reason
    assert outcome.counts == {"read": 1, "accepted": 0, "quarantined": 1}
    assert outcome.issues[0].field == "date_of_birth"
    with pytest.raises(FileRejected, match=r"participants\.csv: missing required column"):
        outcome.raise_if_rejected()


def test_09_unknown_extra_column_dropped_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER + ",Favorite Color", GOOD[0] + ",blue"])
    outcome = ingest(path)
    assert "favorite_color" not in outcome.accepted.columns
    assert "favorite_color" not in outcome.quarantined.columns
    issue = outcome.issues[0]
    assert (issue.row, issue.field, issue.rule, issue.severity) == (
        0, "Favorite Color", "unknown_column", "warning")
    assert outcome.counts["accepted"] == 1


def test_10_duplicate_partner_record_id_conflicting(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, GOOD[0], GOOD[1], GOOD[0].replace("Ann", "Anne"), GOOD[2]])
    outcome = ingest(path)
    got = reasons(outcome)
    assert got == {2: "partner_record_id:conflicting_duplicate",
                   4: "partner_record_id:conflicting_duplicate"}
    assert list(outcome.accepted["partner_record_id"]) == ["R2", "R3"]


def test_11_exact_duplicate_row_keeps_first(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, GOOD[0], GOOD[0], GOOD[1]]))
    assert reasons(outcome) == {3: "partner_record_id:duplicate_row"}
    assert list(outcome.accepted["__row"]) == [2, 4]


@pytest.mark.parametrize(("dob", "code"), [
    ("2023-02-30", "impossible"),       # 12: impossible date
    ("13/01/1990", "day_first"),        # day first: never guessed
    ("2031-01-01", "future"),           # 13: future date
    ("yesterday", "unparseable"),       # 14: not a date
    ("1850-01-01", "too_old"),
])
def test_12_to_14_bad_dates_drop_the_field_and_keep_the_row(tmp_path: Path, dob: str,
                                                            code: str) -> None:
    outcome = ingest(write(tmp_path, [HEADER, f"R1,Ann,Lee,{dob},,", GOOD[1]]))
    assert reasons(outcome) == {}
    assert outcome.accepted.loc[0, "date_of_birth"] is None
    assert outcome.accepted.loc[0, "first_name"] == "Ann"
    issue = next(i for i in outcome.issues if i.row == 2)
    assert (issue.field, issue.rule, issue.severity) == ("date_of_birth", code, "warning")
    assert intake.issues_frame(outcome).loc[0, "action"] == "field_dropped"


def test_15_age_outside_program_range_drops_the_dob(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, "R1,Ann,Lee,2012-01-01,,", "R2,Bo,Li,1990-01-01,,",
                            "R3,Cy,Oh,2004-06-01,,"])
    outcome = ingest(path, age_range=(16, 24))
    assert reasons(outcome) == {}
    assert list(outcome.accepted["date_of_birth"]) == [None, None, "2004-06-01"]
    assert [(i.row, i.rule) for i in outcome.issues] == [(2, "age_out_of_range"),
                                                         (3, "age_out_of_range")]
    default = ingest(path)  # contract default 14-99
    assert default.issues == []


@pytest.mark.parametrize(("ssn", "code"), [
    ("000-12-3456", "invalid_area"),    # 16
    ("666-12-3456", "invalid_area"),    # 17
    ("900-12-3456", "invalid_area"),    # 18: 9xx outside ITIN groups
    ("212-00-3456", "invalid_group"),   # 19
    ("212-34-0000", "invalid_serial"),  # 20
    ("078-05-1120", "sample"),          # 21
    ("912-70-1234", "itin"),            # 22
    ("12-345-678", "malformed"),
])
def test_16_to_22_invalid_ssn_drops_field_keeps_row(tmp_path: Path, ssn: str, code: str) -> None:
    outcome = ingest(write(tmp_path, [HEADER, f"R1,Ann,Lee,1990-05-01,{ssn},"]))
    assert outcome.counts["accepted"] == 1
    assert outcome.accepted.loc[0, "ssn"] is None
    issue = outcome.issues[0]
    assert (issue.row, issue.field, issue.rule, issue.severity) == (2, "ssn", code, "warning")
    assert intake.issues_frame(outcome).loc[0, "action"] == "field_dropped"


def test_22b_invalid_ssn_in_wages_quarantines(tmp_path: Path) -> None:
    path = write(tmp_path, ["ssn,year_quarter,wages", "666-12-3456,2025Q3,1200",
                            "212-34-5678,2025Q3,1200", "212-34-5679,2025Q3,900"],
                 name="wages.csv")
    outcome = ingest(path, "wages")
    assert reasons(outcome) == {2: "ssn:invalid_area"}


def test_23_formula_injection(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, 'R1,"=HYPERLINK(""http://x.test"",""y"")",Lee,1990-05-01,,',
                            "R5,Bob,@SUM(A1),1990-05-01,,", *GOOD[1:]])
    outcome = ingest(path)
    assert reasons(outcome) == {}
    assert outcome.counts["accepted"] == 4  # the formula-like names are dropped, not the rows
    assert outcome.accepted.loc[0, "first_name"] is None
    assert outcome.accepted.loc[1, "last_name"] is None
    found = {(i.row, i.field, i.rule) for i in outcome.issues}
    assert {(2, "first_name", "formula_injection"), (3, "last_name", "formula_injection")} \
        <= found


def test_23b_negative_amount_and_plus_phone_are_not_formulas(tmp_path: Path) -> None:
    path = write(tmp_path, ["partner_record_id,service_date,service_type,amount,description",
                            "R1,2025-01-02,supportive_service,-125.50,bus pass refund",
                            "R2,2025-01-02,supportive_service,+40,=cmd|' /C calc'!A0"],
                 name="services.csv")
    outcome = ingest(path, "services", max_quarantine_share=1.0)
    assert reasons(outcome) == {3: "description:formula_injection"}
    assert outcome.accepted.loc[0, "amount"] == "-125.50"


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_24_field_over_max_length_drops_the_field_and_over_the_limit_refuses_the_file(
        tmp_path: Path) -> None:
    long_name = "A" * (500 * 1024)
    outcome = ingest(write(tmp_path, [HEADER, f"R1,{long_name},Lee,1990-05-01,,", *GOOD[1:]]))
    assert reasons(outcome) == {}
    assert outcome.accepted.loc[0, "first_name"] is None
    assert ("first_name", "too_long") in {(i.field, i.rule) for i in outcome.issues}
    huge = "A" * (10 * 1024 * 1024)  # over [limits] max_field_bytes (1 MiB)
    exc = rejected(write(tmp_path, [HEADER, f"R1,{huge},Lee,1990-05-01,,", *GOOD[1:]]))
    assert exc.code == "field_too_long" and exc.row == 2


def test_25_nul_bytes_are_a_row_error(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, "R1,An\x00n,Lee,1990-05-01,,", *GOOD[1:]]))
    assert reasons(outcome) == {}
    assert outcome.accepted.loc[0, "first_name"] is None
    assert ("first_name", "control_characters") in {(i.field, i.rule) for i in outcome.issues}
    nul_id = ingest(write(tmp_path, [HEADER, "R\x001,Ann,Lee,1990-05-01,,", *GOOD[1:]]))
    assert reasons(nul_id)[2].startswith("partner_record_id:control_characters")


def test_26_mixed_line_endings(tmp_path: Path) -> None:
    text = HEADER + "\r\n" + GOOD[0] + "\n" + GOOD[1] + "\r" + GOOD[2] + "\r\n"
    outcome = ingest(write(tmp_path, text))
    assert list(outcome.accepted["__row"]) == [2, 3, 4]
    assert list(outcome.accepted["partner_record_id"]) == ["R1", "R2", "R3"]


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


XLSX_ROWS = [HEADER.split(","), ["R1", "Ann", "Lee", date(1990, 5, 1), "212-34-5678", None],
             [None], ["R2", "Bob", "Diaz", "1985-03-04", None, 8605550101]]


def test_27_multi_sheet_xlsx(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "participants.xlsx", {"Sheet1": XLSX_ROWS, "Notes": [["x"]]})
    assert intake.read_table(path).sheet == "Sheet1"  # the sheet holding the header
    both = _workbook(tmp_path / "participants2.xlsx", {"A": XLSX_ROWS, "B": XLSX_ROWS})
    exc = rejected(both, dataset="participants")
    assert "2 of the workbook's 2 sheets" in exc.reason
    named = _workbook(tmp_path / "p2.xlsx", {"Notes": [["x"]], "Participants": XLSX_ROWS})
    read = intake.read_table(named, dataset="participants")
    assert read.sheet == "Participants"
    one = _workbook(tmp_path / "p3.xlsx", {"Data": XLSX_ROWS, "Empty": []})
    read = intake.read_table(one, dataset="participants")
    assert list(read.frame["__row"]) == [2, 4]  # sheet row numbers; blank row 3 skipped
    assert read.frame.loc[0, "date_of_birth"] == "1990-05-01"
    assert read.frame.loc[1, "phone"] == "8605550101"
    outcome = intake.validate_table(read.frame, "participants", as_of=AS_OF)
    assert_accounting(outcome)
    assert outcome.counts["accepted"] == 2


def test_28_corrupt_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "participants.xlsx"
    path.write_bytes(b"PK\x03\x04 definitely not a workbook")
    exc = rejected(path)
    assert "XLSX" in exc.reason


def test_28b_xlsx_saved_as_csv(tmp_path: Path) -> None:
    workbook = _workbook(tmp_path / "x.xlsx", {"S": XLSX_ROWS})
    path = tmp_path / "participants.csv"
    path.write_bytes(workbook.read_bytes())
    assert "rename it to .xlsx" in rejected(path).reason


def test_28c_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "participants.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0")
    assert "XLSX" in rejected(path).reason


def test_28d_xlsx_formula_cell_is_not_evaluated(tmp_path: Path) -> None:
    rows = [HEADER.split(","), ["R1", '=HYPERLINK("http://x.test","y")', "Lee", "1990-05-01"]]
    path = _workbook(tmp_path / "participants.xlsx", {"S": rows})
    outcome = ingest(path, max_quarantine_share=1.0)
    assert outcome.accepted.loc[0, "first_name"] is None
    assert ("first_name", "formula_injection") in {(i.field, i.rule) for i in outcome.issues}


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    (landing / "hartford_works" / "2025-12").mkdir(parents=True)
    return landing


def test_29_path_with_dotdot(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    with pytest.raises(FileRejected, match=r"'\.\.'"):
        intake.parse_drop_path(landing, landing / "hartford_works" / ".." / ".." / "x.csv",
                               as_of=AS_OF)
    with pytest.raises(FileRejected, match=r"'\.\.'"):
        intake.parse_drop_path(landing, Path("hartford_works/../../etc/participants.csv"),
                               as_of=AS_OF)


def test_30_period_not_yyyy_mm(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    for period in ("2025-13", "202512", "Dec-2025", "2025-1"):
        with pytest.raises(FileRejected, match="YYYY-MM") as info:
            intake.parse_drop_path(landing, landing / "hartford_works" / period /
                                   "participants.csv", as_of=AS_OF)
        assert "hartford_works/" in str(info.value)


def test_31_future_period(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    with pytest.raises(FileRejected, match="future"):
        intake.parse_drop_path(landing, landing / "hartford_works" / "2026-02" /
                               "participants.csv", as_of=AS_OF)
    ref = intake.parse_drop_path(landing, landing / "hartford_works" / "2026-01" /
                                 "participants.csv", as_of=AS_OF)
    assert (ref.partner_id, ref.period, ref.dataset) == ("hartford_works", "2026-01",
                                                         "participants")


def test_32_symlink_escaping_landing(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    outside = write(tmp_path, [HEADER, *GOOD], name="secret.csv")
    link = landing / "hartford_works" / "2025-12" / "participants.csv"
    os.symlink(outside, link)
    with pytest.raises(FileRejected, match="symbolic link"):
        intake.parse_drop_path(landing, link, as_of=AS_OF)
    outside_dir = tmp_path / "elsewhere" / "2025-12"
    outside_dir.mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere", landing / "evil")
    with pytest.raises(FileRejected, match="symbolic link"):
        intake.parse_drop_path(landing, landing / "evil" / "2025-12" / "participants.csv",
                               as_of=AS_OF)


def test_32b_symlink_to_another_partners_drop_inside_landing_is_refused(
        tmp_path: Path) -> None:
    from pipelines.steps.discover import landing_files

    landing = _landing(tmp_path)
    theirs = landing / "other_partner" / "2025-12"
    theirs.mkdir(parents=True)
    target = write(theirs, [HEADER, *GOOD])
    link = landing / "hartford_works" / "2025-12" / "participants.csv"
    os.symlink(target, link)  # stays inside landing/: still not this partner's file
    with pytest.raises(FileRejected, match="symbolic link") as info:
        intake.parse_drop_path(landing, link, as_of=AS_OF)
    assert info.value.code == "unsafe_path"
    os.symlink(landing / "other_partner", landing / "alias_partner")  # a linked folder
    files, refused = landing_files(landing)
    assert files == [target]
    assert sorted(r["file"] for r in refused) == ["alias_partner",
                                                  "hartford_works/2025-12/participants.csv"]
    with pytest.raises(FileRejected, match="symbolic link"):
        intake.read_table(link)


def test_33_unknown_dataset_and_layout(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    with pytest.raises(FileRejected, match="unknown dataset"):
        intake.parse_drop_path(landing, landing / "hartford_works" / "2025-12" /
                               "people.csv", as_of=AS_OF)
    with pytest.raises(FileRejected, match="expected <partner_id>"):
        intake.parse_drop_path(landing, landing / "participants.csv", as_of=AS_OF)
    with pytest.raises(FileRejected, match=r"\.csv, \.xlsx or \.parquet"):
        intake.parse_drop_path(landing, landing / "hartford_works" / "2025-12" /
                               "participants.exe", as_of=AS_OF)


def test_34_quarantine_share_above_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, ",Ann,Lee,2099-01-01,,", "R 2,Bo,Li,yesterday,,", GOOD[2]])
    outcome = ingest(path)
    assert outcome.file_verdict == "rejected"
    assert "2 of 3 rows" in outcome.reject_reason
    assert outcome.counts == {"read": 3, "accepted": 0, "quarantined": 3,
                              "rows_with_warnings": 0}
    assert reasons(outcome)[4] == "file:quarantine_share"
    lenient = ingest(path, max_quarantine_share=0.9)
    assert lenient.file_verdict == "accepted"
    assert lenient.counts["accepted"] == 1


def test_35_row_with_extra_fields(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, GOOD[0] + ",oops,more", GOOD[1] + ",,", GOOD[2]]))
    assert reasons(outcome) == {2: "row:malformed_row"}
    assert outcome.counts["accepted"] == 2  # trailing empty fields are fine


def test_36_short_rows_padded_and_blank_rows_skipped(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, "R1,Ann,Lee,1990-05-01", "", ",,,,,", GOOD[1]]))
    assert list(outcome.accepted["__row"]) == [2, 5]


def test_37_unbalanced_quote(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, 'R1,"Ann,Lee,1990-05-01,,', GOOD[1]]))
    assert outcome.counts["read"] <= 2  # the quote swallows the rest: still accounted


def test_38_column_and_value_maps(tmp_path: Path) -> None:
    path = write(tmp_path, ["Client ID,First,Surname,DOB,Gender", "C1,Ann,Lee,1990-05-01,2",
                            "C2,Bo,Li,1991-01-01,Woman"])
    outcome = ingest(path, column_map={"Client ID": "partner_record_id", "First": "first_name",
                                       "surname": "last_name", "DOB": "date_of_birth",
                                       "Gender": "sex"},
                     value_map={"sex": {"1": "M", "2": "F"}})
    assert list(outcome.accepted["sex"]) == ["F", "F"]
    assert list(outcome.accepted["partner_record_id"]) == ["C1", "C2"]


def test_39_profile_codes_warn_and_drop(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER + ",race,veteran,homeless",
                            GOOD[0] + ",Asian; WHITE,Y,maybe"])
    outcome = ingest(path)
    row = outcome.accepted.iloc[0]
    assert (row["race"], row["veteran"], row["homeless"]) == ("asian;white", "yes", None)
    assert [(i.field, i.rule) for i in outcome.issues] == [("homeless", "not_allowed")]


def test_40_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"partner_record_id": ["R1", "R2"], "first_name": ["Ann", "Bo"],
                          "last_name": ["Lee", "Li"],
                          "date_of_birth": [date(1990, 5, 1), date(2031, 1, 1)]})
    path = tmp_path / "participants.parquet"
    frame.to_parquet(path)
    outcome = ingest(path, max_quarantine_share=1.0)
    assert reasons(outcome) == {}
    assert list(outcome.accepted["date_of_birth"]) == ["1990-05-01", None]
    assert [(i.row, i.rule) for i in outcome.issues] == [(2, "future")]  # record number
    corrupt = tmp_path / "bad.parquet"
    corrupt.write_bytes(b"PAR1 nope")
    assert "Parquet" in rejected(corrupt).reason


def test_41_enrollments_exit_before_entry_and_codes(tmp_path: Path) -> None:
    path = write(tmp_path, [
        "partner_record_id,program_id,funding_stream,sector,entry_date,exit_date",
        "R1,P1,WIOA_Adult,Healthcare,2025-01-10,2024-12-01",
        "R2,P1,wioa_youth,space,2025-01-10,",
        "R3,P1,lottery,it,2025-01-10,",
        "R4,P1,wioa_youth,it,2025-01-10,2025-02-01",
    ], name="enrollments.csv")
    outcome = ingest(path, "enrollments", max_quarantine_share=1.0)
    assert reasons(outcome) == {2: "exit_date:before_entry_date",
                                4: "funding_stream:not_allowed"}
    assert outcome.accepted.set_index("partner_record_id").loc["R2", "sector"] is None


def test_check_file_and_report(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, GOOD[0], "R2,Bo,Li,2031-01-01,,", GOOD[2]])
    report = intake.check_file(path, "participants", partner_id="hw", as_of=AS_OF)
    assert report.verdict == "accepted"
    text = intake.render_check_report(report)
    assert "date_of_birth" in text and "future" in text and "read 3, accepted 3" in text
    bad = intake.check_file(write(tmp_path, "", name="e.csv"), "participants", as_of=AS_OF)
    assert bad.verdict == "rejected" and "empty" in bad.reason


def test_the_check_command_loads_neither_prefect_nor_gx_nor_duckdb(tmp_path: Path) -> None:
    """A partner's `pathlink check` stays a short command: the orchestration, Great
    Expectations (the default engine is the vectorised pass) and the warehouse's database are
    not imported (each is a tenth of a second or more of its 2 s budget on 20k rows)."""
    import subprocess
    import sys

    path = write(tmp_path, [HEADER, GOOD[0], "R2,Bo,Li,2031-01-01,,", GOOD[2]])
    program = ("import sys; from pipelines.cli import run_cli; "
               f"run_cli(['check', {str(path)!r}, '--dataset', 'participants', '--out', "
               f"{str(tmp_path / 'report.txt')!r}]); "
               "print(sorted(m for m in ('prefect', 'great_expectations', 'duckdb') "
               "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "accepted" in (tmp_path / "report.txt").read_text()


def test_issues_frame_shape(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, "R1,Ann,Lee,2031-01-01,000-11-2222,", *GOOD[1:]]))
    frame = intake.issues_frame(outcome)
    assert list(frame.columns) == ["source_row", "field", "rule", "severity", "action",
                                   "message"]
    assert set(frame["action"]) == {"field_dropped"}
    assert intake.contract_version("participants") == "participants@1.1.0"


# -- PII canaries ----------------------------------------------------------------------------
CANARIES = ["Qzxcanaryfirst", "Qzxcanarylast", "000-13-5791", "000135791", "qzx.canary@example.org",
            "77 Qzxcanary Lane", "8605559731", "1901-02-29", "Qzxcanarymid", "2099-07-13",
            "Qzxcanaryid"]


def _assert_no_canary(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary.lower() not in text.lower(), canary


def test_canaries_never_leave_the_data(tmp_path: Path) -> None:
    header = HEADER + ",middle_name,email,street_address"
    lines = [header,
             # quarantined: two rows share the id and differ; canaries in every PII field
             "Qzxcanaryid,Qzxcanaryfirst,=Qzxcanarylast(),1901-02-29,000-13-5791,8605559731,"
             "Qzxcanarymid,qzx.canary@example.org,77 Qzxcanary Lane",
             "Qzxcanaryid,Qzxcanaryfirst,Qzxcanarylast,1901-02-29,000-13-5791,8605559731,"
             "Qzxcanarymid,qzx.canary@example.org,77 Qzxcanary Lane",
             # kept with dropped fields: bad SSN, bad email, future-dated twin
             "R9,Qzxcanaryfirst,Qzxcanarylast,1990-01-01,000135791,86055597310000000,"
             "Qzxcanarymid1,qzx.canary@example.org@,77 Qzxcanary Lane",
             "R8,Qzxcanaryfirst,Qzxcanarylast,2099-07-13,,,,,",
             *(g + ",,," for g in GOOD)]
    path = write(tmp_path, lines)
    report = intake.check_file(path, "participants", partner_id="hw", as_of=AS_OF)
    outcome = report.outcome
    assert outcome is not None and outcome.counts["quarantined"] == 2
    assert outcome.counts["rows_with_warnings"] == 2  # R9 and R8 kept, fields dropped
    assert_accounting(outcome)
    gx_json = json.dumps(outcome.gx_result_json(), default=str)
    docs = intake.write_data_docs(outcome.gx_result, tmp_path / "docs")
    _assert_no_canary(
        *(f"{i.row} {i.field} {i.rule} {i.message}" for i in outcome.issues),
        intake.render_check_report(report), gx_json, docs.read_text(encoding="utf-8"),
        (tmp_path / "docs" / "summary.md").read_text(encoding="utf-8"),
        intake.issues_frame(outcome).to_csv(), str(outcome.reject_reason),
    )
    assert "__row" in gx_json
    assert "date_of_birth" in docs.read_text(encoding="utf-8")

    # a file rejected for a missing header: the first data row must not show up anywhere
    headless = write(tmp_path, lines[1:3], name="headless.csv")
    report = intake.check_file(headless, "participants", as_of=AS_OF)
    assert report.verdict == "rejected"
    _assert_no_canary(str(report.reason), intake.render_check_report(report),
                      *(f"{i.field} {i.message}" for i in report.issues))

    # rejected at read time, and over the quarantine share
    exc_texts = []
    over_share = write(tmp_path, [*lines[:3], lines[3]], name="q.csv")
    report = intake.check_file(over_share, "participants", as_of=AS_OF)
    assert report.verdict == "rejected" and report.outcome is not None
    exc_texts += [intake.render_check_report(report), str(report.reason),
                  json.dumps(report.outcome.gx_result_json(), default=str)]
    with pytest.raises(FileRejected) as info:
        report.outcome.raise_if_rejected()
    exc_texts.append(str(info.value))
    multi = _workbook(tmp_path / "participants.xlsx", {
        "A": [r.split(",") for r in lines[:2]], "B": [r.split(",") for r in lines[:2]]})
    with pytest.raises(FileRejected) as info:
        intake.read_table(multi)
    exc_texts.append(str(info.value))
    _assert_no_canary(*exc_texts)


def test_gx_result_has_only_row_ids(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, "R1,Qzxcanaryfirst,Lee,2099-07-13,,", *GOOD[1:]]))
    failed = [r for r in outcome.gx_result.results if not r.success]
    assert failed
    for result in failed:
        payload = result.result
        assert "unexpected_list" not in payload
        assert "partial_unexpected_list" not in payload
        assert payload["unexpected_index_list"]
        for item in payload["unexpected_index_list"]:
            assert set(item) == {"__row"}


def test_banner_style_record_ids_are_allowed(tmp_path: Path) -> None:
    outcome = ingest(write(tmp_path, [HEADER, "@00123456,Ann,Lee,1990-05-01,,",
                                      "=cmd,Bo,Li,1990-05-01,,", *GOOD[1:]]))
    assert reasons(outcome) == {3: "partner_record_id:format"}
