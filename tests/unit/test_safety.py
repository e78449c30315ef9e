"""Safe by default (issue 16), the parts that need no Prefect server: the pinned key, the
guarded retire, the release guard, file modes, notifications, `run --dry-run`."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from keys import KeyMismatchError, SharedSecret, generate_secret, write_secret_file
from pipelines.cli import app, run_cli
from pipelines.state import StateStore
from pipelines.steps.context import RunContext
from pipelines.steps.guard import NOTHING_ACCEPTED, SHRINK, release_guard
from pipelines.steps.keys import KeyPinError, check_keys, retire_check
from pipelines.steps.notify import notify, summary_payload
from pipelines.steps.run import preview_run
from pipelines.workspace import (
    WorkspaceError,
    enforce_modes,
    init_workspace,
    load_workspace,
    rotate_key,
)

AS_OF = date(2026, 11, 22)
runner = CliRunner()


def _b64(material: bytes) -> str:
    return base64.urlsafe_b64encode(material).decode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def ws_root(tmp_path: Path, monkeypatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PATHLINK_SECRET_"):
            monkeypatch.delenv(name)
    root = tmp_path / "w"
    init_workspace(root, ["youth_dept", "college"], key_id="hub-a")
    return root


# --- the key is pinned ---------------------------------------------------------------------

def test_init_and_rotate_pin_each_key(ws_root: Path) -> None:
    ws = load_workspace(ws_root)
    fp_a = ws.load_secret().fingerprint
    assert ws.raw["keys"]["hub-a"] == {"fingerprint": fp_a}
    assert ws.pinned_fingerprint() == fp_a
    rotated = rotate_key(ws_root, "hub-b")
    fp_b = rotated.load_secret().fingerprint
    assert rotated.raw["keys"] == {"hub-a": {"fingerprint": fp_a}, "hub-b": {"fingerprint": fp_b}}


def test_a_secret_with_another_fingerprint_is_refused_naming_id_source_and_both(
        ws_root: Path, monkeypatch) -> None:
    ws = load_workspace(ws_root)
    pinned = ws.pinned_fingerprint()
    other = generate_secret()
    wrong_fp = SharedSecret("hub-a", other).fingerprint
    monkeypatch.setenv("PATHLINK_SECRET_HUB_A", _b64(other))
    with pytest.raises(KeyMismatchError) as refused:
        load_workspace(ws_root).load_secret()
    message = str(refused.value)
    assert "key 'hub-a'" in message and "env:PATHLINK_SECRET_HUB_A" in message
    assert pinned in message and wrong_fp in message and "nothing was written" in message
    assert _b64(other) not in message and _b64(other).rstrip("=") not in message
    with pytest.raises(KeyPinError, match="env:PATHLINK_SECRET_HUB_A"):
        check_keys(load_workspace(ws_root))
    # a key file swapped for another secret is refused the same way, naming the file
    monkeypatch.delenv("PATHLINK_SECRET_HUB_A")
    key_file = ws_root / "secrets" / "hub-a.key"
    key_file.unlink()
    write_secret_file(key_file, other, key_id="hub-a")
    with pytest.raises(KeyPinError, match=f"file:{key_file}"):
        check_keys(load_workspace(ws_root))


def test_a_workspace_made_before_pins_is_pinned_at_first_use_unless_its_runs_disagree(
        ws_root: Path, monkeypatch) -> None:
    raw = load_workspace(ws_root).raw
    raw.pop("keys")
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    ws = load_workspace(ws_root)
    assert ws.pinned_fingerprint() is None
    with StateStore(ws.state_db) as state:
        state.start_run("run-old", "pathlink test", "f" * 32)  # its last run used another key
    with pytest.raises(KeyPinError, match=r"the last run of this workspace used f{32}"):
        check_keys(ws)
    assert load_workspace(ws_root).pinned_fingerprint() is None
    with StateStore(ws.state_db) as state:
        state.start_run("run-new", "pathlink test", ws.load_secret().fingerprint)
    notes = check_keys(ws)
    assert notes and "first use" in notes[0]
    assert load_workspace(ws_root).pinned_fingerprint() == ws.load_secret().fingerprint


def test_keys_pin_records_a_fingerprint_and_refuses_to_repin_another(ws_root: Path) -> None:
    fp = load_workspace(ws_root).pinned_fingerprint()
    same = runner.invoke(app, ["keys", "pin", "-w", str(ws_root)])
    assert same.exit_code == 0 and fp in same.output and "already pinned" in same.output
    other = runner.invoke(app, ["keys", "pin", "-w", str(ws_root), "--fingerprint", "0" * 32])
    assert other.exit_code == 1 and "new key id" in other.output


def test_check_with_a_workspace_and_encode_stop_before_writing(ws_root: Path, tmp_path: Path,
                                                               monkeypatch) -> None:
    extract = tmp_path / "extract.csv"
    extract.write_text("partner_record_id,first_name,last_name,date_of_birth\n"
                       "Y1,Ann,Lee,2008-01-02\n")
    other = generate_secret()
    monkeypatch.setenv("PATHLINK_SECRET_HUB_A", _b64(other))
    report = tmp_path / "report.txt"
    checked = runner.invoke(app, ["check", str(extract), "--dataset", "participants", "-w",
                                  str(ws_root), "-o", str(report)])
    assert checked.exit_code == 1 and "key 'hub-a'" in checked.output
    assert not report.exists()
    out = tmp_path / "out.parquet"
    encoded = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                                  str(out), "-w", str(ws_root)])
    assert encoded.exit_code == 1 and "env:PATHLINK_SECRET_HUB_A" in encoded.output
    assert not out.exists()
    # a partner without a workspace: the fingerprint the hub gave, or the key file it holds
    fp = load_workspace(ws_root).pinned_fingerprint()
    given = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                                str(out), "--key-id", "hub-a", "--fingerprint", fp])
    assert given.exit_code == 1 and fp in given.output and not out.exists()
    held = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                               str(out), "--key-id", "hub-a", "--key-dir",
                               str(ws_root / "secrets")])
    assert held.exit_code == 1 and "records" in held.output and not out.exists()
    monkeypatch.delenv("PATHLINK_SECRET_HUB_A")
    fine = runner.invoke(app, ["encode", str(extract), "--partner", "youth_dept", "-o",
                               str(out), "--key-id", "hub-a", "--key-dir",
                               str(ws_root / "secrets"), "--fingerprint", fp])
    assert fine.exit_code == 0, fine.output


# --- keys retire is guarded ------------------------------------------------------------------

def _versions(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """record_key, period, key fingerprint -> stored record versions (lineage only)."""
    return pd.DataFrame([{
        "record_key": key, "partner_id": key.split(":")[0],
        "partner_record_id": key.split(":")[1], "period": period,
        "file_sha256": f"{key.split(':')[0]}-{period}-{fp[:4]}", "key_fingerprint": fp,
        "encoding_schema": "pathlink-encoding/3", "tok_t4_ssn": f"{key}-{fp[:4]}",
    } for key, period, fp in rows])


def test_retire_waits_for_a_bridged_and_published_overlap_per_partner(ws_root: Path) -> None:
    fp_a = load_workspace(ws_root).pinned_fingerprint()
    ws = rotate_key(ws_root, "hub-b")
    fp_b = ws.pinned_fingerprint()
    # nothing stored under the old key: it may go at once
    assert retire_check(ws, "hub-a").allowed
    with StateStore(ws.state_db) as state:  # one file per partner and period
        state.store_records(_versions([("youth_dept:Y1", "2026-01", fp_a),
                                       ("youth_dept:Y2", "2026-01", fp_a)]))
        state.store_records(_versions([("college:C1", "2026-01", fp_a)]))
    check = retire_check(ws, "hub-a")
    assert not check.allowed and check.unbridged_partners == ["college", "youth_dept"]
    assert check.only_old == {"college": 1, "youth_dept": 2}
    assert "3 records known only under key 'hub-a'" in check.left_behind()
    refused = runner.invoke(app, ["keys", "retire", "-w", str(ws_root), "--key-id", "hub-a"])
    assert refused.exit_code == 1 and "not retiring key 'hub-a'" in refused.output
    assert "--force" in refused.output and "college, youth_dept" in refused.output
    assert load_workspace(ws_root).previous_key_ids == ("hub-a",)
    # the overlap period: youth_dept sends both files (Y2 left out of the new one) ...
    with StateStore(ws.state_db) as state:
        state.store_records(_versions([("youth_dept:Y1", "2026-02", fp_a),
                                       ("youth_dept:Y2", "2026-02", fp_a)]))
        state.store_records(_versions([("youth_dept:Y1", "2026-02", fp_b)]))
    # ... but the period is not linked and published yet
    assert retire_check(ws, "hub-a").unbridged_partners == ["college", "youth_dept"]
    with StateStore(ws.state_db) as state:
        state.mark_period("2026-02", "run-x")
        state.mark_published("2026-02", "run-x", 3)
    check = retire_check(ws, "hub-a")
    assert not check.allowed and check.unbridged_partners == ["college"]
    assert check.bridged_periods == ["2026-02"]
    forced = runner.invoke(app, ["keys", "retire", "-w", str(ws_root), "--key-id", "hub-a",
                                 "--force"])
    assert forced.exit_code == 0, forced.output
    assert "2 records known only under key 'hub-a' (college: 1, youth_dept: 1)" in " ".join(
        forced.output.split())
    assert load_workspace(ws_root).previous_key_ids == ()


# --- the release guard -----------------------------------------------------------------------

def _run(ws_root: Path, run_id: str = "run-1") -> RunContext:
    return RunContext(load_workspace(ws_root), run_id, AS_OF, "pathlink test")


def _file(state: StateStore, period: str, status: str, accepted: int, sha: str) -> None:
    state.record_file({"sha256": sha, "partner_id": "youth_dept", "period": period,
                       "dataset": "participants", "rel_path": f"youth_dept/{period}/p.csv",
                       "size_bytes": 1, "status": status, "rows_read": accepted,
                       "rows_accepted": accepted, "rows_quarantined": 0, "run_id": "run-0",
                       "processed_at": pd.Timestamp("2026-11-01")})


def test_release_guard_holds_empty_and_shrinking_releases(ws_root: Path) -> None:
    run = _run(ws_root)
    rejected = [{"status": "rejected", "rows_accepted": 0}, {"status": "failed"}]
    # nothing accepted, nothing published before: held
    hold = release_guard(run, "2026-01", rejected, 0)
    assert hold is not None and hold.kind == NOTHING_ACCEPTED
    assert "nothing was accepted (2 file(s): 1 failed, 1 rejected)" in hold.reason
    assert release_guard(run, "2026-01", rejected, 0, allow_shrink=True) is None
    with StateStore(run.ws.state_db) as state:
        _file(state, "2026-01", "rejected", 0, "s0")
        assert state.held_periods()[0]["kind"] == NOTHING_ACCEPTED
        # held for nothing accepted and no file since: not retried
        assert state.unfinished_periods() == []
        state.mark_period("2026-02", "run-1")
        state.mark_published("2026-02", "run-1", 200)
    accepted = [{"status": "accepted", "rows_accepted": 150}]
    assert release_guard(run, "2026-03", accepted, 181) is None  # -9.5%: within 10%
    hold = release_guard(run, "2026-03", accepted, 179)
    assert hold is not None and hold.kind == SHRINK
    assert "179 persons, 10% fewer than the 200 published" in hold.reason
    assert "--allow-shrink" in hold.reason
    # a period an interrupted run stored: the ledger says what was accepted
    with StateStore(run.ws.state_db) as state:
        _file(state, "2026-04", "accepted", 12, "s4")
    assert release_guard(run, "2026-04", [], 200) is None
    with StateStore(run.ws.state_db) as state:
        held = {h["period"]: h["kind"] for h in state.held_periods()}
    assert held == {"2026-01": NOTHING_ACCEPTED, "2026-03": SHRINK}


def test_published_persons_falls_back_to_the_snapshot(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.duckdb") as state:
        assert state.published_persons() is None
        state.con.execute("INSERT INTO crosswalk_snapshots VALUES ('2026-01', 'r', 'a', 'P1'), "
                          "('2026-01', 'r', 'b', 'P1'), ('2026-01', 'r', 'c', 'P2')")
        state.mark_period("2026-01", "r")
        state.mark_published("2026-01", "r")  # published before persons were recorded
        assert state.published_persons() == 2


def test_max_person_drop_is_a_share(ws_root: Path) -> None:
    raw = load_workspace(ws_root).raw
    raw["thresholds"]["max_person_drop"] = 1.5
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    with pytest.raises(WorkspaceError, match="max_person_drop must be a share"):
        load_workspace(ws_root)


# --- modes -----------------------------------------------------------------------------------

def test_init_makes_the_workspace_private_except_the_release(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask, as a shell usually has
    try:
        code = run_cli(["init", str(tmp_path / "w"), "--partners", "youth_dept,college",
                        "--key-id", "hub-m"])
        assert code == 0
        code = run_cli(["partners", "add", "--workspace", str(tmp_path / "w"), "schools"])
        assert code == 0
    finally:
        os.umask(old)
    root = tmp_path / "w"
    found = {p.relative_to(root).as_posix(): _mode(p) for p in root.rglob("*")}
    assert found == {
        "landing": 0o700, "landing/youth_dept": 0o700, "landing/college": 0o700,
        "landing/schools": 0o700, "published": 0o755, "state": 0o700, "secrets": 0o700,
        "secrets/hub-m.key": 0o600, "pathlink.toml": 0o600,
    }
    assert _mode(root) == 0o711


def test_enforce_modes_tightens_an_old_workspace_and_opens_only_the_release(
        ws_root: Path) -> None:
    ws = load_workspace(ws_root)
    (ws.state_dir / "reports").mkdir(mode=0o755)
    (ws.state_dir / "reports" / "index.html").write_text("x")
    os.chmod(ws.state_dir / "reports" / "index.html", 0o644)
    os.chmod(ws.landing, 0o755)
    os.chmod(ws.config_path, 0o644)
    ws.published_db.write_bytes(b"release")
    os.chmod(ws.published_db, 0o600)
    changed = enforce_modes(ws)
    assert _mode(ws.state_dir / "reports") == 0o700
    assert _mode(ws.state_dir / "reports" / "index.html") == 0o600
    assert _mode(ws.landing) == 0o700 and _mode(ws.config_path) == 0o600
    assert _mode(ws.published_db) == 0o644
    assert len(changed) == 5
    assert enforce_modes(ws) == []


def test_a_landing_group_gives_0750(ws_root: Path) -> None:
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    raw = load_workspace(ws_root).raw
    raw["workspace"]["landing_group"] = group
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    enforce_modes(load_workspace(ws_root))
    assert _mode(ws_root / "landing") == 0o750 and _mode(ws_root / "landing/college") == 0o750
    raw["workspace"]["landing_group"] = "no-such-group-pathlink"
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    with pytest.raises(WorkspaceError, match="not a group on this machine"):
        load_workspace(ws_root)


def test_crosswalk_to_a_file_is_0600_and_stdout_to_a_file_is_tightened(
        ws_root: Path, tmp_path: Path, capsys) -> None:
    ws = load_workspace(ws_root)
    with StateStore(ws.state_db) as state:
        state.replace_crosswalk(pd.DataFrame({
            "record_key": ["youth_dept:Y1"], "partner_id": ["youth_dept"],
            "partner_record_id": ["Y1"], "person_id": ["P0000000000AA"],
            "cluster_reason": [None]}), pd.DataFrame(), pd.DataFrame(), "run-1")
    out = tmp_path / "crosswalk.csv"
    out.write_text("old")
    os.chmod(out, 0o644)  # an existing, readable file is tightened before it is written
    assert run_cli(["crosswalk", "-w", str(ws_root), "-o", str(out)]) == 0
    assert _mode(out) == 0o600
    assert out.read_text().splitlines() == ["partner_id,partner_record_id,person_id",
                                            "youth_dept,Y1,P0000000000AA"]
    assert "mode 0600" in capsys.readouterr().err


@pytest.mark.slow  # a subprocess and a pseudo-terminal
def test_crosswalk_on_stdout_warns_on_a_terminal_and_tightens_a_redirect(
        ws_root: Path, tmp_path: Path) -> None:
    import pty
    import subprocess

    ws = load_workspace(ws_root)
    with StateStore(ws.state_db) as state:
        state.replace_crosswalk(pd.DataFrame({
            "record_key": ["youth_dept:Y1"], "partner_id": ["youth_dept"],
            "partner_record_id": ["Y1"], "person_id": ["P0000000000AA"],
            "cluster_reason": [None]}), pd.DataFrame(), pd.DataFrame(), "run-1")
    command = [sys.executable, "-m", "pipelines.cli", "crosswalk", "-w", str(ws_root)]
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(command, stdout=secondary, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 0 and "warning: the crosswalk is restricted" in done.stderr
    redirected = tmp_path / "shell-made.csv"
    with redirected.open("w") as fh:  # what `> file` gives: the shell's umask, 0644
        os.chmod(redirected, 0o644)
        done = subprocess.run(command, stdout=fh, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    assert done.returncode == 0 and "now 0600" in done.stderr
    assert _mode(redirected) == 0o600 and "P0000000000AA" in redirected.read_text()


# --- notifications ---------------------------------------------------------------------------

def test_notify_settings_are_checked(ws_root: Path) -> None:
    raw = load_workspace(ws_root).raw
    for bad, match in ((({"webhook": "https://hooks.example.org/x"}), "local http"),
                       (({"on": ["sometimes"]}), "failure and/or success"),
                       (({"command": 3}), "command line"),
                       (({"comand": "x"}), "unknown")):
        raw["notify"] = bad
        (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
        with pytest.raises(WorkspaceError, match=match):
            load_workspace(ws_root)


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_command_and_a_local_webhook_hear_the_counts_only_summary(
        ws_root: Path, tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    heard = tmp_path / "heard.json"
    script = tmp_path / "hook.py"
    script.write_text("import os, sys, pathlib\n"
                      "pathlib.Path(sys.argv[1]).write_text(sys.stdin.read() + '\\n' + "
                      "os.environ['PATHLINK_NOTIFY_STATUS'])\n")
    raw = load_workspace(ws_root).raw
    raw["notify"] = {"command": [sys.executable, str(script), str(heard)],
                     "webhook": f"http://127.0.0.1:{server.server_port}/pathlink"}
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    ws = load_workspace(ws_root)
    summary = {"run_id": "run-7", "unchanged": 2, "refused": [{"file": "x", "reason": "y"}],
               "held": [], "periods": [{
                   "period": "2026-10", "published": {"person": 9}, "held": None,
                   "link": {"records": 12, "persons": 9},
                   "drops": [{"rel_path": "youth_dept/2026-10/participants.csv",
                              "status": "accepted", "rows_read": 12, "rows_accepted": 11,
                              "rows_quarantined": 1, "reason": None},
                             {"rel_path": "college/2026-10/participants.csv",
                              "status": "rejected", "rows_read": 3, "rows_accepted": 0,
                              "rows_quarantined": 3, "reason": "a reason"}]}]}
    try:
        assert notify(ws, summary_payload(ws, summary, status="success")) == []
    finally:
        server.shutdown()
    text, status = heard.read_text().rsplit("\n", 1)
    payload = json.loads(text)
    assert status == "success" and _Hook.received == [payload]
    assert payload["periods"] == [{
        "period": "2026-10", "files": {"accepted": 1, "rejected": 1}, "rows_read": 15,
        "rows_accepted": 11, "rows_quarantined": 4, "records": 12, "persons": 9,
        "published": True, "held": None, "held_reason": None}]
    assert (payload["status"], payload["run_id"], payload["refused_files"],
            payload["unchanged_files"], payload["error"]) == ("success", "run-7", 1, 2, None)
    assert "participants.csv" not in text and "a reason" not in text  # counts only
    # a failing notification is reported, never raised
    raw["notify"] = {"command": [sys.executable, "-c", "import sys; sys.exit(3)"],
                     "webhook": "http://127.0.0.1:9/closed", "timeout": 5}
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    problems = notify(load_workspace(ws_root), summary_payload(ws, None, status="failure",
                                                               error="boom"))
    assert len(problems) == 2 and "exited with status 3" in problems[0]
    raw["notify"] = {"command": [sys.executable, str(script), str(heard)], "on": ["failure"]}
    (ws_root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    heard.unlink()
    assert notify(load_workspace(ws_root), summary_payload(ws, summary, status="success")) == []
    assert not heard.exists()  # only failures were asked for


# --- run --dry-run -----------------------------------------------------------------------------

def test_dry_run_lists_what_and_why_and_writes_nothing(ws_root: Path, capsys) -> None:
    ws = load_workspace(ws_root)
    drop = ws.landing / "youth_dept" / "2026-10" / "participants.csv"
    drop.parent.mkdir()
    drop.write_text("partner_record_id,first_name,last_name,date_of_birth\nY1,A,B,2008-01-02\n")
    (ws.landing / "nobody").mkdir()
    (ws.landing / "nobody" / "2026-10").mkdir()
    (ws.landing / "nobody" / "2026-10" / "participants.csv").write_text("x\n")
    before = sorted(p.relative_to(ws_root).as_posix() for p in ws_root.rglob("*"))
    preview = preview_run(ws, AS_OF)
    assert preview["periods"] == [{"period": "2026-10", "finish": False, "files": [{
        "file": "youth_dept/2026-10/participants.csv", "partner_id": "youth_dept",
        "dataset": "participants", "why": "new", "explained": "a new file"}]}]
    assert "not registered" in preview["refused"][0]["reason"]
    assert preview["key_problem"] is None
    assert run_cli(["run", "-w", str(ws_root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would process 1 period(s), 1 file(s)" in out
    assert "2026-10  youth_dept/2026-10/participants.csv: a new file" in out
    assert "would refuse: " in out
    assert sorted(p.relative_to(ws_root).as_posix() for p in ws_root.rglob("*")) == before
    assert not ws.state_db.exists()
