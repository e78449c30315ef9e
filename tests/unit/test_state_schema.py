"""The hub links only record versions encoded under the current encoding schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.state import StateStore


def _versions(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "record_key": key, "partner_id": key.split(":")[0],
        "partner_record_id": key.split(":")[1], "period": period, "file_sha256": sha,
        "key_fingerprint": "ab" * 16, "encoding_schema": schema,
        "tok_t4_ssn": f"{key}-{schema}", "bf_dob": b"\x01" * 32,
    } for key, period, sha, schema in rows])


def test_latest_records_keeps_only_the_current_schema_when_asked(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.duckdb") as state:
        state.store_records(_versions([("p:A", "2026-01", "s1", "pathlink-encoding/1"),
                                       ("p:B", "2026-01", "s1", "pathlink-encoding/1")]))
        state.store_records(_versions([("p:A", "2026-02", "s2", "pathlink-encoding/2")]))
        every = state.latest_records("ab" * 16)
        linkable = state.latest_records("ab" * 16, only_key=True,
                                        encoding_schema="pathlink-encoding/2")
        stale_only = state.latest_records("ab" * 16, only_key=True,
                                          encoding_schema="pathlink-encoding/1")
    assert dict(zip(every["record_key"], every["encoding_schema"], strict=True)) == {
        "p:A": "pathlink-encoding/2", "p:B": "pathlink-encoding/1"}
    # B was never sent again under v2: it is not linked (it keeps its person, see tasks.link)
    assert linkable["record_key"].tolist() == ["p:A"]
    assert linkable["tok_t4_ssn"].tolist() == ["p:A-pathlink-encoding/2"]
    assert stale_only["record_key"].tolist() == ["p:A", "p:B"]
    assert stale_only["period"].tolist() == ["2026-01", "2026-01"]


def test_a_file_is_stamped_with_its_schema_and_an_older_file_is_brought_up_to_date(
        tmp_path: Path) -> None:
    import duckdb

    from pipelines.state.store import _schema

    path = tmp_path / "state.duckdb"
    StateStore(path).close()
    con = duckdb.connect(str(path))
    assert con.execute("SELECT fingerprint FROM state_schema").fetchall() == [(_schema()[1],)]
    # as an older Pathlink left it: a column added since missing, a stamp of other statements
    con.execute("ALTER TABLE files DROP COLUMN processed_because")
    con.execute("UPDATE state_schema SET fingerprint = 'older'")
    con.close()
    StateStore(path).close()
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'files'").fetchall()}
        assert "processed_because" in columns
        assert con.execute("SELECT fingerprint FROM state_schema").fetchall() == [
            (_schema()[1],)]
    finally:
        con.close()


def _wal(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def _lock_taken_elsewhere(db: Path) -> bool:
    """Whether another process would have to wait for `state/.state.lock` now (a second
    open file description conflicts with this process's own `flock`)."""
    import fcntl
    import os

    fd = os.open(db.parent / ".state.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def test_stores_inside_held_open_are_checkpointed_once_and_kept(tmp_path: Path) -> None:
    import threading

    from pipelines.state.store import held_open

    db = tmp_path / "state" / "state.duckdb"
    with StateStore(db) as state:  # the file and its schema exist before, as in a run
        pass
    state.close()
    assert not _wal(db).exists()  # closing the only connection checkpoints
    with held_open(db) as checkpoint:
        assert _lock_taken_elsewhere(db)  # other processes wait for the block
        for n in range(3):
            with StateStore(db) as state:
                state.store_records(_versions([(f"p:{n}", "2026-01", f"s{n}",
                                                "pathlink-encoding/3")]))
            state.close()
            # committed to the log, not folded into the file: the held connection stays
            assert _wal(db).exists() and _wal(db).stat().st_size > 0
        # another thread of this process is not blocked by the hold (partners' ingest tasks)
        done: list[int] = []

        def store_in_thread() -> None:
            with StateStore(db) as other:
                other.store_records(_versions([("p:t", "2026-01", "st",
                                                "pathlink-encoding/3")]))
            other.close()
            done.append(1)

        worker = threading.Thread(target=store_in_thread)
        worker.start()
        worker.join(timeout=30)
        assert done == [1]
        checkpoint()
        assert not _wal(db).exists() or _wal(db).stat().st_size == 0
    assert not _lock_taken_elsewhere(db)
    with StateStore(db) as state:
        keys = state.latest_records("ab" * 16)["record_key"].tolist()
    state.close()
    assert keys == ["p:0", "p:1", "p:2", "p:t"]


def test_latest_records_leaves_out_excluded_columns_in_table_order(tmp_path: Path) -> None:
    frame = _versions([("p:A", "2026-01", "s1", "pathlink-encoding/3")]).assign(race="x")
    with StateStore(tmp_path / "state.duckdb") as state:
        state.store_records(frame)
        linked = state.latest_records("ab" * 16, exclude=("race", "tok_t4_ssn"))
        chosen = state.latest_records("ab" * 16, columns=["race", "period"], exclude=("race",))
    state.close()
    assert linked.columns.tolist() == [c for c in frame.columns
                                       if c not in ("race", "tok_t4_ssn")]
    assert chosen.columns.tolist() == ["record_key", "period"]
