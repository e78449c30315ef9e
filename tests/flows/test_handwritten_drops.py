"""Drops written by hand (not by `pathlink synth`), through the CLI: init, run, crosswalk,
then a corrected file replaces the earlier one and the replacement is recorded."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.state import StateStore
from pipelines.workspace import load_workspace

runner = CliRunner()
AS_OF = "2026-11-22"

AGENCY_A = """\
partner_record_id,first_name,last_name,date_of_birth,ssn,sex,street_address,city,state,zip
A1,María,Rivera-Santos,1998-04-12,214-55-1234,F,12 Park St,Hartford,CT,06106
A2,Kevin,Okafor,2001-11-03,,M,88 Main St,East Hartford,CT,06108
A3,Dana,Whitfield,1999-07-21,301-44-9876,F,5 Oak Ave,Hartford,CT,06112
A4,Dara,Whitfield,1999-07-21,301-44-9877,F,5 Oak Ave,Hartford,CT,06112
"""
AGENCY_B = """partner_record_id;first_name;last_name;date_of_birth;ssn;sex
B7;Maria;Rivera Santos;04/12/1998;214-55-1234;F
B8;Kevin;Okafor;11/03/2001;;M
B9;Li;Chen;02/28/1985;;F
"""


def _crosswalk(root: Path) -> pd.DataFrame:
    result = runner.invoke(app, ["crosswalk", "--workspace", str(root)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.stdout), dtype=str)


def test_handwritten_drops_link_and_a_corrected_file_replaces_the_old(
        tmp_path: Path, prefect_harness) -> None:
    root = tmp_path / "collab"
    result = runner.invoke(app, ["init", str(root), "--partners", "agency_a,agency_b"])
    assert result.exit_code == 0, result.output
    for partner, text, name in (("agency_a", AGENCY_A, "participants.csv"),
                                ("agency_b", AGENCY_B, "participants.csv")):
        path = root / "landing" / partner / "2026-09" / name
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")

    result = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    crosswalk = _crosswalk(root)
    assert list(crosswalk.columns) == ["partner_id", "partner_record_id", "person_id"]
    assert len(crosswalk) == 7
    person = dict(zip(crosswalk["partner_id"] + ":" + crosswalk["partner_record_id"],
                      crosswalk["person_id"], strict=True))
    assert person["agency_a:A1"] == person["agency_b:B7"]  # accents, hyphen, date format
    assert person["agency_a:A2"] == person["agency_b:B8"]  # no SSN: name + DOB
    assert person["agency_a:A3"] != person["agency_a:A4"]  # twins at one address
    assert person["agency_b:B9"] not in {person[k] for k in person if k != "agency_b:B9"}

    # agency_b sends a corrected file for the same period: Li Chen's DOB fixed, B8 removed.
    corrected = AGENCY_B.replace("02/28/1985", "02/28/1986").replace(
        "B8;Kevin;Okafor;11/03/2001;;M\n", "")
    (root / "landing" / "agency_b" / "2026-09" / "participants.csv").write_text(corrected)
    result = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    after = _crosswalk(root)
    assert len(after) == 6
    assert "B8" not in set(after["partner_record_id"])
    after_person = dict(zip(after["partner_id"] + ":" + after["partner_record_id"],
                            after["person_id"], strict=True))
    assert after_person["agency_a:A1"] == person["agency_a:A1"]  # person IDs carried over
    with StateStore(load_workspace(root).state_db) as state:
        files = state.status()
    b_files = files[files["partner_id"] == "agency_b"]
    assert sorted(b_files["status"]) == ["accepted", "superseded"]

    # The same drop again changes nothing.
    result = runner.invoke(app, ["run", "--workspace", str(root), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "nothing new to process" in result.output
