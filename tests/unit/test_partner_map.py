"""The partner's own map, away from the workspace: `check` suggests the lines, `check --map`
and `encode --map` read the headers exactly as the hub will."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from pipelines.cli import run_cli

CSV = ("Cust Num,First Name,Fam,Birth Dt,Soc\n"
       "C1,Ann,Lee,7/3/1990,212-34-5678\n"
       "C2,Bo,Li,11/30/1991,\n")
MAP = """[partners.agency_a.columns]
"Cust Num" = "partner_record_id"
"Fam" = "last_name"
"Birth Dt" = "date_of_birth"
"Soc" = "ssn"
"""


def test_check_suggests_map_lines_then_passes_with_the_map(tmp_path: Path, capsys) -> None:
    # (headers are echoed only from a row that names two fields or more: a file without a
    # header row must not print its first data row)
    extract = tmp_path / "extract.csv"
    extract.write_text(CSV)
    assert run_cli(["check", str(extract), "--dataset", "participants",
                    "--partner", "agency_a"]) == 1
    out = capsys.readouterr().out
    assert "[partners.agency_a.columns]" in out
    assert '"Cust Num" = ' in out and '"Fam" = ' in out and '"Soc" = ' in out
    assert "Ann" not in out and "212-34-5678" not in out
    mapping = tmp_path / "agency_a.toml"
    mapping.write_text(MAP)
    assert run_cli(["check", str(extract), "--dataset", "participants", "--partner",
                    "agency_a", "--map", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert "Cust Num -> partner_record_id  [your map in pathlink.toml]" in out
    assert "First Name -> first_name  [field name]" in out
    assert "read 2, accepted 2" in out


def test_encode_with_the_map(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATHLINK_SECRET_MAP_TEST", "B" * 43)
    extract = tmp_path / "extract.csv"
    extract.write_text(CSV)
    mapping = tmp_path / "agency_a.toml"
    mapping.write_text(MAP)
    out = tmp_path / "participants.encoded.parquet"
    assert run_cli(["encode", str(extract), "--partner", "agency_a", "-o", str(out),
                    "--key-id", "map-test", "--map", str(mapping)]) == 0
    table = pq.read_table(out)
    assert table.column("partner_record_id").to_pylist() == ["C1", "C2"]
    assert table.column("birth_year").to_pylist() == [1990, 1991]
    assert run_cli(["encode", str(extract), "--partner", "agency_b", "-o", str(out),
                    "--key-id", "map-test", "--map", str(mapping), "--overwrite"]) == 2
    assert "no [partners.agency_b] table" in capsys.readouterr().err


def test_init_and_partners_add_write_a_commented_example_map(tmp_path: Path,
                                                            monkeypatch) -> None:
    import tomllib

    from pipelines.workspace import add_partner, init_workspace, load_workspace

    monkeypatch.setenv("PATHLINK_SECRET_EX", "C" * 43)
    root = tmp_path / "ws"
    init_workspace(root, ["agency_a"], key_id="ex")
    add_partner(root, "agency_b", name="B")
    text = (root / "pathlink.toml").read_text()
    for partner in ("agency_a", "agency_b"):
        assert f"# [partners.{partner}.columns]  # your header = contract field" in text
        assert f"# [partners.{partner}.values.sex]" in text
    assert tomllib.loads(text)["partners"]["agency_b"] == {"name": "B"}  # comments only
    # uncommenting the example gives a working map
    (root / "pathlink.toml").write_text(text.replace(
        '# [partners.agency_a.columns]', '[partners.agency_a.columns]').replace(
        '# "Client Number" = "partner_record_id"', '"Client Number" = "partner_record_id"'))
    assert load_workspace(root).partner("agency_a").columns == {
        "Client Number": "partner_record_id"}


def test_template_writes_a_header_csv_and_a_described_workbook(tmp_path: Path,
                                                               capsys) -> None:
    import openpyxl

    from data_contracts import load_contract
    from pipelines import ingest

    assert run_cli(["template", "participants", "-o", str(tmp_path)]) == 0
    columns = load_contract("participants").columns
    assert (tmp_path / "participants.csv").read_text().strip() == ",".join(columns)
    workbook = openpyxl.load_workbook(tmp_path / "participants.xlsx")
    assert workbook.sheetnames == ["participants", "fields"]
    fields = list(workbook["fields"].iter_rows(values_only=True))
    assert [row[0] for row in fields[1:]] == columns
    described = {row[0]: row for row in fields[1:]}
    assert "M/D/YYYY" in described["date_of_birth"][3]
    assert "DOB" not in described["date_of_birth"][4] and "dob" in described["date_of_birth"][4]
    assert described["partner_record_id"][1] == "yes"
    # both read back as the contract's header with no rows
    for name in ("participants.csv", "participants.xlsx"):
        read = ingest.read_table(tmp_path / name)
        assert read.rows == 0 and not read.header.unplaced
        assert read.header.fields == columns
    assert run_cli(["template", "participants", "-o", str(tmp_path)]) == 1  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_check_csv_and_json_list_every_issue_with_a_summary_by_rule(tmp_path: Path,
                                                                     capsys) -> None:
    """The table stops at 200 issues; the file formats list every one, each with its row,
    field, rule and fix, and a summary by rule, and no value of the file."""
    import csv
    import json

    lines = ["Client ID,First Name,Last Name,DOB,SSN,Zip Code"]
    # 250 rows, each with a two-digit year (dob dropped) and an SSN in area 000 (ssn dropped)
    lines += [f"R{i},Ann,Lee,5/6/{i % 90 + 10:02d},000-12-34{i % 100:02d},6106"
              for i in range(250)]
    extract = tmp_path / "participants.csv"
    extract.write_text("\n".join(lines) + "\n")

    assert run_cli(["check", str(extract)]) == 0
    assert "and 300 more issues" in capsys.readouterr().out

    as_csv, as_json = tmp_path / "issues.csv", tmp_path / "issues.json"
    assert run_cli(["check", str(extract), "--format", "csv", "-o", str(as_csv)]) == 0
    err = capsys.readouterr().err
    assert "250  two_digit_year  date_of_birth  field_dropped" in err
    assert "250  invalid_area  ssn  field_dropped" in err
    assert run_cli(["check", str(extract), "--format", "json", "-o", str(as_json)]) == 0
    capsys.readouterr()

    rows = list(csv.DictReader(as_csv.open()))
    assert len(rows) == 500
    assert {(r["field"], r["rule"]) for r in rows} == {("date_of_birth", "two_digit_year"),
                                                        ("ssn", "invalid_area")}
    assert sorted({int(r["row"]) for r in rows}) == list(range(2, 252))  # file rows
    assert all(r["fix"] for r in rows)
    report = json.loads(as_json.read_text())
    assert len(report["issues"]) == 500
    assert {(s["rule"], s["field"], s["rows"]) for s in report["summary"]} == {
        ("two_digit_year", "date_of_birth", 250), ("invalid_area", "ssn", 250)}
    for text in (as_csv.read_text(), as_json.read_text()):
        assert not any(value in text for value in ("Ann", "Lee", "5/6/", "000-12-34"))
