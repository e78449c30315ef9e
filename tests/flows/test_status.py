"""`pathlink status`: per period and partner what arrived, when processed, versions, quarantine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _ops import AS_OF
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.orchestration.flows import run_workspace

runner = CliRunner()


def test_status_reports_ledger_versions_and_quarantine_by_rule(tmp_path: Path,
                                                               uninterrupted: dict) -> None:
    root = tmp_path / "copy"
    shutil.copytree(uninterrupted["root"], root)
    november = root / "landing" / "youth_dept" / "2026-11" / "participants.csv"
    november.parent.mkdir(parents=True)
    november.write_text(
        "partner_record_id,first_name,last_name,date_of_birth\n"
        "Y-NEW-1,Ann,Lee,2008-01-02\n"
        ",Bo,Li,2008-03-04\n"            # no partner_record_id: quarantined
        "Y-NEW-3,Cy,Dee,2008-13-45\n"    # impossible date of birth: the dob is dropped
        "Y-NEW-4,Di,Eve,2007-05-06\n"
        "Y-NEW-5,Ed,Fox,2007-07-08\n"
        "Y-NEW-6,Flo,Gee,2009-09-10\n"   # two rows share an id and differ: both
        "Y-NEW-6,Flo,Gie,2009-09-10\n"   # quarantined
        "Y-NEW-7,Gus,Hay,2006-11-12\n"
    )
    run_workspace(root, as_of=AS_OF, seed=9)
    late = root / "landing" / "workforce_board" / "2026-11" / "participants.csv"
    late.parent.mkdir(parents=True)
    late.write_text("partner_record_id,first_name,last_name,date_of_birth\n")

    result = runner.invoke(app, ["status", "--workspace", str(root), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    files = report["files"]
    assert len(files) == 7
    assert {(f["period"], f["partner_id"]) for f in files} == {
        (p, partner) for p in ("2026-09", "2026-10")
        for partner in ("community_college", "workforce_board", "youth_dept")
    } | {("2026-11", "youth_dept")}
    for row in files:
        assert row["status"] == "accepted"
        assert row["processed_at"] and row["published_at"] >= row["processed_at"]
        assert row["contract"] and row["code_version"].startswith("pathlink ")
        assert row["key_fingerprint"] and row["encoding_schema"]
        assert row["rows_read"] == row["rows_accepted"] + row["rows_quarantined"]
        by_rule = dict(part.rsplit(": ", 1) for part in
                       (row["quarantined_by_rule"] or "").split(", ") if part)
        assert bool(by_rule) == (row["rows_quarantined"] > 0), row
        assert all(0 < int(n) <= row["rows_quarantined"] for n in by_rule.values())
        assert sum(int(n) for n in by_rule.values()) >= row["rows_quarantined"]
    november_row = next(row for row in files if row["period"] == "2026-11")
    assert (november_row["rows_read"], november_row["rows_accepted"],
            november_row["rows_quarantined"]) == (8, 5, 3)
    assert november_row["quarantined_by_rule"], november_row
    assert "Ann" not in result.stdout and "Lee" not in result.stdout  # counts only, no values
    assert report["pending"] == [{"file": "workforce_board/2026-11/participants.csv",
                                  "partner_id": "workforce_board", "period": "2026-11",
                                  "dataset": "participants"}]
    assert report["unpublished_periods"] == []
    assert [r["status"] for r in report["runs"]] == ["completed", "completed"]

    table = runner.invoke(app, ["status", "--workspace", str(root), "--wide"],
                          env={"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    assert "quarantined by rule" in table.stdout
    assert "arrived, not yet processed: workforce_board/2026-11/participants.csv" in table.stdout

    # the default layout fits 80 columns, in a pipe as on a terminal
    compact = runner.invoke(app, ["status", "--workspace", str(root)])
    assert compact.exit_code == 0, compact.output
    lines = compact.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert sum(line.startswith(("2026-09", "2026-10", "2026-11")) for line in lines) == 7
    assert "arrived, not yet processed: workforce_board/2026-11/participants.csv" in lines
    assert any(line.startswith("quarantined 2026-11 youth_dept participants:")
               for line in lines)
    as_csv = runner.invoke(app, ["status", "--workspace", str(root), "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout.splitlines()[0].startswith("period,partner_id,dataset,status")
    assert len(as_csv.stdout.splitlines()) == 8
