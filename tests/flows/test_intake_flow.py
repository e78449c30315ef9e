"""Intake through the real flow: no person is lost for a missing or bad identifier (issue 13),
and a messy export as partners send it passes `check` with no map written by hand and links
(issue 14).

One workspace, two partners, one run (module fixture): `messy_agency` sends an Excel-style CSV
(a title row, `First Name`/`DOB`/`SSN`/`Zip Code` headers, unpadded dates) holding a row with
each kind of bad identifier and the three structural faults; `clean_agency` sends the same
people in the contract's own layout.
"""

from __future__ import annotations

import io

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.state import StateStore
from pipelines.workspace import load_workspace

runner = CliRunner()
AS_OF = "2026-11-22"

MESSY = """\
Participant export - Hartford Youth Works,,,,,,,,
Run 11/20/2026 by case manager,,,,,,,,
Client ID,First Name,Last Name,DOB,SSN,Zip Code,City,Email,Phone Number
M01,Maria,Rivera,7/3/1998,214-55-1234,6106,Hartford,maria.r@example.org,860-555-0101
M02,Kevin,Okafor,11/3/2001,,06108,East Hartford,,
M03,,Whitfield,3/9/1999,301-44-9876,06112,Hartford,,
M04,Li,,2/8/1999,,06112,Hartford,li.chen@example.org,
M05,J0hn,Smith,4/4/2000,,06114,Hartford,,860-555-0144
M06,Ana,Lopez,,,06105,Hartford,ana.lopez@example.org,
M07,Tom,Reyes,7/3/2031,,06106,Hartford,,
M08,Ella,Burke,2/30/2001,,06106,Hartford,,
M09,Sam,Young,5/6/2019,,06106,Hartford,,
M10,Ivy,Park,5/6/01,,06106,Hartford,,
M11,Noah,Kim,8/9/2000,666-12-3456,06106,Hartford,,
M12,Zoe,Hill,1/2/1997,,06105,=HYPERLINK("x"),,
M13,=cmd(),Gray,6/7/1996,,06105,Hartford,,
M14,,,,,,,,
,Orphan,Noid,1/1/2000,,06106,Hartford,,
M15,Dup,One,1/1/2000,,06106,Hartford,,
M15,Dup,Two,1/1/2000,,06106,Hartford,,
M16,Extra,Field,1/1/2000,,06106,Hartford,,,spill,over
"""

CLEAN = """\
partner_record_id,first_name,last_name,date_of_birth,ssn,zip,city,email
C01,Maria,Rivera,1998-07-03,214-55-1234,06106,Hartford,maria.r@example.org
C02,Kevin,Okafor,2001-11-03,,06108,East Hartford,
C03,Dana,Whitfield,1999-03-09,301-44-9876,06112,Hartford,
C04,Li,Chen,1999-02-08,,06112,Hartford,li.chen@example.org
"""

#: Rows of MESSY kept (every kind of bad identifier drops a field, not the row) ...
KEPT = [f"M{i:02d}" for i in range(1, 15)]
#: ... and the only rows quarantined: no id, a conflicting duplicate id (both), a broken line.
STRUCTURAL = {"M15", "M16"}


@pytest.fixture(scope="module")
def linked(tmp_path_factory, prefect_harness) -> dict:
    root = tmp_path_factory.mktemp("intake") / "ws"
    result = runner.invoke(app, ["init", str(root), "--partners", "messy_agency,clean_agency"])
    assert result.exit_code == 0, result.output
    for partner, text in (("messy_agency", MESSY), ("clean_agency", CLEAN)):
        path = root / "landing" / partner / "2026-10" / "participants.csv"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    check = runner.invoke(app, ["check", str(root / "landing" / "messy_agency" / "2026-10" /
                                             "participants.csv"), "--dataset", "participants"])
    run = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert run.exit_code == 0, run.output
    crosswalk = runner.invoke(app, ["crosswalk", "--workspace", str(root)])
    assert crosswalk.exit_code == 0, crosswalk.output
    with duckdb.connect(str(load_workspace(root).warehouse_db), read_only=True) as con:
        persons = {r[0] for r in con.execute("SELECT person_id FROM person").fetchall()}
    return {"root": root, "check": check, "run": run, "persons": persons,
            "crosswalk": pd.read_csv(io.StringIO(crosswalk.stdout), dtype=str)}


def test_messy_extract_passes_check_with_no_map_and_links(linked: dict) -> None:
    check = linked["check"]
    assert check.exit_code == 0, check.output
    out = check.output
    assert "Verdict:   ACCEPTED" in out
    assert "header row 3" in out  # two title rows skipped
    for line in ("Client ID -> partner_record_id", "First Name -> first_name",
                 "DOB -> date_of_birth", "SSN -> ssn", "Zip Code -> zip"):
        assert line in out, line
    crosswalk = linked["crosswalk"]
    person = dict(zip(crosswalk["partner_id"] + ":" + crosswalk["partner_record_id"],
                      crosswalk["person_id"], strict=True))
    assert person["messy_agency:M01"] == person["clean_agency:C01"]  # 7/3/1998, ZIP 6106
    assert person["messy_agency:M02"] == person["clean_agency:C02"]  # 11/3/2001, no SSN


def test_no_person_is_lost_for_a_missing_or_bad_identifier(linked: dict) -> None:
    crosswalk = linked["crosswalk"]
    messy = crosswalk[crosswalk["partner_id"] == "messy_agency"]
    # every row of the drop is in the crosswalk except the structural ones
    assert sorted(messy["partner_record_id"]) == KEPT
    assert not STRUCTURAL & set(messy["partner_record_id"])
    # ... and every person of the crosswalk is published in `person`
    assert set(crosswalk["person_id"]) <= linked["persons"]
    # the record with nothing to link on is its own person, counted in the run summary
    person = dict(zip(messy["partner_record_id"], messy["person_id"], strict=True))
    assert list(crosswalk["person_id"]).count(person["M14"]) == 1
    assert "1 with nothing to link on, each its own person" in " ".join(
        linked["run"].output.split())
    # records that lost a name or a dob still link on what remains
    everyone = dict(zip(crosswalk["partner_id"] + ":" + crosswalk["partner_record_id"],
                        crosswalk["person_id"], strict=True))
    assert everyone["messy_agency:M03"] == everyone["clean_agency:C03"]  # first name empty

    with StateStore(load_workspace(linked["root"]).state_db) as state:
        files = state.status()
        issues = state.con.execute(
            "SELECT i.source_row, i.field, i.rule, i.action FROM row_issues i JOIN files f "
            "USING (sha256) WHERE f.partner_id = 'messy_agency' ORDER BY 1, 2").fetchall()
    row = files[files["partner_id"] == "messy_agency"].iloc[0]
    assert (row["rows_read"], row["rows_accepted"], row["rows_quarantined"]) == (18, 14, 4)
    found = {(r[0], r[1], r[2], r[3]) for r in issues}
    # file rows: title 1-2, header 3, M01 = 4 ... M16 = 21
    for expected in [(6, "first_name", "missing", "field_dropped"),
                     (7, "last_name", "missing", "field_dropped"),
                     (8, "first_name", "format", "field_dropped"),
                     (9, "date_of_birth", "missing", "field_dropped"),
                     (10, "date_of_birth", "future", "field_dropped"),
                     (11, "date_of_birth", "impossible", "field_dropped"),
                     (12, "date_of_birth", "age_out_of_range", "field_dropped"),
                     (13, "date_of_birth", "two_digit_year", "field_dropped"),
                     (14, "ssn", "invalid_area", "field_dropped"),
                     (15, "city", "formula_injection", "field_dropped"),
                     (16, "first_name", "formula_injection", "field_dropped"),
                     (18, "partner_record_id", "missing", "quarantined"),
                     (19, "partner_record_id", "conflicting_duplicate", "quarantined"),
                     (20, "partner_record_id", "conflicting_duplicate", "quarantined"),
                     (21, "row", "malformed_row", "quarantined")]:
        assert expected in found, expected


#: Every personal value of the messy drop that feedback must never print.
PERSONAL = ["Maria", "Rivera", "Okafor", "Whitfield", "J0hn", "Smith", "Lopez", "Reyes",
            "Burke", "Young", "Park", "Hill", "Gray", "Orphan", "Noid", "214-55-1234",
            "301-44-9876", "666-12-3456", "7/3/1998", "5/6/01", "2/30/2001", "7/3/2031",
            "maria.r@example.org", "860-555-0101", "HYPERLINK", "=cmd", "spill"]


def test_feedback_names_rows_fields_rules_and_fixes_never_a_value(linked: dict,
                                                                   tmp_path) -> None:
    root = linked["root"]
    for name in ("feedback.txt", "feedback.csv", "feedback.json"):
        out = tmp_path / name
        result = runner.invoke(app, ["feedback", "--workspace", str(root), "--partner",
                                     "messy_agency", "-o", str(out)])
        assert result.exit_code == 0, result.output
        text = out.read_text()
        assert [value for value in PERSONAL if value in text] == []
        assert "two_digit_year" in text and "date_of_birth" in text
        assert "Write the year with four digits" in text  # the plain-language fix
    rows = pd.read_csv(tmp_path / "feedback.csv", dtype=str)
    assert list(rows.columns) == ["period", "file", "row", "field", "rule", "severity",
                                  "action", "fix"]
    assert ("13", "date_of_birth", "two_digit_year") in set(
        zip(rows["row"], rows["field"], rows["rule"], strict=True))
    print((tmp_path / "feedback.txt").read_text())  # shown with -s (the closing note)


def _release(root) -> dict[str, list[tuple]]:
    with duckdb.connect(str(load_workspace(root).warehouse_db), read_only=True) as con:
        return {table: sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("person", "participation", "person_profile")}


def test_reprocessing_is_recorded_and_changes_nothing_when_nothing_changed(linked: dict
                                                                           ) -> None:
    root = linked["root"]
    before = _release(root)
    again = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert "nothing new to process" in again.output  # unchanged: not read again
    forced = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF,
                                 "--reprocess", "messy_agency/2026-10"])
    assert forced.exit_code == 0, forced.output
    assert "messy_agency/participants.csv: processed because reprocess_requested" in \
        forced.output
    assert _release(root) == before  # same file, same map: the same published content

    # a change to the partner's map makes its drops eligible again by itself
    config = root / "pathlink.toml"
    config.write_text(config.read_text().replace(
        "[partners.clean_agency]\n", "[partners.clean_agency]\nage_max = 99\nage_min = 14\n"))
    changed = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert changed.exit_code == 0, changed.output
    assert "clean_agency/participants.csv: processed because map_changed" in changed.output
    assert "messy_agency" not in changed.output.split("Run ", 1)[1].split("records ->")[0]
    assert _release(root) == before

    # a drop read under an earlier contract version is eligible again by itself (the ledger
    # is set back to what a run under participants@1.0.0 would have recorded)
    with StateStore(load_workspace(root).state_db) as state:
        current = state.con.execute(
            "SELECT DISTINCT contract FROM files WHERE partner_id = 'messy_agency'").fetchall()
        state.con.execute("UPDATE files SET contract = 'participants@1.0.0' "
                          "WHERE partner_id = 'messy_agency'")
    assert current != [("participants@1.0.0",)]
    contract = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert contract.exit_code == 0, contract.output
    assert "messy_agency/participants.csv: processed because contract_changed" in \
        contract.output
    assert "clean_agency" not in contract.output.split("Run ", 1)[1].split("records ->")[0]
    assert _release(root) == before
    with StateStore(load_workspace(root).state_db) as state:
        ledger = state.reprocessing()
        files = state.status()
        recorded = state.con.execute(
            "SELECT DISTINCT contract FROM files WHERE partner_id = 'messy_agency' "
            "AND status = 'accepted'").fetchall()
    assert recorded == current  # recorded again under the contract it was read with
    assert list(ledger["because"]) == ["reprocess_requested", "map_changed",
                                       "contract_changed"]
    assert list(ledger["partner_id"]) == ["messy_agency", "clean_agency", "messy_agency"]
    assert list(ledger["previous_contract"])[-1] == "participants@1.0.0"
    assert set(files["status"]) == {"accepted"}
    bad = runner.invoke(app, ["run", "--workspace", str(root), "--reprocess", "nobody"])
    assert bad.exit_code == 1 and "not registered" in bad.output

    # a file the hub encoded under an earlier encoding schema is encoded again by itself, its
    # records keep their persons (the ledger and the stored versions set back to what a run
    # under pathlink-encoding/2 would have recorded)
    with StateStore(load_workspace(root).state_db) as state:
        state.con.execute("UPDATE files SET encoding_schema = 'pathlink-encoding/2' "
                          "WHERE partner_id = 'clean_agency' AND status = 'accepted'")
        state.con.execute("UPDATE record_versions SET encoding_schema = 'pathlink-encoding/2' "
                          "WHERE partner_id = 'clean_agency'")
    encoding = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert encoding.exit_code == 0, encoding.output
    assert "clean_agency/participants.csv: processed because encoding_changed" in \
        encoding.output
    assert "messy_agency" not in encoding.output.split("Run ", 1)[1].split("records ->")[0]
    assert _release(root) == before
    with StateStore(load_workspace(root).state_db) as state:
        schemas = state.con.execute(
            "SELECT DISTINCT encoding_schema FROM record_versions r WHERE partner_id = "
            "'clean_agency' AND file_sha256 IN (SELECT sha256 FROM files WHERE status = "
            "'accepted')").fetchall()
        because = state.reprocessing()["because"].iloc[-1]
    assert schemas == [("pathlink-encoding/3",)] and because == "encoding_changed"
