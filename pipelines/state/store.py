"""The restricted linkage state: one DuckDB file under `state/`, plus a single-writer lock.

Holds encoded records (tokens and Bloom filters, never raw PII), the file ledger, row issues,
the crosswalk and the person-ID history. Evaluators never see this file.

Crash safety: a `with StateStore(...) as state:` block is one transaction, committed when the
block ends normally and rolled back otherwise (a killed process commits nothing), so a drop's
ledger row, row issues and encoded records appear together or not at all. Do not issue
`BEGIN`/`COMMIT` yourself inside such a block; use `state.transaction()` (re-entrant).
Only one process at a time opens the database (`state/.state.lock`), so Dask worker processes
storing drops concurrently take turns instead of failing on DuckDB's file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from data_contracts import EVENT_DATASETS
from pipelines.faults import crash_point
from pipelines.tables import insert_frame
from schemas import ddl


def _schema_statements() -> list[str]:
    """What makes a state file current: `schemas/state.sql`, then the columns added since."""
    statements = [ddl("state"),
                  # When the period was last published (NULL: linked, publish not yet finished).
                  "ALTER TABLE periods ADD COLUMN IF NOT EXISTS published_at TIMESTAMP"]
    # A period held back from publishing (docs/operations.md, "A release is only replaced by a
    # better-founded one"): when, why (nothing_accepted | shrink) and the reason in words; and
    # the persons of the release published with it.
    statements += [f"ALTER TABLE periods ADD COLUMN IF NOT EXISTS {column} {kind}"
                   for column, kind in (("held_at", "TIMESTAMP"), ("held_kind", "VARCHAR"),
                                        ("held_reason", "VARCHAR"), ("persons", "BIGINT"))]
    # How the partner's files were read (a hash of its map, values, sheet and age range) and
    # why the file was processed: new | corrected | map_changed | contract_changed |
    # encoding_changed | reprocess_requested (docs/operations.md, Reprocessing).
    statements += [f"ALTER TABLE files ADD COLUMN IF NOT EXISTS {column} VARCHAR"
                   for column in ("reading_fingerprint", "processed_because")]
    return statements


@functools.cache
def _schema() -> tuple[tuple[str, ...], str]:
    """The schema statements and their fingerprint. A file stamped with the fingerprint is
    opened without running them again (about 7 ms of catalog writes saved on every open:
    the state is opened dozens of times a run)."""
    statements = tuple(_schema_statements())
    return statements, hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()


def now_utc() -> datetime:
    """Naive UTC timestamp (DuckDB TIMESTAMP)."""
    return datetime.now(UTC).replace(tzinfo=None)


class _DatabaseLock:
    """Per-process re-entrant lock plus an inter-process `flock` on `state/.state.lock`.

    DuckDB lets one process at a time open a database file for writing; concurrent ingest tasks
    (threads, or Dask worker processes) queue here instead of failing. `hold` takes only the
    `flock` (for `held_open`): other processes wait, this process's threads do not.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Path, tuple[threading.RLock, threading.Lock, list[int]]] = {}

    def _entry(self, path: Path) -> tuple[threading.RLock, threading.Lock, list[int]]:
        with self._guard:
            return self._locks.setdefault(path.resolve(),
                                          (threading.RLock(), threading.Lock(), [0, -1]))

    @staticmethod
    def _take(db_path: Path, count_lock: threading.Lock, slot: list[int]) -> None:
        """One more user of the `flock` in this process (the first takes it)."""
        with count_lock:
            if slot[0] == 0:
                fd = os.open(db_path.parent / ".state.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                slot[1] = fd
            slot[0] += 1

    @staticmethod
    def _give(count_lock: threading.Lock, slot: list[int]) -> None:
        with count_lock:
            slot[0] -= 1
            if slot[0] == 0:
                fd, slot[1] = slot[1], -1
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def acquire(self, db_path: Path) -> None:
        rlock, count_lock, slot = self._entry(db_path)
        rlock.acquire()
        try:
            self._take(db_path, count_lock, slot)
        except BaseException:
            rlock.release()
            raise

    def release(self, db_path: Path) -> None:
        rlock, count_lock, slot = self._entry(db_path)
        self._give(count_lock, slot)
        rlock.release()

    def hold(self, db_path: Path) -> None:
        _rlock, count_lock, slot = self._entry(db_path)
        self._take(db_path, count_lock, slot)

    def unhold(self, db_path: Path) -> None:
        _rlock, count_lock, slot = self._entry(db_path)
        self._give(count_lock, slot)


_DB_LOCK = _DatabaseLock()


#: While `held_open` keeps the database open, DuckDB folds its write-ahead log into the file
#: only when the log grows past this (or when the block ends).
HELD_CHECKPOINT_THRESHOLD = "256MiB"


@contextlib.contextmanager
def held_open(db_path: Path) -> Iterator[Callable[[], None]]:
    """Keep the state database open in this process while the block runs, so that the
    block's stores are checkpointed together.

    DuckDB checkpoints a database (folds the write-ahead log into the file, compressing the
    rows) when its last connection closes, and at any commit that takes the log past 16 MiB.
    Each partner's drop is stored in a `StateStore` block of its own, so a period of seven
    partners paid seven checkpoints: for 100k stored records, 5.1 s of closing, where storing
    the same seven batches under one held connection and checkpointing once took 2.0 s (and
    left a 99 MB file, not 160 MB). Inside this block every `StateStore` of this process
    shares the held connection's database: each block's commit still reaches the log on disk
    (a killed run's log is replayed at the next open, as before), and the log is folded in
    when it passes `HELD_CHECKPOINT_THRESHOLD` (which bounds the committed rows waiting in
    memory), when the block calls the function it is given (to time it), or as it ends.

    Other processes wait on `state/.state.lock` until the block ends. For stores made in this
    process only: a Dask worker process could not open the file meanwhile.
    """
    db_path.parent.mkdir(parents=True, exist_ok=True)
    _DB_LOCK.hold(db_path)
    try:
        con = duckdb.connect(str(db_path))
        try:
            con.execute(f"SET checkpoint_threshold = '{HELD_CHECKPOINT_THRESHOLD}'")

            def checkpoint() -> None:
                con.execute("CHECKPOINT")

            yield checkpoint
        finally:
            con.close()  # the last connection: DuckDB checkpoints here
    finally:
        _DB_LOCK.unhold(db_path)


def _frame_from_arrow(table: Any) -> pd.DataFrame:
    """A DuckDB result (as an Arrow table) as the frame `.df()` gives, but faster at 100k
    wide rows: BLOBs arrive as `bytes` (the encoded-frame contract: hashable, compared as a
    value; `.df()` gives bytearray, converted one by one) and VARCHARs as `str`. An integer
    column holding NULLs becomes pandas' nullable integer (as from `.df()`), not float.
    """
    import pyarrow as pa

    frame = table.to_pandas()
    for field, column in zip(table.schema, table.columns, strict=True):
        if pa.types.is_integer(field.type) and column.null_count:
            nullable = pd.api.types.pandas_dtype(f"Int{field.type.bit_width}")
            frame[field.name] = column.to_pandas(types_mapper={field.type: nullable}.get)
    return frame


@dataclass
class StateStore:
    """Connection to the restricted state database (a `with` block is one transaction)."""

    path: Path

    def __post_init__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tx_depth = 0
        self._closed = False
        _DB_LOCK.acquire(self.path)
        try:
            self.con = duckdb.connect(str(self.path))
            statements, fingerprint = _schema()
            if self._schema_applied() != fingerprint:  # a new file, or a newer Pathlink
                for statement in statements:
                    self.con.execute(statement)
                self.con.execute("CREATE OR REPLACE TABLE state_schema AS "
                                 "SELECT ?::VARCHAR AS fingerprint", [fingerprint])
        except BaseException:
            _DB_LOCK.release(self.path)
            raise

    def _schema_applied(self) -> str | None:
        """The fingerprint of the schema statements last applied to this file, if any."""
        try:
            rows = self.con.execute("SELECT fingerprint FROM state_schema").fetchall()
        except duckdb.CatalogException:
            return None
        return rows[0][0] if rows else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.con.close()
        finally:
            _DB_LOCK.release(self.path)

    def __enter__(self) -> StateStore:
        self.con.execute("BEGIN TRANSACTION")
        self._tx_depth = 1
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if self._tx_depth:
                self._tx_depth = 0
                if exc_type is None:
                    crash_point("state:before-commit")
                    self.con.execute("COMMIT")
                else:
                    self.con.execute("ROLLBACK")
        finally:
            self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; inside a `with StateStore` block it joins the block's transaction."""
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield
            finally:
                self._tx_depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._tx_depth = 1
        try:
            yield
        except BaseException:
            self._tx_depth = 0
            self.con.execute("ROLLBACK")
            raise
        self._tx_depth = 0
        self.con.execute("COMMIT")

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

    def mark_interrupted_runs(self) -> list[str]:
        """Mark runs still `running` as `interrupted` (call under the writer lock only)."""
        rows = self.con.execute(
            "SELECT run_id FROM runs WHERE status = 'running' ORDER BY started_at").fetchall()
        if rows:
            self.con.execute(
                "UPDATE runs SET status = 'interrupted' WHERE status = 'running'")
        return [r[0] for r in rows]

    def unfinished_periods(self) -> list[str]:
        """Periods with files stored since they were last linked and published.

        A run killed after storing a drop but before publishing leaves its period here; the
        next run links and publishes it even when no new file arrived.
        """
        rows = self.con.execute(
            "SELECT f.period FROM files f LEFT JOIN periods p USING (period) "
            "GROUP BY f.period HAVING (max(p.published_at) IS NULL "
            "OR max(f.processed_at) > max(p.published_at)) "
            # held because nothing was accepted, and no file since: nothing to publish
            "AND NOT coalesce(max(p.held_kind) = 'nothing_accepted' "
            "AND max(p.held_at) >= max(f.processed_at), false) ORDER BY f.period"
        ).fetchall()
        return [r[0] for r in rows]

    def held_periods(self) -> list[dict[str, Any]]:
        """Periods held back from publishing, oldest first: period, kind, reason, held_at."""
        rows = self.con.execute(
            "SELECT period, held_kind, held_reason, held_at FROM periods "
            "WHERE held_at IS NOT NULL ORDER BY period").fetchall()
        return [{"period": p, "kind": k, "reason": r, "held_at": t} for p, k, r, t in rows]

    def hold_period(self, period: str, run_id: str, kind: str, reason: str) -> None:
        """Record that `period` was linked but its release held back (`kind`: nothing_accepted
        | shrink); an earlier publication of the period is kept as it was."""
        self.con.execute(
            "INSERT INTO periods (period, run_id, processed_at, published_at, held_at, "
            "held_kind, held_reason) VALUES (?, ?, ?, NULL, ?, ?, ?) ON CONFLICT (period) DO "
            "UPDATE SET run_id = excluded.run_id, held_at = excluded.held_at, "
            "held_kind = excluded.held_kind, held_reason = excluded.held_reason",
            [period, run_id, now_utc(), now_utc(), kind, reason])

    def accepted_rows(self, period: str) -> int:
        """Rows accepted from the period's current (accepted) files, any run."""
        row = self.con.execute(
            "SELECT coalesce(sum(rows_accepted), 0) FROM files WHERE period = ? "
            "AND status = 'accepted'", [period]).fetchall()[0]
        return int(row[0])

    def published_persons(self) -> int | None:
        """Persons in the release last published (recorded at publishing; for a workspace
        published before that was recorded, its last published period's crosswalk snapshot),
        or None when nothing was published yet."""
        rows = self.con.execute(
            "SELECT period, persons FROM periods WHERE published_at IS NOT NULL "
            "ORDER BY published_at DESC LIMIT 1").fetchall()
        if not rows:
            return None
        period, persons = rows[0]
        if persons is not None:
            return int(persons)
        row = self.con.execute(
            "SELECT count(DISTINCT person_id) FROM crosswalk_snapshots WHERE period = ?",
            [period]).fetchall()[0]
        return int(row[0])

    def known_file(self, sha256: str, partner_id: str, period: str, dataset: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM files WHERE sha256 = ? AND partner_id = ? AND period = ? "
            "AND dataset = ?",
            [sha256, partner_id, period, dataset],
        ).fetchall()[0]
        return bool(row and row[0])

    def file_entry(self, sha256: str, partner_id: str, period: str, dataset: str
                   ) -> dict[str, Any] | None:
        """The ledger row of one file (contract, reading fingerprint, status), or None."""
        rows = self.con.execute(
            "SELECT status, contract, reading_fingerprint, run_id, processed_at, "
            "encoding_schema FROM files "
            "WHERE sha256 = ? AND partner_id = ? AND period = ? AND dataset = ?",
            [sha256, partner_id, period, dataset]).fetchall()
        if not rows:
            return None
        status, contract, reading, run_id, processed_at, encoding_schema = rows[0]
        return {"status": status, "contract": contract, "reading_fingerprint": reading,
                "run_id": run_id, "processed_at": processed_at,
                "encoding_schema": encoding_schema}

    def record_reprocessing(self, entry: dict[str, Any]) -> None:
        """Keep, before a file's ledger row is replaced, that it was processed again and why."""
        self.con.execute(
            "INSERT INTO reprocessed (run_id, sha256, partner_id, period, dataset, because, "
            "previous_run_id, previous_processed_at, previous_contract, "
            "previous_reading_fingerprint, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [entry["run_id"], entry["sha256"], entry["partner_id"], entry["period"],
             entry["dataset"], entry["because"], entry.get("previous_run_id"),
             entry.get("previous_processed_at"), entry.get("previous_contract"),
             entry.get("previous_reading_fingerprint"), now_utc()])

    def reprocessing(self) -> pd.DataFrame:
        """Every reprocessing of an already processed file, oldest first."""
        return self.con.execute("SELECT * FROM reprocessed ORDER BY recorded_at").df()

    def current_file(self, partner_id: str, period: str, dataset: str,
                     key_fingerprint: str | None = None) -> str | None:
        """The accepted file a new one for this partner, period and dataset replaces.

        With `key_fingerprint` (a key rotation's overlap holds one file per key): only a file
        under that key, or one that recorded no key (e.g. an empty file), is replaced.
        """
        sql = ("SELECT sha256 FROM files WHERE partner_id = ? AND period = ? AND dataset = ? "
               "AND status = 'accepted'")
        params: list[object] = [partner_id, period, dataset]
        if key_fingerprint is not None:
            sql += " AND (key_fingerprint = ? OR key_fingerprint IS NULL)"
            params.append(key_fingerprint)
        row = self.con.execute(sql + " ORDER BY processed_at DESC", params).fetchall()
        return row[0][0] if row else None

    def processed_periods(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT period FROM periods").fetchall()}

    def record_file(self, entry: dict) -> None:
        """Insert a file-ledger row (keys as in the `files` table)."""
        columns = [
            "sha256", "partner_id", "period", "dataset", "rel_path", "size_bytes", "status",
            "reason", "rows_read", "rows_accepted", "rows_quarantined", "contract",
            "encoding_schema", "key_fingerprint", "code_version", "run_id", "processed_at",
            "superseded_by", "reading_fingerprint", "processed_because",
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
            insert_frame(self.con, "row_issues", frame, columns=list(frame.columns))

    def mark_period(self, period: str, run_id: str) -> None:
        """Record that a period's drops are linked (its release is about to be written)."""
        self.con.execute(
            "INSERT OR REPLACE INTO periods (period, run_id, processed_at, published_at) "
            "VALUES (?, ?, ?, NULL)", [period, run_id, now_utc()]
        )

    def mark_published(self, period: str, run_id: str, persons: int | None = None) -> None:
        """Record that the release including `period` (with `persons` persons) is swapped in;
        a hold on the period is lifted."""
        self.con.execute(
            "UPDATE periods SET published_at = ?, persons = ?, held_at = NULL, "
            "held_kind = NULL, held_reason = NULL WHERE period = ? AND run_id = ?",
            [now_utc(), persons, period, run_id],
        )

    # -- encoded records ----------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0]
        return bool(row and row[0])

    @staticmethod
    def _column_type(name: str) -> str:
        if name.startswith(("bf_", "ts_")):
            return "BLOB"
        if name in ("birth_year",):
            return "INTEGER"
        if name in ("source_row",):
            return "BIGINT"
        return "VARCHAR"

    def _record_columns(self) -> set[str]:
        return set(self._record_column_list())

    def _record_column_list(self) -> list[str]:
        """The columns of `record_versions`, in table order."""
        return [r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'record_versions' ORDER BY ordinal_position").fetchall()]

    def _ensure_record_columns(self, columns: list[str]) -> None:
        """Create `record_versions` (typed by column name) or add columns a new schema brings."""
        if not self._has_table("record_versions"):
            body = ", ".join(f'"{c}" {self._column_type(c)}' for c in columns)
            self.con.execute(f"CREATE TABLE record_versions ({body})")
            return
        existing = self._record_columns()
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
        insert_frame(self.con, "record_versions", encoded)

    def latest_records(self, key_fingerprint: str | None = None, *,
                       only_key: bool = False,
                       encoding_schema: str | None = None,
                       columns: Sequence[str] | None = None,
                       exclude: Sequence[str] = ()) -> pd.DataFrame:
        """Each partner record's most recent encoded version.

        Args:
            key_fingerprint: The current key. Among versions of the same period (a key
                rotation's overlap pair) the one under this key wins.
            only_key: Only versions under `key_fingerprint` (or with no recorded key) count:
                the records that can be linked under the current key.
            encoding_schema: When given, only versions encoded under this schema id (or with
                none recorded) count: encodings of two schema versions are not comparable.
            columns: Only these columns (those the table has), `record_key` first; default
                all. A release reads a dozen of the forty-odd and none of the filters.
            exclude: Not these columns (linking reads none of the profile columns).
        """
        if not self._has_table("record_versions"):
            return pd.DataFrame()
        conditions: list[str] = []
        params: list[object] = []
        if only_key and key_fingerprint is not None:
            conditions.append("(key_fingerprint = ? OR key_fingerprint IS NULL)")
            params.append(key_fingerprint)
        if encoding_schema is not None:
            conditions.append("(encoding_schema = ? OR encoding_schema IS NULL)")
            params.append(encoding_schema)
        where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
        select = "*"
        if columns is not None or exclude:
            have = self._record_column_list()
            if columns is not None:
                in_table = set(have)
                have = [c for c in columns if c in in_table]
            left_out = {"record_key", *exclude}
            wanted = ["record_key", *(c for c in have if c not in left_out)]
            select = ", ".join(f'"{c}"' for c in dict.fromkeys(wanted))
        latest = self.con.sql(
            f"SELECT {select} FROM record_versions {where}QUALIFY row_number() OVER "  # noqa: S608
            "(PARTITION BY record_key ORDER BY period DESC, "
            "(key_fingerprint IS NOT DISTINCT FROM ?) DESC, key_fingerprint, file_sha256) = 1 "
            "ORDER BY record_key",
            params=[*params, key_fingerprint],
        )
        return _frame_from_arrow(latest.to_arrow_table())

    def records_by_key(self) -> pd.DataFrame:
        """record_key, partner_id, partner_record_id, period, key_fingerprint, file_sha256 of
        every stored version (the lineage columns only: no tokens or filters)."""
        if not self._has_table("record_versions"):
            return pd.DataFrame(columns=["record_key", "partner_id", "partner_record_id",
                                         "period", "key_fingerprint", "file_sha256"])
        return self.con.execute(
            "SELECT DISTINCT record_key, partner_id, partner_record_id, period, "
            "key_fingerprint, file_sha256 FROM record_versions ORDER BY record_key, period"
        ).df()

    def records_per_key(self, current_fingerprint: str | None) -> pd.DataFrame:
        """key_fingerprint, records: records with a version under the current key (or with no
        recorded key) count for it; every other record for the key of its latest version
        (after a key rotation: known only under an earlier key, not linked)."""
        if not self._has_table("record_versions"):
            return pd.DataFrame(columns=["key_fingerprint", "records"])
        return self.con.execute(
            "WITH per_record AS (SELECT record_key, bool_or(key_fingerprint IS NULL OR "
            "key_fingerprint IS NOT DISTINCT FROM ?) AS on_current, "
            "arg_max(key_fingerprint, period) AS last_fp FROM record_versions GROUP BY ALL) "
            "SELECT CASE WHEN on_current THEN ? ELSE last_fp END AS key_fingerprint, "
            "count(*) AS records FROM per_record GROUP BY ALL ORDER BY records DESC",
            [current_fingerprint, current_fingerprint],
        ).df()

    def token_records(self, columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
        """record_key and the given token columns of each record's latest version under every
        key (after a key rotation old rows, e.g. wages, still match by old-key tokens)."""
        if not self._has_table("record_versions"):
            return pd.DataFrame(columns=["record_key", *columns])
        have = self._record_columns()
        picked = [c for c in columns if c in have]
        select = ", ".join(["record_key", *(f'"{c}"' for c in picked)])
        return self.con.execute(
            f"SELECT {select} FROM record_versions QUALIFY row_number() OVER "  # noqa: S608
            "(PARTITION BY record_key, key_fingerprint ORDER BY period DESC, file_sha256) = 1 "
            "ORDER BY record_key"
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

    def datasets_sent(self) -> pd.DataFrame:
        """partner_id, dataset, first_period, last_period, periods: what each partner sent
        (accepted files only), for the release's "no data sent" reasons."""
        return self.con.execute(
            "SELECT partner_id, dataset, min(period) AS first_period, max(period) AS "
            "last_period, count(DISTINCT period) AS periods FROM files "
            "WHERE status = 'accepted' GROUP BY ALL ORDER BY ALL"
        ).df()

    # -- event datasets -------------------------------------------------------------------
    @staticmethod
    def _event_table(dataset: str) -> str:
        if dataset not in EVENT_DATASETS:
            raise ValueError(f"not an event dataset: {dataset}")
        return f"events_{dataset}"

    def store_event_rows(self, dataset: str, rows: pd.DataFrame) -> None:
        """Replace one partner-period's rows of an event dataset (`events_<dataset>`)."""
        table = self._event_table(dataset)
        columns = list(rows.columns)
        if not self._has_table(table):
            body = ", ".join(f'"{c}" {"BIGINT" if c == "source_row" else "VARCHAR"}'
                             for c in columns)
            self.con.execute(f"CREATE TABLE {table} ({body})")
        else:
            have = {r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table]).fetchall()}
            for column in columns:
                if column not in have:
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" VARCHAR')
        if rows.empty:
            return
        first = rows.iloc[0]
        self.con.execute(f"DELETE FROM {table} WHERE partner_id = ? AND period = ?",  # noqa: S608
                         [first["partner_id"], first["period"]])
        insert_frame(self.con, table, rows)

    def event_rows(self) -> dict[str, pd.DataFrame]:
        """All stored rows of every event dataset that has any."""
        return {d: self.con.execute(f"SELECT * FROM {self._event_table(d)}").df()  # noqa: S608
                for d in EVENT_DATASETS if self._has_table(self._event_table(d))}

    # -- crosswalk ----------------------------------------------------------------------------
    def crosswalk(self) -> pd.DataFrame:
        return self.con.execute(
            "SELECT record_key, partner_id, partner_record_id, person_id, cluster_reason "
            "FROM crosswalk ORDER BY partner_id, partner_record_id"
        ).df()

    def replace_crosswalk(self, crosswalk: pd.DataFrame, history: pd.DataFrame,
                          review: pd.DataFrame, run_id: str) -> None:
        """Swap in a new crosswalk, append ID history and the clerical-review list."""
        with self.transaction():
            self.con.execute("DELETE FROM crosswalk")
            insert_frame(self.con, "crosswalk", crosswalk.assign(run_id=run_id), columns=[
                "record_key", "partner_id", "partner_record_id", "person_id", "cluster_reason",
                "run_id"])
            if len(history):
                insert_frame(self.con, "id_history",
                             history.assign(run_id=run_id, recorded_at=now_utc()), columns=[
                                 "run_id", "person_id", "event", "related_person_id",
                                 "record_count", "reason", "recorded_at"])
            self.con.execute("DELETE FROM clerical_review WHERE run_id = ?", [run_id])
            if len(review):
                insert_frame(self.con, "clerical_review", review.assign(run_id=run_id), columns=[
                    "run_id", "record_key_l", "record_key_r", "match_weight",
                    "match_probability", "profile"])
            crash_point("state:crosswalk-replaced")

    def snapshot_crosswalk(self, period: str, run_id: str) -> None:
        """Keep the crosswalk as it stands after linking `period` (month-over-month audits)."""
        self.con.execute("DELETE FROM crosswalk_snapshots WHERE period = ?", [period])
        self.con.execute(
            "INSERT INTO crosswalk_snapshots SELECT ?, ?, record_key, person_id FROM crosswalk",
            [period, run_id],
        )

    def crosswalk_snapshots(self) -> pd.DataFrame:
        """period, record_key, person_id of every snapshot."""
        return self.con.execute(
            "SELECT period, record_key, person_id FROM crosswalk_snapshots").df()

    def id_history(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM id_history ORDER BY recorded_at").df()

    def status(self) -> pd.DataFrame:
        """Per period and partner: files, rows and what happened to them.

        Adds `quarantined_by_rule` ("rule: n, ..." over quarantined rows) and `published_at`
        (when a release including this file's period was published after the file was stored;
        empty while the period still waits for linking and publishing).
        """
        return self.con.execute(
            "WITH rules AS (SELECT sha256, rule, count(DISTINCT source_row) AS n "
            "  FROM row_issues WHERE action = 'quarantined' GROUP BY ALL), "
            "by_file AS (SELECT sha256, string_agg(rule || ': ' || n, ', ' "
            "  ORDER BY n DESC, rule) AS quarantined_by_rule FROM rules GROUP BY sha256) "
            "SELECT f.period, f.partner_id, f.dataset, f.rel_path, f.size_bytes, f.sha256, "
            "f.status, f.rows_read, f.rows_accepted, f.rows_quarantined, f.reason, "
            "f.processed_at, f.contract, f.encoding_schema, f.key_fingerprint, f.code_version, "
            "f.run_id, b.quarantined_by_rule, "
            "CASE WHEN p.published_at >= f.processed_at THEN p.published_at END "
            "  AS published_at "
            "FROM files f LEFT JOIN by_file b USING (sha256) LEFT JOIN periods p USING (period) "
            "ORDER BY f.period, f.partner_id, f.dataset, f.processed_at"
        ).df()

    def partner_files(self, partner_id: str) -> pd.DataFrame:
        """Every ledger row of one partner's files, newest first within a period and dataset
        (counts, status, reason and versions only)."""
        return self.con.execute(
            "SELECT sha256, period, dataset, rel_path, status, reason, rows_read, "
            "rows_accepted, rows_quarantined, contract, processed_at FROM files "
            "WHERE partner_id = ? ORDER BY period, dataset, processed_at DESC",
            [partner_id]).df()

    def file_issues(self, sha256: str) -> pd.DataFrame:
        """The row issues recorded for one file: row, field, rule, severity, action."""
        return self.con.execute(
            "SELECT source_row, field, rule, severity, action FROM row_issues "
            "WHERE sha256 = ? ORDER BY source_row, field, rule", [sha256]).df()

    def last_run_fingerprint(self) -> str | None:
        """The key fingerprint the most recent run that recorded one was started under."""
        rows = self.con.execute(
            "SELECT key_fingerprint FROM runs WHERE key_fingerprint IS NOT NULL "
            "ORDER BY started_at DESC LIMIT 1").fetchall()
        return rows[0][0] if rows else None

    # -- key rotation ---------------------------------------------------------------------------
    def key_overlap(self, old_fp: str, new_fp: str) -> pd.DataFrame:
        """Per partner: records stored under `old_fp`, how many of them also under `new_fp`
        in the same period (the overlap bridged), and whether such a period is published.

        Columns: partner_id, old_records, only_old, bridged, published_periods.
        """
        empty = pd.DataFrame(columns=["partner_id", "old_records", "only_old", "bridged",
                                      "published_periods"])
        if not self._has_table("record_versions"):
            return empty
        return self.con.execute(
            "WITH old AS (SELECT DISTINCT partner_id, record_key, period FROM record_versions "
            "  WHERE key_fingerprint = ?), "
            "new AS (SELECT DISTINCT partner_id, record_key, period FROM record_versions "
            "  WHERE key_fingerprint = ?), "
            "pairs AS (SELECT o.partner_id, o.record_key, o.period FROM old o JOIN new n "
            "  USING (partner_id, record_key, period)), "
            "published AS (SELECT period FROM periods WHERE published_at IS NOT NULL), "
            "per_partner AS (SELECT partner_id, count(DISTINCT record_key) AS old_records, "
            "  count(DISTINCT record_key) FILTER (WHERE record_key NOT IN "
            "    (SELECT record_key FROM new)) AS only_old FROM old GROUP BY partner_id) "
            "SELECT p.partner_id, p.old_records, p.only_old, "
            "  count(DISTINCT b.record_key) FILTER (WHERE b.period IN "
            "    (SELECT period FROM published)) AS bridged, "
            "  string_agg(DISTINCT b.period, ',' ORDER BY b.period) FILTER (WHERE b.period IN "
            "    (SELECT period FROM published)) AS published_periods "
            "FROM per_partner p LEFT JOIN pairs b USING (partner_id) "
            "GROUP BY ALL ORDER BY p.partner_id",
            [old_fp, new_fp]).df()

    def runs(self, limit: int = 10) -> pd.DataFrame:
        """The most recent runs, newest first."""
        return self.con.execute(
            "SELECT run_id, started_at, finished_at, status, periods, code_version, "
            "key_fingerprint FROM runs ORDER BY started_at DESC LIMIT ?", [limit]
        ).df()

    # -- clerical review (docs/review.md) ----------------------------------------------------
    def replace_review_pairs(self, run_id: str, period: str, pairs: pd.DataFrame,
                             model: str, strata: str, histogram: str, linkage_spec: str,
                             pool_population: int) -> None:
        """Swap in the latest link's review pairs and record its model and weight census
        (JSON texts: counts, weights and Bayes factors only)."""
        with self.transaction():
            self.con.execute("DELETE FROM review_pairs")
            if len(pairs):
                insert_frame(self.con, "review_pairs",
                             pairs.assign(run_id=run_id, period=period), columns=[
                                 "run_id", "period", "pair_id", "record_key_l", "record_key_r",
                                 "match_weight", "match_probability", "match_class",
                                 "frequency_adjustment", "profile", "linked"])
            self.con.execute(
                "INSERT OR REPLACE INTO link_models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, period, now_utc(), linkage_spec, model, strata, histogram,
                 int(pool_population)])

    def review_pairs(self, *, record_key: str | None = None,
                     pair_ids: list[str] | None = None) -> pd.DataFrame:
        """The latest link's review pairs (all, one record's, or the given pair ids)."""
        sql = "SELECT * FROM review_pairs"
        params: list[object] = []
        if record_key is not None:
            sql += " WHERE record_key_l = ? OR record_key_r = ?"
            params += [record_key, record_key]
        elif pair_ids is not None:
            sql += " WHERE pair_id IN (SELECT unnest(?::VARCHAR[]))"
            params.append(list(pair_ids))
        return self.con.execute(sql + " ORDER BY match_weight DESC, pair_id", params).df()

    def link_model(self, run_id: str | None = None) -> dict[str, Any] | None:
        """A link's model snapshot and census (the latest link, or the latest of `run_id`)."""
        sql = ("SELECT run_id, period, linked_at, linkage_spec, model, strata, histogram, "
               "pool_population FROM link_models")
        params: list[object] = []
        if run_id is not None:
            sql += " WHERE run_id = ?"
            params.append(run_id)
        rows = self.con.execute(sql + " ORDER BY linked_at DESC LIMIT 1", params).fetchall()
        if not rows:
            return None
        keys = ("run_id", "period", "linked_at", "linkage_spec", "model", "strata",
                "histogram", "pool_population")
        return dict(zip(keys, rows[0], strict=True))

    def add_decisions(self, decisions: pd.DataFrame) -> None:
        """Append review decisions (columns of `review_decisions`)."""
        if len(decisions):
            insert_frame(self.con, "review_decisions", decisions,
                         columns=list(decisions.columns))

    def decisions(self, *, in_force: bool = True) -> pd.DataFrame:
        """Review decisions: the one in force per pair (the latest), or every one ever made."""
        sql = "SELECT * FROM review_decisions"
        if in_force:
            sql += (" QUALIFY row_number() OVER (PARTITION BY pair_id "
                    "ORDER BY decided_at DESC, decision_id DESC) = 1")
        return self.con.execute(sql + " ORDER BY decided_at, decision_id").df()

    def decisions_since_link(self) -> str | None:
        """The latest linked period when a review decision was made after its last link
        (the next run links it again), else None."""
        rows = self.con.execute(
            "SELECT m.period FROM link_models m WHERE m.linked_at = "
            "(SELECT max(linked_at) FROM link_models) AND EXISTS (SELECT 1 FROM "
            "review_decisions d WHERE d.decided_at > m.linked_at) LIMIT 1").fetchall()
        return rows[0][0] if rows else None

    def add_sample(self, sample: dict[str, Any], pairs: pd.DataFrame) -> None:
        """Record a review sample and its pairs."""
        with self.transaction():
            self.con.execute(
                "INSERT INTO review_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [sample["sample_id"], sample["run_id"], sample["period"], now_utc(),
                 sample["drawn_by"], int(sample["seed"]), int(sample["size"]),
                 sample["design"]])
            if len(pairs):
                insert_frame(self.con, "review_sample_pairs",
                             pairs.assign(sample_id=sample["sample_id"]), columns=[
                                 "sample_id", "pair_id", "record_key_l", "record_key_r",
                                 "stratum", "match_weight", "match_class",
                                 "frequency_adjustment", "profile", "linked"])

    def samples(self) -> pd.DataFrame:
        """Every review sample, newest first."""
        return self.con.execute(
            "SELECT * FROM review_samples ORDER BY drawn_at DESC, sample_id DESC").df()

    def sample_pairs(self, sample_id: str) -> pd.DataFrame:
        """The pairs of one review sample."""
        return self.con.execute(
            "SELECT * FROM review_sample_pairs WHERE sample_id = ? ORDER BY stratum, "
            "match_weight DESC, pair_id", [sample_id]).df()

    def record_sources(self, record_keys: list[str]) -> pd.DataFrame:
        """Where each record's latest version came from: record_key, partner_id,
        partner_record_id, period, file_sha256, source_row and the file's landing path
        (`rel_path`, NULL when the ledger has none). Lineage only."""
        if not self._has_table("record_versions"):
            return pd.DataFrame(columns=["record_key", "partner_id", "partner_record_id",
                                         "period", "file_sha256", "source_row", "rel_path"])
        return self.con.execute(
            "SELECT v.record_key, v.partner_id, v.partner_record_id, v.period, v.file_sha256, "
            "v.source_row, f.rel_path FROM (SELECT record_key, partner_id, partner_record_id, "
            "period, file_sha256, source_row FROM record_versions WHERE record_key IN "
            "(SELECT unnest(?::VARCHAR[])) QUALIFY row_number() OVER (PARTITION BY record_key "
            "ORDER BY period DESC, file_sha256) = 1) v LEFT JOIN files f ON "
            "f.sha256 = v.file_sha256 AND f.partner_id = v.partner_id AND f.period = v.period "
            "AND f.dataset = 'participants' ORDER BY v.record_key", [list(record_keys)]).df()
