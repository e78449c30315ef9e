"""Canary test: planted PII never leaves landing/ (state, published, Prefect home, logs)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.orchestration.flows import run_workspace
from pipelines.workspace import init_workspace

AS_OF = "2026-11-22"
HEADER = ("partner_record_id,first_name,middle_name,last_name,suffix,date_of_birth,ssn,sex,"
          "street_address,city,state,zip,phone,email")

# Unique values that occur nowhere else; each has the forms a pipeline might write it in.
CANARIES = {
    "first_name": ["Qzxwvandorf", "qzxwvandorf", "QZXWVANDORF"],
    "last_name": ["Vrbklemtiss", "vrbklemtiss", "VRBKLEMTISS"],
    "ssn": ["219-47-8163", "219478163"],
    "email": ["canary.qzx81@example.org", "CANARY.QZX81@EXAMPLE.ORG"],
    "phone": ["(860) 247-9183", "8602479183", "+18602479183"],
    "street": ["4471 Quillfeather Lane", "4471 QUILLFEATHER LN"],
}
NEEDLES = sorted({v for values in CANARIES.values() for v in values})


def _drop(landing: Path, partner: str, period: str, rows: list[str]) -> None:
    path = landing / partner / period / "participants.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n")


def _text_hits(root: Path, skip: Path | None = None) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file() or (skip is not None and skip in path.parents):
            continue
        data = path.read_bytes()
        found = [n for n in NEEDLES if n.encode() in data or n.encode("utf-16-le") in data]
        if found:
            hits[str(path)] = found
    return hits


def _duckdb_hits(path: Path) -> list[str]:
    """Search every column of every table and view (DuckDB compresses strings, so bytes scans
    miss): one scan per relation counts, for each column, the rows holding each needle."""
    con = duckdb.connect(str(path), read_only=True)
    found = []
    try:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "ORDER BY table_name, ordinal_position").fetchall():
            columns.setdefault(table, []).append(column)
        needles = [n.lower() for n in NEEDLES]
        for table, names in columns.items():
            counts = con.execute(
                "SELECT " + ", ".join(f'count_if(contains(lower(CAST("{c}" AS VARCHAR)), ?))'
                                      for c in names for _ in needles)
                + f' FROM "{table}"', needles * len(names)).fetchall()[0]
            found += [f"{table}.{c}:{needle}" for (c, needle), count in zip(
                ((c, n) for c in names for n in NEEDLES), counts, strict=True) if count]
    finally:
        con.close()
    return found


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory, prefect_harness, synthetic_drops):
    root = tmp_path_factory.mktemp("privacy") / "ws"
    init_workspace(root, ["workforce_board", "youth_dept", "civic_assoc"], key_id="canary")
    for partner in ("workforce_board", "youth_dept"):
        shutil.copytree(synthetic_drops / "landing" / partner, root / "landing" / partner,
                        dirs_exist_ok=True)
    canary = ("Qzxwvandorf,,Vrbklemtiss,,1991-03-14,219-47-8163,F,4471 Quillfeather Lane,"
              "Hartford,CT,06106,(860) 247-9183,canary.qzx81@example.org")
    # The same canary person accepted, accepted with its future DOB dropped, quarantined
    # (two rows share an id and differ), and in a file rejected whole (missing required
    # column) at another partner.
    _drop(root / "landing", "civic_assoc", "2026-09", [
        "C-1," + canary,
        "C-2," + canary.replace("1991-03-14", "2030-01-01"),
        "C-3," + canary,
        "C-3," + canary.replace("Hartford", "Bristol"),
    ])
    rejected = root / "landing" / "workforce_board" / "2026-10" / "participants.csv"
    rejected.write_text("partner_record_id,first_name,date_of_birth,ssn,email\n"
                        "W-9,Qzxwvandorf,1991-03-14,219-47-8163,canary.qzx81@example.org\n")
    return root


def test_canaries_never_leave_landing(canary_run: Path, prefect_harness, caplog, capfd) -> None:
    with caplog.at_level(logging.DEBUG):
        summary = run_workspace(canary_run, as_of=AS_OF, seed=3)
    statuses = {d["rel_path"]: d for p in summary["periods"] for d in p["drops"]}
    assert statuses["civic_assoc/2026-09/participants.csv"]["rows_quarantined"] == 2
    assert statuses["civic_assoc/2026-09/participants.csv"]["rows_accepted"] == 2
    assert statuses["workforce_board/2026-10/participants.csv"]["status"] == "rejected"

    # 1. every file of the workspace outside landing/
    assert _text_hits(canary_run, skip=canary_run / "landing") == {}
    for db in canary_run.rglob("*.duckdb"):
        assert _duckdb_hits(db) == [], db
    # 2. the Prefect home and the harness database (flow/task runs, logs, states, artifacts)
    assert _text_hits(prefect_harness["home"]) == {}
    if prefect_harness["db_dir"] is not None:
        assert _text_hits(prefect_harness["db_dir"]) == {}
    # 3. captured logs and console output
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert [n for n in NEEDLES if n in logged] == []
    # 4. the scan covered the reports written for the partner of the quarantined drop
    reports = canary_run / "state" / "reports" / "civic_assoc" / "2026-09" / "participants"
    assert (reports / "index.html").is_file()
    summary = (reports / "summary.md").read_text()
    assert "| date_of_birth | invalid_date | warning | 1 |" in summary
    assert "| partner_record_id | duplicate | error | 2 |" in summary


def test_the_canary_scan_would_see_a_leak(tmp_path: Path) -> None:
    leaky = tmp_path / "leak.txt"
    leaky.write_text("x Vrbklemtiss y")
    assert _text_hits(tmp_path) == {str(leaky): ["Vrbklemtiss"]}
    con = duckdb.connect(str(tmp_path / "leak.duckdb"))
    con.execute("CREATE TABLE t AS SELECT 'Qzxwvandorf' AS name FROM range(5000)")
    con.close()
    assert _duckdb_hits(tmp_path / "leak.duckdb") == [
        "t.name:QZXWVANDORF", "t.name:Qzxwvandorf", "t.name:qzxwvandorf"]
