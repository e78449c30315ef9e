"""Helpers for the operations tests: small workspaces, CLI subprocesses, canonical releases.

The shared drops and the uninterrupted run are session fixtures (`tests/flows/conftest.py`).

Two releases are "the same" when they hold the same rows once every person ID is replaced by a
canonical label (the smallest record key the person ever held, from the restricted crosswalk and
its snapshots) and per-run metadata (run ids, timestamps) is dropped. So freshly drawn person IDs
may differ, but the grouping of records into persons may not.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb
import tomli_w

from keys import generate_secret, write_secret_file
from pipelines.synthetic.participants import PARTNERS
from pipelines.workspace import init_workspace, load_workspace

AS_OF = "2026-11-22"
PERIODS = ["2026-09", "2026-10"]
# Three of the seven synthetic partners keep these tests short (six drops over two periods).
OPS_PARTNERS = ("workforce_board", "youth_dept", "community_college")
RUN_METADATA = {"run_id", "recorded_at", "published_at"}
REPO = Path(__file__).resolve().parents[2]


#: One secret for every ops workspace of a test session. The tests compare a workspace's release
#: with another's (killed vs uninterrupted, Dask vs default); under two random keys the LSH bands
#: and the u sample differ, so a borderline pair may link in one and not the other, which says
#: nothing about crash safety or runners.
OPS_SECRET = generate_secret()


def make_workspace(root: Path, drops: Path, *, runner: dict | None = None,
                   partners: tuple[str, ...] = OPS_PARTNERS) -> Path:
    """A workspace for some synthetic partners holding a copy of their `drops/landing` files,
    all under the session's one `OPS_SECRET`."""
    profiles = {pid: {"name": p.display_name, "age_min": p.age_min, "age_max": p.age_max}
                for pid, p in PARTNERS.items() if pid in partners}
    (root / "secrets").mkdir(parents=True, mode=0o700)
    write_secret_file(root / "secrets" / "ops-key.key", OPS_SECRET, key_id="ops-key")
    init_workspace(root, list(partners), key_id="ops-key", partner_profiles=profiles)
    if runner:
        raw = tomllib.loads((root / "pathlink.toml").read_text())
        raw["runner"] = runner
        (root / "pathlink.toml").write_text(tomli_w.dumps(raw))
        assert load_workspace(root).task_runner == runner["kind"]
    for partner_id in partners:
        shutil.copytree(drops / "landing" / partner_id, root / "landing" / partner_id,
                        dirs_exist_ok=True)
    return root


def person_labels(state_db: Path) -> dict[str, str]:
    """person_id -> the smallest record key it was ever given (crosswalk and snapshots)."""
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT person_id, min(record_key) FROM (SELECT person_id, record_key FROM crosswalk "
            "UNION ALL SELECT person_id, record_key FROM crosswalk_snapshots) GROUP BY 1"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def grouping(state_db: Path) -> list[tuple[str, ...]]:
    """The crosswalk as sorted groups of record keys (no person IDs)."""
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT list_sort(list(record_key)) FROM crosswalk GROUP BY person_id").fetchall()
    finally:
        con.close()
    return sorted(tuple(r[0]) for r in rows)


def canonical_release(ws_root: Path) -> dict[str, list[tuple]]:
    """Every table and view of the published file and of the analyst warehouse it is made
    from (keys ``published:<name>`` and ``warehouse:<name>``), person IDs canonicalised, run
    metadata dropped."""
    ws = load_workspace(ws_root)
    out: dict[str, list[tuple]] = {}
    for tier, path in (("published", ws.published_db), ("warehouse", ws.warehouse_db)):
        for name, rows in _canonical_file(path, person_labels(ws.state_db)).items():
            out[f"{tier}:{name}"] = rows
    return out


def _canonical_file(path: Path, labels: dict[str, str]) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        out: dict[str, list[tuple]] = {}
        for name in names:
            if name in ("release", "released_release"):
                continue
            cursor = con.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cursor.description]
            keep = [i for i, c in enumerate(columns) if c not in RUN_METADATA]
            rows = []
            for row in cursor.fetchall():
                rows.append(tuple(
                    (labels.get(row[i], f"UNKNOWN:{row[i]}") if row[i] is not None else None)
                    if "person_id" in columns[i] else row[i] for i in keep))
            out[name] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def state_invariants(ws_root: Path) -> dict[str, int]:
    """Counts that reveal duplicate or lost rows in the restricted state (0 = healthy)."""
    ws = load_workspace(ws_root)
    con = duckdb.connect(str(ws.state_db), read_only=True)
    try:
        def one(sql: str) -> int:
            return int(con.execute(sql).fetchall()[0][0])

        return {
            "duplicate_record_versions": one(
                "SELECT count(*) - count(DISTINCT (record_key, period)) FROM record_versions"),
            "records_without_person": one(
                "SELECT count(DISTINCT record_key) FROM record_versions WHERE record_key NOT IN "
                "(SELECT record_key FROM crosswalk)"),
            "crosswalk_without_record": one(
                "SELECT count(*) FROM crosswalk WHERE record_key NOT IN "
                "(SELECT record_key FROM record_versions)"),
            "two_accepted_files": one(
                "SELECT count(*) FROM (SELECT partner_id, period, dataset FROM files "
                "WHERE status = 'accepted' GROUP BY ALL HAVING count(*) > 1)"),
            "duplicate_snapshot_rows": one(
                "SELECT count(*) - count(DISTINCT (period, record_key)) "
                "FROM crosswalk_snapshots"),
            "unpublished_periods": one(
                "SELECT count(*) FROM periods WHERE published_at IS NULL"),
            "runs_left_running": one("SELECT count(*) FROM runs WHERE status = 'running'"),
        }
    finally:
        con.close()


def prefect_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess that talks to this session's Prefect test server."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    env.pop("PATHLINK_TEST_KILL_AT", None)
    env.update(extra)
    return env


def pathlink(*args: str, env: dict[str, str], timeout: float = 240,
             ) -> subprocess.CompletedProcess[str]:
    """Run the `pathlink` CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


def pathlink_here(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one `pathlink` command in this process, with `env` as the environment meanwhile.

    The console script's own entry (`run_cli`: argument parsing, umask, exit codes, one-line
    errors) with what it prints captured, returned as `pathlink` returns a subprocess's: for
    the tests of what a command does, where a fresh interpreter (about 3 s of imports each)
    adds nothing. Killed runs, the console script itself and `serve` keep real subprocesses.
    """
    from pipelines.cli import run_cli

    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_cli(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["pathlink", *args], code, out.getvalue(), err.getvalue())


# A process that has imported what `pathlink run` imports, once, and forks one child per
# command. Each child is a separate process running the console script's entry (`run_cli`)
# under its own environment, and can be killed like one; it only skips the interpreter start,
# the imports and loading the encoding kernels (about 3 s each), which the crash-safety test
# would otherwise pay per kill.
_PREIMPORTED = r"""
import json, os, sys, threading
import pipelines.cli, pipelines.orchestration.flows
from pipelines.cli import run_cli
from pipelines.steps.ingest import warm_up_encoding
warm_up_encoding()  # what a run's first encode loads (numba's cached kernels, ...)
# fork copies only this thread: nothing else may be running (or hold a lock) at a fork
assert threading.active_count() == 1, threading.enumerate()
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDONLY)
        out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, target in ((devnull, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        os.environ.clear()
        os.environ.update(job["env"])
        raise SystemExit(run_cli(job["args"]))  # exits as the console script does
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class PreimportedCli:
    """`pathlink` commands as forked children of one pre-imported process (`run` returns what
    `pathlink()` returns for a subprocess: the exit code, -N for signal N, and the output)."""

    def __init__(self, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.proc = subprocess.Popen([sys.executable, "-c", _PREIMPORTED], env=env, cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.count += 1
        out, err = (self.scratch / f"cli-{self.count}.{n}" for n in ("out", "err"))
        self.proc.stdin.write(json.dumps({"args": list(args), "env": env, "stdout": str(out),
                                          "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the pre-imported process ended (exit status {self.proc.wait()})"
        return subprocess.CompletedProcess(["pathlink", *args], int(line), out.read_text(),
                                           err.read_text())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
