"""Key rotation through the hub's monthly flow (docs/keys.md, "Rotation").

Month 1 every partner encodes under key A. The analyst rotates (`pathlink keys rotate`): B is
current, A previous. Month 2 is the overlap: each partner drops its full extract encoded under
both keys; one partner leaves a record out of its B file. Then A is retired (`pathlink keys
retire`) and month 3 arrives under B only, with a stale A drop that must be refused.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from keys import SharedSecret, generate_secret
from keys.secret import material_of
from pipelines.cli import app
from pipelines.ingest.encoded import encode_file, encoded_drop_name, write_encoded
from pipelines.orchestration.flows import run_workspace
from pipelines.state import StateStore
from pipelines.steps.status import status_report
from pipelines.workspace import WorkspaceError, init_workspace, load_workspace

runner = CliRunner()
AS_OF = "2026-03-28"
HEADER = ("partner_record_id,first_name,last_name,date_of_birth,ssn,sex,street_address,city,"
          "state,zip,phone,email")

# Canary-like values (occur nowhere else); the whole workspace holds only encoded drops.
PEOPLE = {
    "ann": "Annelora,Quistwhaler,2001-01-02,214-55-1234,F,12 Ploverquist St,Hartford,CT,06106,"
           "(860) 555-0141,annelora.q@example.org",
    "bo": "Boskavel,Wrengleton,2002-03-04,301-44-9876,M,88 Main St,Hartford,CT,06112,"
          "(860) 555-0177,",
    "cy": "Cyrendal,Dizzamore,2003-05-06,402-33-5566,M,5 Oak Ave,East Hartford,CT,06108,,",
    "dee": "Deverilla,Parnashke,2000-07-08,,F,9 Elm St,Hartford,CT,06105,,dee.p@example.org",
    "eve": "Evanthe,Stolbrook,1999-09-10,523-12-3344,F,40 Pine St,Hartford,CT,06114,,",
    "fay": "Fayelin,Ruizmont,2004-11-12,,F,7 Ash St,Hartford,CT,06106,(860) 555-0199,",
}
CANARIES = ["Annelora", "Quistwhaler", "quistwhaler", "214-55-1234", "214551234",
            "Ploverquist", "PLOVERQUIST", "annelora.q@example.org", "8605550141",
            "Wrengleton", "wrengleton", "Dizzamore", "Stolbrook", "523123344", "Ruizmont"]

YOUTH = {"Y1": "ann", "Y2": "bo", "Y3": "cy", "Y4": "dee"}
COLLEGE = {"C1": "ann", "C2": "bo", "C3": "eve"}


def _csv(path: Path, rows: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n" + "".join(f"{rid},{PEOPLE[who]}\n"
                                            for rid, who in rows.items()))
    return path


def _partner_drop(root: Path, outside: Path, partner: str, period: str, rows: dict[str, str],
                  secret: SharedSecret, name: str) -> Path:
    """What `pathlink encode` does on the partner's machine; only the Parquet is dropped."""
    extract = _csv(outside / partner / period / f"{name}.csv", rows)
    drop = encode_file(extract, partner_id=partner, secret=secret, period=period,
                       as_of=date.fromisoformat(AS_OF))
    return write_encoded(drop, root / "landing" / partner / period / name)


def _persons(root: Path) -> dict[str, str]:
    with StateStore(load_workspace(root).state_db) as state:
        crosswalk = state.crosswalk()
    return dict(zip(crosswalk["record_key"], crosswalk["person_id"], strict=True))


def _drops(summary: dict) -> dict[str, dict]:
    return {d["rel_path"]: d for p in summary["periods"] for d in p["drops"]}


def _material_forms(*secrets: SharedSecret) -> list[str]:
    forms = []
    for secret in secrets:
        raw = material_of(secret)
        forms += [base64.urlsafe_b64encode(raw).decode(),
                  base64.urlsafe_b64encode(raw).decode().rstrip("="),
                  base64.b64encode(raw).decode(), raw.hex()]
    return forms


def _file_hits(root: Path, needles: list[str], skip: tuple[Path, ...] = ()) -> dict[str, list]:
    hits = {}
    for path in root.rglob("*"):
        if not path.is_file() or any(s in path.parents for s in skip):
            continue
        data = path.read_bytes()
        found = [n for n in needles if n.encode() in data]
        if found:
            hits[str(path)] = found
    return hits


def _duckdb_hits(path: Path, needles: list[str]) -> list[str]:
    """Every base-table column read back as text (DuckDB compresses strings, so a bytes scan
    alone would miss; views only re-read these tables)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        found = []
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE'").fetchall()]
        for table in tables:
            columns = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table]).fetchall()]
            for column in columns:
                values = con.execute(
                    f'SELECT DISTINCT lower(CAST("{column}" AS VARCHAR)) FROM "{table}"'
                ).fetchall()
                text = "\n".join(v[0] for v in values if v[0] is not None)
                found += [f"{table}.{column}:{n}" for n in needles if n.lower() in text]
        return found
    finally:
        con.close()


def test_rotation_overlap_carries_persons_over_and_retired_key_is_refused(
        tmp_path: Path, prefect_harness, caplog, capfd) -> None:
    caplog.set_level(logging.INFO)
    root, outside = tmp_path / "hub", tmp_path / "partners"
    init_workspace(root, ["youth_dept", "community_college"], key_id="hub-a")
    key_a = load_workspace(root).load_secret()
    plain = encoded_drop_name()

    # -- month 1: everything under key A ---------------------------------------------------
    _partner_drop(root, outside, "youth_dept", "2026-01", YOUTH, key_a, plain)
    _partner_drop(root, outside, "community_college", "2026-01", COLLEGE, key_a, plain)
    first = run_workspace(root, as_of=AS_OF, seed=11)
    assert {d["status"] for d in _drops(first).values()} == {"accepted"}
    month1 = _persons(root)
    assert len(month1) == 7
    assert month1["youth_dept:Y1"] == month1["community_college:C1"]  # ann
    assert month1["youth_dept:Y2"] == month1["community_college:C2"]  # bo
    assert len(set(month1.values())) == 5

    # -- rotate: B current, A previous (the config names key ids only) ---------------------
    result = runner.invoke(app, ["keys", "rotate", "--workspace", str(root),
                                 "--key-id", "hub-b"])
    assert result.exit_code == 0, result.output
    ws = load_workspace(root)
    assert (ws.key_id, ws.previous_key_ids) == ("hub-b", ("hub-a",))
    key_b = ws.load_secret()
    assert key_b.fingerprint != key_a.fingerprint
    assert key_b.fingerprint in result.output and key_a.fingerprint in result.output

    # -- month 2, the overlap: the same full extract under both keys ------------------------
    youth2 = {**YOUTH, "Y5": "fay"}
    _partner_drop(root, outside, "youth_dept", "2026-02", youth2, key_a,
                  encoded_drop_name("hub-a"))
    _partner_drop(root, outside, "youth_dept", "2026-02", youth2, key_b, plain)
    _partner_drop(root, outside, "community_college", "2026-02", COLLEGE, key_a,
                  encoded_drop_name("hub-a"))
    # the college's new-key file leaves C3 out: C3 is never re-encoded under B
    _partner_drop(root, outside, "community_college", "2026-02",
                  {k: v for k, v in COLLEGE.items() if k != "C3"}, key_b, plain)
    stranger = SharedSecret("elsewhere", generate_secret())  # neither current nor previous
    _partner_drop(root, outside, "youth_dept", "2026-02", {"Y1": "ann"}, stranger,
                  encoded_drop_name("elsewhere"))
    second = run_workspace(root, as_of=AS_OF, seed=12)
    drops2 = _drops(second)
    assert drops2["youth_dept/2026-02/participants.encoded.hub-a.parquet"]["status"] == "accepted"
    assert drops2["youth_dept/2026-02/participants.encoded.parquet"]["status"] == "accepted"
    assert drops2["community_college/2026-02/participants.encoded.hub-a.parquet"][
        "status"] == "accepted"
    refused = drops2["youth_dept/2026-02/participants.encoded.elsewhere.parquet"]
    assert refused["status"] == "rejected"
    assert stranger.fingerprint in refused["reason"] and key_a.fingerprint in refused["reason"]
    link2 = second["periods"][0]["link"]
    assert link2["overlap_bridged"] == 7        # Y1-Y5, C1-C2 under both keys ...
    assert link2["overlap_old_only"] == 1       # ... but C3 only in the old-key file
    assert link2["overlap_new_only"] == 0
    assert link2["overlap_persons_kept"] == 6   # every re-encoded month-1 record
    assert link2["old_key_records"] == 1        # C3: keeps its person, not linked
    month2 = _persons(root)
    assert {k: month2[k] for k in month1} == month1
    assert month2["youth_dept:Y5"] not in set(month1.values())
    with StateStore(ws.state_db) as state:
        files = state.status()
    both = files[(files["period"] == "2026-02") & (files["status"] != "rejected")]
    assert list(both["status"]) == ["accepted"] * 4  # the pair does not supersede itself
    assert set(both["key_fingerprint"]) == {key_a.fingerprint, key_b.fingerprint}

    # -- retire A; month 3 under B only --------------------------------------------------------
    result = runner.invoke(app, ["keys", "retire", "--workspace", str(root),
                                 "--key-id", "hub-a"])
    assert result.exit_code == 0, result.output
    assert load_workspace(root).previous_key_ids == ()
    _partner_drop(root, outside, "community_college", "2026-03",
                  {"C1": "ann", "C2": "bo", "C4": "cy"}, key_b, plain)
    _partner_drop(root, outside, "youth_dept", "2026-03", {"Y1": "ann"}, key_a,
                  encoded_drop_name("hub-a"))  # a stale drop under the retired key
    third = run_workspace(root, as_of=AS_OF, seed=13)
    drops3 = _drops(third)
    stale = drops3["youth_dept/2026-03/participants.encoded.hub-a.parquet"]
    assert stale["status"] == "rejected"
    assert (f"was encoded under key fingerprint {key_a.fingerprint} but this hub's key is "
            f"{key_b.fingerprint}; ask the partner to re-encode") in stale["reason"]
    assert drops3["community_college/2026-03/participants.encoded.parquet"][
        "status"] == "accepted"
    month3 = _persons(root)
    assert {k: month3[k] for k in month1} == month1  # C3 included: kept, though not linked
    assert month3["community_college:C4"] == month1["youth_dept:Y3"]  # joined by B tokens
    assert third["periods"][0]["link"]["old_key_records"] == 1

    status = status_report(load_workspace(root), as_of=date.fromisoformat(AS_OF))
    per_key = {r["key_fingerprint"]: r for r in status["keys"]["records"]}
    assert per_key[key_b.fingerprint]["linked"] and per_key[key_b.fingerprint]["records"] == 8
    assert per_key[key_a.fingerprint] == {"key_fingerprint": key_a.fingerprint,
                                          "key_id": None, "role": "retired", "records": 1,
                                          "linked": False}
    text = runner.invoke(app, ["status", "--workspace", str(root)], env={"COLUMNS": "250"})
    assert text.exit_code == 0, text.output
    assert "1 records known only under this key keep their persons" in " ".join(
        text.stdout.split())  # the compact layout wraps notes at 80 columns

    # -- no key material or PII in logs, flow parameters, the state or the release -----------
    secrets = _material_forms(key_a, key_b)
    needles = secrets + CANARIES
    assert _file_hits(root, needles, skip=(root / "secrets",)) == {}
    for db in root.rglob("*.duckdb"):
        assert _duckdb_hits(db, needles) == [], db
    assert _file_hits(prefect_harness["home"], needles) == {}
    if prefect_harness["db_dir"] is not None:
        assert _file_hits(prefect_harness["db_dir"], needles) == {}
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=200)
                if str(root) in json.dumps(r.parameters, default=str)]
    assert runs, "the monthly flow's runs are recorded with their parameters"
    for flow_run in runs:
        params = json.dumps(flow_run.parameters, default=str)
        assert not [n for n in needles if n in params], flow_run.name
    out, err = capfd.readouterr()
    logged = caplog.text + out + err + result.output
    assert [n for n in needles if n in logged] == []


def test_rotation_config_without_secrets_and_its_errors(tmp_path: Path) -> None:
    """A hub that holds no secret names fingerprints; ids are checked; the CLI refuses reuse."""
    root = tmp_path / "w"
    init_workspace(root, ["youth_dept"], key_id="hub-a")
    fp_a = load_workspace(root).expected_fingerprint()
    (root / "secrets" / "hub-a.key").unlink()  # every partner encodes: no secret at the hub
    raw = load_workspace(root).raw
    raw["workspace"]["key_fingerprint"] = fp_a
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    fp_b = "0123456789abcdef0123456789abcdef"
    result = runner.invoke(app, ["keys", "rotate", "-w", str(root), "--key-id", "hub-b",
                                 "--fingerprint", fp_b])
    assert result.exit_code == 0, result.output
    ws = load_workspace(root)
    assert ws.expected_fingerprint() == fp_b
    assert ws.previous_fingerprints() == {fp_a: "hub-a"}
    assert ws.raw["keys"] == {"hub-a": {"fingerprint": fp_a}, "hub-b": {"fingerprint": fp_b}}
    assert not (root / "secrets" / "hub-b.key").exists()

    result = runner.invoke(app, ["keys", "rotate", "-w", str(root), "--key-id", "hub-a"])
    assert result.exit_code == 1 and "never reuse" in result.output
    result = runner.invoke(app, ["keys", "retire", "-w", str(root), "--key-id", "hub-b"])
    assert result.exit_code == 1 and "current key" in result.output
    result = runner.invoke(app, ["keys", "retire", "-w", str(root), "--key-id", "hub-a"])
    assert result.exit_code == 0, result.output
    assert load_workspace(root).previous_fingerprints() == {}
    assert "hub-a" not in load_workspace(root).raw.get("keys", {})

    raw = load_workspace(root).raw
    raw["workspace"]["previous_key_ids"] = ["hub-b"]
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    with pytest.raises(WorkspaceError, match="also as the current key_id"):
        load_workspace(root)
    raw["workspace"]["previous_key_ids"] = ["../x"]
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    with pytest.raises(WorkspaceError, match="invalid key id"):
        load_workspace(root)
    raw["workspace"]["previous_key_ids"] = ["hub-gone"]  # neither secret nor fingerprint
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    with pytest.raises(WorkspaceError, match=r"\[keys.hub-gone\] fingerprint"):
        load_workspace(root).previous_fingerprints()


def test_overlap_landing_names() -> None:
    from pipelines.ingest import FileRejected, parse_drop_path

    landing = Path("/tmp/landing-names-only")
    ref = parse_drop_path(landing, landing / "youth_dept/2026-02/participants.encoded.hub-a."
                          "parquet", as_of=date(2026, 3, 1))
    assert (ref.dataset, ref.encoded) == ("participants", True)
    assert encoded_drop_name("hub-2025a") == "participants.encoded.hub-2025a.parquet"
    with pytest.raises(FileRejected, match="unknown dataset"):
        parse_drop_path(landing, landing / "youth_dept/2026-02/participants.encoded..x.parquet",
                        as_of=date(2026, 3, 1))


def test_quarantine_written_before_a_rotation_opens_until_the_old_key_is_retired(
        tmp_path: Path) -> None:
    from cryptography.exceptions import InvalidTag

    from pipelines.state import decrypt_quarantine, encrypt_quarantine
    from pipelines.workspace import retire_key, rotate_key

    root = tmp_path / "w"
    ws = init_workspace(root, ["youth_dept"], key_id="hub-a")
    rows = pd.DataFrame({"partner_record_id": ["Y9"], "reasons": ["required"]})
    path = encrypt_quarantine(ws, rows, partner_id="youth_dept", period="2026-01", sha="ab")
    rotated = rotate_key(root, "hub-b")
    assert decrypt_quarantine(rotated, path, "ab").to_dict("records") == rows.to_dict("records")
    with pytest.raises(InvalidTag, match="no configured key"):
        decrypt_quarantine(retire_key(root, "hub-a"), path, "ab")
