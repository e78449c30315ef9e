"""The restricted linkage state: one DuckDB file under `state/`, plus a single-writer lock.

Holds encoded records (tokens and Bloom filters, never raw PII), the file ledger, row issues,
the crosswalk and the person-ID history. Evaluators never see this file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

import schemas

STATE_DDL = Path(schemas.__file__).parent / "state.sql"


class StateLocked(Exception):
    """Another Pathlink run holds the workspace's writer lock."""


def now_utc() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP)."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextlib.contextmanager
def writer_lock(state_dir: Path, *, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the workspace's single-writer lock, waiting up to `wait_seconds` for it.

    Raises:
        StateLocked: when another process holds the lock after the wait.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / "writer.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise StateLocked(
                        "another pathlink run is active on this workspace"
                        + (f" ({holder})" if holder else "")
                        + "; wait for it to finish or pass --wait SECONDS"
                    ) from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {now_utc():%Y-%m-%d %H:%M:%S} UTC".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@dataclass
class StateStore:
    """Connection to the restricted state database."""

    path: Path

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.path))
        self.con.execute(STATE_DDL.read_text())

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ledger -----------------------------------------------------------------------------
    def start_run(self, run_id: str, code_version: str, key_fingerprint: str | None) -> None:
        self.con.execute(
            "INSERT INTO runs VALUES (?, ?, NULL, 'running', NULL, ?, ?)",
            [run_id, now_utc(), code_version, key_fingerprint],
        )

    def finish_run(self, run_id: str, status: str, periods: list[str]) -> None:
        self.con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, periods = ? WHERE run_id = ?",
            [now_utc(), status, ",".join(periods), run_id],
        )

    def known_file(self, sha256: str, partner_id: str, period: str, dataset: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM files WHERE sha256 = ? AND partner_id = ? AND period = ? "
            "AND dataset = ?",
            [sha256, partner_id, period, dataset],
        ).fetchall()[0]
        return bool(row and row[0])

    def current_file(self, partner_id: str, period: str, dataset: str) -> str | None:
        row = self.con.execute(
            "SELECT sha256 FROM files WHERE partner_id = ? AND period = ? AND dataset = ? "
            "AND status = 'accepted'",
            [partner_id, period, dataset],
        ).fetchall()
        return row[0][0] if row else None

    def processed_periods(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT period FROM periods").fetchall()}

    def record_file(self, entry: dict) -> None:
        """Insert a file-ledger row (keys as in the `files` table)."""
        columns = [
            "sha256", "partner_id", "period", "dataset", "rel_path", "size_bytes", "status",
            "reason", "rows_read", "rows_accepted", "rows_quarantined", "contract",
            "encoding_schema", "key_fingerprint", "code_version", "run_id", "processed_at",
            "superseded_by",
        ]
        values = [entry.get(c) for c in columns]
        self.con.execute(
            f"INSERT OR REPLACE INTO files ({', '.join(columns)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join('?' for _ in columns)})",
            values,
        )

    def supersede(self, old_sha: str, new_sha: str, partner_id: str, period: str,
                  dataset: str) -> None:
        """Mark an accepted file replaced by a corrected one and drop its records."""
        self.con.execute(
            "UPDATE files SET status = 'superseded', superseded_by = ? WHERE sha256 = ? "
            "AND partner_id = ? AND period = ? AND dataset = ?",
            [new_sha, old_sha, partner_id, period, dataset],
        )
        if self._has_table("record_versions"):
            self.con.execute(
                "DELETE FROM record_versions WHERE partner_id = ? AND period = ? "
                "AND file_sha256 = ?",
                [partner_id, period, old_sha],
            )

    def record_issues(self, sha256: str, issues: pd.DataFrame) -> None:
        """Store row issues (columns source_row, field, rule, severity, action)."""
        self.con.execute("DELETE FROM row_issues WHERE sha256 = ?", [sha256])
        if len(issues):
            frame = issues.assign(sha256=sha256)[
                ["sha256", "source_row", "field", "rule", "severity", "action"]
            ]
            self.con.register("issues_in", frame)
            self.con.execute("INSERT INTO row_issues SELECT * FROM issues_in")
            self.con.unregister("issues_in")

    def mark_period(self, period: str, run_id: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO periods VALUES (?, ?, ?)", [period, run_id, now_utc()]
        )

    # -- encoded records ----------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0]
        return bool(row and row[0])

    @staticmethod
    def _column_type(name: str) -> str:
        if name.startswith("bf_"):
            return "BLOB"
        if name in ("birth_year",):
            return "INTEGER"
        if name in ("source_row",):
            return "BIGINT"
        return "VARCHAR"

    def _ensure_record_columns(self, columns: list[str]) -> None:
        """Create `record_versions` (typed by column name) or add columns a new schema brings."""
        if not self._has_table("record_versions"):
            body = ", ".join(f'"{c}" {self._column_type(c)}' for c in columns)
            self.con.execute(f"CREATE TABLE record_versions ({body})")
            return
        existing = {r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'record_versions'").fetchall()}
        for column in columns:
            if column not in existing:
                self.con.execute(
                    f'ALTER TABLE record_versions ADD COLUMN "{column}" '
                    f"{self._column_type(column)}"
                )

    def store_records(self, encoded: pd.DataFrame) -> None:
        """Insert one file's encoded records (replacing any for the same file and period)."""
        self._ensure_record_columns(list(encoded.columns))
        if len(encoded) == 0:
            return
        shas = encoded["file_sha256"].unique().tolist()
        period = encoded["period"].iloc[0]
        self.con.execute(
            "DELETE FROM record_versions WHERE period = ? AND file_sha256 IN "
            "(SELECT unnest(?::VARCHAR[]))",
            [period, shas],
        )
        self.con.register("enc_in", encoded)
        self.con.execute("INSERT INTO record_versions BY NAME SELECT * FROM enc_in")
        self.con.unregister("enc_in")

    def latest_records(self) -> pd.DataFrame:
        """Each partner record's most recent encoded version."""
        if not self._has_table("record_versions"):
            return pd.DataFrame()
        return self.con.execute(
            "SELECT * FROM record_versions QUALIFY row_number() OVER "
            "(PARTITION BY record_key ORDER BY period DESC) = 1 ORDER BY record_key"
        ).df()

    def record_periods(self) -> pd.DataFrame:
        """record_key, partner_id, first and last period each record was seen."""
        if not self._has_table("record_versions"):
            return pd.DataFrame(columns=["record_key", "partner_id", "first_period",
                                         "last_period"])
        return self.con.execute(
            "SELECT record_key, partner_id, min(period) AS first_period, "
            "max(period) AS last_period FROM record_versions GROUP BY ALL"
        ).df()

    # -- crosswalk ----------------------------------------------------------------------------
    def crosswalk(self) -> pd.DataFrame:
        return self.con.execute(
            "SELECT record_key, partner_id, partner_record_id, person_id, cluster_reason "
            "FROM crosswalk ORDER BY partner_id, partner_record_id"
        ).df()

    def replace_crosswalk(self, crosswalk: pd.DataFrame, history: pd.DataFrame,
                          review: pd.DataFrame, run_id: str) -> None:
        """Swap in a new crosswalk, append ID history and the clerical-review list."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute("DELETE FROM crosswalk")
            self.con.register("cw_in", crosswalk.assign(run_id=run_id))
            self.con.execute(
                "INSERT INTO crosswalk SELECT record_key, partner_id, partner_record_id, "
                "person_id, cluster_reason, run_id FROM cw_in"
            )
            self.con.unregister("cw_in")
            if len(history):
                self.con.register("h_in", history.assign(run_id=run_id, recorded_at=now_utc()))
                self.con.execute(
                    "INSERT INTO id_history SELECT run_id, person_id, event, related_person_id, "
                    "record_count, reason, recorded_at FROM h_in"
                )
                self.con.unregister("h_in")
            self.con.execute("DELETE FROM clerical_review WHERE run_id = ?", [run_id])
            if len(review):
                self.con.register("r_in", review.assign(run_id=run_id))
                self.con.execute(
                    "INSERT INTO clerical_review SELECT run_id, record_key_l, record_key_r, "
                    "match_weight, match_probability, profile FROM r_in"
                )
                self.con.unregister("r_in")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def id_history(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM id_history ORDER BY recorded_at").df()

    def status(self) -> pd.DataFrame:
        """Per period and partner: files, rows and what happened to them."""
        return self.con.execute(
            "SELECT period, partner_id, dataset, status, rows_read, rows_accepted, "
            "rows_quarantined, reason, processed_at, contract, key_fingerprint, code_version "
            "FROM files ORDER BY period, partner_id, dataset, processed_at"
        ).df()
