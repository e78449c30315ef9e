"""Safe by default (issue 16), through the real flow and the `pathlink` command line: a wrong
secret stops a run before any write, `keys retire` waits for the overlap, an empty or
shrinking release is kept from publishing, every file has its mode, and `[notify]` hears of
each run."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import duckdb
import tomli_w
from _ops import AS_OF, OPS_PARTNERS, pathlink_here, prefect_env

from keys import SharedSecret, generate_secret
from pipelines.orchestration.flows import run_workspace
from pipelines.state import StateStore
from pipelines.workspace import init_workspace, load_workspace

BAD_CSV = "partner_record_id,first_name\nR1,Ann\n"  # required columns missing: rejected


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder: mode, size, modification time and content hash."""
    out = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[path.relative_to(root).as_posix()] = (stat.S_IMODE(info.st_mode), info.st_size,
                                                  info.st_mtime_ns, digest)
    return out


def _copy_period(drops: Path, root: Path, period: str,
                 partners: tuple[str, ...] = OPS_PARTNERS) -> None:
    for partner in partners:
        shutil.copytree(drops / "landing" / partner / period,
                        root / "landing" / partner / period, dirs_exist_ok=True)


def _notify_to(root: Path, heard: Path) -> None:
    """[notify] a command that appends each payload it hears as one JSON line."""
    script = heard.parent / "hook.py"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as fh:\n"
                      "    fh.write(sys.stdin.read().replace('\\n', ' ') + '\\n')\n")
    raw = load_workspace(root).raw
    raw["notify"] = {"command": [sys.executable, str(script), str(heard)]}
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())


def _heard(heard: Path) -> list[dict]:
    return [json.loads(line) for line in heard.read_text().splitlines()] \
        if heard.exists() else []


def test_modes_wrong_secret_and_retire_through_the_command_line(
        tmp_path: Path, prefect_harness, ops_drops: Path) -> None:
    env = {k: v for k, v in prefect_env().items() if not k.startswith("PATHLINK_SECRET_")}
    root = tmp_path / "hub"
    done = pathlink_here("init", str(root), "--partners", ",".join(OPS_PARTNERS), "--key-id",
                    "modes-key", env=env)
    assert done.returncode == 0, done.stderr
    heard = tmp_path / "heard.jsonl"
    _notify_to(root, heard)
    raw = load_workspace(root).raw
    raw["agreements"] = {"eval": {"partners": ["*"], "tier": "published", "purpose": "test",
                                  "expires": "2099-12-31", "grantee": "tests"}}  # export needs one
    (root / "pathlink.toml").write_bytes(tomli_w.dumps(raw).encode())
    _copy_period(ops_drops, root, "2026-09")  # the partners' files, as their umask made them
    partner_files = {p for p in root.rglob("*") if "landing" in p.relative_to(root).parts
                     and len(p.relative_to(root).parts) > 2}

    dry = pathlink_here("run", "-w", str(root), "--dry-run", "--as-of", AS_OF, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would process 1 period(s), 3 file(s)" in dry.stdout
    assert "youth_dept/2026-09/participants.csv: a new file" in dry.stdout
    assert not (root / "state" / "state.duckdb").exists()

    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    cw = tmp_path / "crosswalk.csv"
    done = pathlink_here("crosswalk", "-w", str(root), "-o", str(cw), env=env)
    assert done.returncode == 0, done.stderr
    export = tmp_path / "export"
    done = pathlink_here("export", "-w", str(root), "--agreement", "eval", "-o", str(export),
                    env=env)
    assert done.returncode == 0, done.stderr

    # -- the mode of every file and folder init, run, crosswalk -o and export created --------
    made = {p: _mode(p) for p in root.rglob("*") if p not in partner_files}
    published = root / "published"
    wrong = {str(p.relative_to(root)): oct(m) for p, m in made.items()
             if m != ((0o755 if p.is_dir() else 0o644) if published in (p, *p.parents)
                      else (0o700 if p.is_dir() else 0o600))}
    assert wrong == {}
    assert _mode(root) == 0o711
    assert {p.name for p in published.iterdir()} == {"pathlink.duckdb", "report.html"}
    assert any(p.name == "state.duckdb" for p in made) and len(made) > 15
    assert _mode(cw) == 0o600 and cw.read_text().startswith("partner_id,partner_record_id")
    assert _mode(export) == 0o755 and {_mode(p) for p in export.iterdir()} == {0o644}

    # -- a wrong secret under the same key id: refused before any write --------------------
    _copy_period(ops_drops, root, "2026-10")
    pinned = load_workspace(root).pinned_fingerprint()
    other = generate_secret()
    before = _snapshot(root)
    wrong_env = {**env, "PATHLINK_SECRET_MODES_KEY": base64.urlsafe_b64encode(other).decode()}
    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress", env=wrong_env)
    assert done.returncode == 1
    line = done.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("error: key 'modes-key'")
    assert "env:PATHLINK_SECRET_MODES_KEY" in line and pinned in line
    assert SharedSecret("modes-key", other).fingerprint in line
    assert _snapshot(root) == before  # nothing written, not even the lock file
    dry = pathlink_here("run", "-w", str(root), "--dry-run", env=wrong_env)
    assert dry.returncode == 1 and "would stop before writing anything" in dry.stdout
    assert "2026-10" in dry.stdout
    # ... and the drop is still there to be processed under the right secret
    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    with StateStore(root / "state" / "state.duckdb") as state:
        assert sorted(state.processed_periods()) == ["2026-09", "2026-10"]
    events = _heard(heard)
    assert [e["status"] for e in events] == ["success", "failure", "success"]
    assert "key 'modes-key'" in events[1]["error"] and events[1]["periods"] == []
    assert [p["period"] for p in events[2]["periods"]] == ["2026-10"]
    assert events[2]["periods"][0]["files"] == {"accepted": 3}

    # -- keys retire straight after keys rotate: refused; the config is unchanged ------------
    done = pathlink_here("keys", "rotate", "-w", str(root), "--key-id", "modes-key-2", env=env)
    assert done.returncode == 0, done.stderr
    config = (root / "pathlink.toml").read_bytes()
    done = pathlink_here("keys", "retire", "-w", str(root), "--key-id", "modes-key", env=env)
    assert done.returncode == 1
    assert "not retiring key 'modes-key'" in done.stderr and "--force" in done.stderr
    assert "community_college, workforce_board, youth_dept" in done.stderr
    assert (root / "pathlink.toml").read_bytes() == config


def _release_fingerprint(root: Path) -> tuple[tuple[int, str], ...]:
    """The evaluators' release and the analyst's warehouse it is computed from."""
    return tuple((path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
                 for path in (root / "published" / "pathlink.duckdb",
                              root / "state" / "warehouse.duckdb"))


def _persons(root: Path) -> int:
    con = duckdb.connect(str(root / "state" / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute("SELECT count(*) FROM person").fetchall()[0][0])
    finally:
        con.close()


def test_empty_and_shrinking_releases_are_kept_from_publishing(
        tmp_path: Path, prefect_harness, ops_drops: Path) -> None:
    root = tmp_path / "hub"
    init_workspace(root, list(OPS_PARTNERS), key_id="guard-key")
    heard = tmp_path / "heard.jsonl"
    _notify_to(root, heard)

    # -- every drop rejected in a fresh workspace: no release at all -----------------------
    for partner in OPS_PARTNERS:
        bad = root / "landing" / partner / "2026-08" / "participants.csv"
        bad.parent.mkdir(parents=True)
        bad.write_text(BAD_CSV)
    summary = run_workspace(root, as_of=AS_OF, seed=3)
    assert [h["kind"] for h in summary["held"]] == ["nothing_accepted"]
    assert "period 2026-08: nothing was accepted (3 file(s): 3 rejected)" in \
        summary["held"][0]["reason"]
    assert not (root / "published" / "pathlink.duckdb").exists()

    # -- a good month publishes ----------------------------------------------------------------
    _copy_period(ops_drops, root, "2026-09")
    summary = run_workspace(root, as_of=AS_OF, seed=3)
    assert summary["held"] == [] and [p["period"] for p in summary["periods"]] == ["2026-09"]
    published = _release_fingerprint(root)
    persons = _persons(root)
    assert persons > 100

    # -- a month whose every drop is rejected leaves the release as it was ------------------
    for partner in OPS_PARTNERS:
        bad = root / "landing" / partner / "2026-10" / "participants.csv"
        bad.parent.mkdir(parents=True)
        bad.write_text(BAD_CSV)
    summary = run_workspace(root, as_of=AS_OF, seed=3)
    assert [h["kind"] for h in summary["held"]] == ["nothing_accepted"]
    assert _release_fingerprint(root) == published
    summary = run_workspace(root, as_of=AS_OF, seed=3)  # nothing new: not retried
    assert summary["periods"] == [] and summary["held"] == []

    # -- corrected files that drop most records: the release would shrink --------------------
    env = {k: v for k, v in prefect_env().items() if not k.startswith("PATHLINK_SECRET_")}
    for partner in ("youth_dept", "community_college"):
        path = root / "landing" / partner / "2026-09" / "participants.csv"
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:4]) + "\n")  # the header and three records
    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    said = " ".join(done.stderr.split())  # the run summary is on stderr
    assert "not published: period 2026-09: the release would hold" in said
    assert f"fewer than the {persons} published" in said and "--allow-shrink" in said
    assert _release_fingerprint(root) == published
    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress", env=env)
    assert done.returncode == 1 and "not published: period 2026-09" in " ".join(
        done.stderr.split())  # still held: every run says so until it is decided
    assert _release_fingerprint(root) == published
    status = pathlink_here("status", "-w", str(root), "--format", "json", env=env)
    assert "2026-09" in json.loads(status.stdout)["unpublished_periods"]
    done = pathlink_here("run", "-w", str(root), "--as-of", AS_OF, "--no-progress",
                    "--allow-shrink", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _release_fingerprint(root) != published
    assert _persons(root) < persons * 0.9

    events = _heard(heard)
    assert [(e["status"], e["held"]) for e in events] == [
        ("failure", ["2026-08"]), ("success", []), ("failure", ["2026-10"]), ("success", []),
        ("failure", ["2026-09"]), ("failure", ["2026-09"]), ("success", [])]
    shrunk = events[4]["periods"][0]
    assert shrunk["held"] == "shrink" and not shrunk["published"]
    assert shrunk["files"] == {"accepted": 2}
