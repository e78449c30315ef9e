"""A release's published content in a canonical form, and the golden file it is compared with.

Person IDs are random, so each is replaced by a label derived from the records it held: the
sorted ``period/record_key`` pairs of every crosswalk snapshot that gave it that record (one
person per record and period, so the label is unique to the person), hashed to 16 hex digits.
Per-run metadata (``run_id``, ``recorded_at``, ``published_at``) is dropped. Every other cell is
kept as ``<type>:<repr>``, so a changed type, value or float bit shows as a difference.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import duckdb

RUN_METADATA = frozenset({"run_id", "recorded_at", "published_at"})


def drops_digest(landing: Path) -> str:
    """sha256 over every landing file's relative path and bytes (what the release is made of)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        digest.update(path.relative_to(landing).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def person_labels(state_db: Path) -> dict[str, str]:
    """person_id -> a label made of every (period, record_key) it held, from the snapshots."""
    con = duckdb.connect(str(state_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT person_id, list_sort(list(DISTINCT period || '/' || record_key)) "
            "FROM crosswalk_snapshots GROUP BY person_id").fetchall()
    finally:
        con.close()
    return {pid: "P" + hashlib.sha256("\n".join(held).encode()).hexdigest()[:16]
            for pid, held in rows}


def _cell(value: object) -> str:
    return f"{type(value).__name__}:{value!r}"


def canonical_content(published_db: Path, state_db: Path,
                      warehouse_db: Path | None = None) -> dict[str, dict[str, list]]:
    """Every table and view of the analyst warehouse (under its own name) and of the
    published file (as ``published/<name>``): column names and canonical, sorted rows."""
    labels = person_labels(state_db)
    out = {} if warehouse_db is None else _canonical_file(warehouse_db, labels)
    for name, content in _canonical_file(published_db, labels).items():
        out[f"published/{name}"] = content
    return out


def _canonical_file(path: Path, labels: dict[str, str]) -> dict[str, dict[str, list]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        out: dict[str, dict[str, list]] = {}
        for name in names:
            cursor = con.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cursor.description]
            keep = [i for i, c in enumerate(columns) if c not in RUN_METADATA]
            rows = []
            for row in cursor.fetchall():
                rows.append([
                    _cell(labels.get(row[i], f"UNLABELLED:{row[i]}") if row[i] is not None
                          else None) if "person_id" in columns[i] else _cell(row[i])
                    for i in keep])
            rows.sort(key=lambda r: json.dumps(r))
            out[name] = {"columns": [columns[i] for i in keep], "rows": rows}
        return out
    finally:
        con.close()


def write_golden(path: Path, drops: str, content: dict[str, dict[str, list]]) -> None:
    """Store the canonical content (gzip, stable bytes: sorted keys, no timestamp)."""
    text = json.dumps({"drops_sha256": drops, "tables": content}, sort_keys=True, indent=0)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text.encode("utf-8"))


def read_golden(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def differences(expected: dict[str, dict[str, list]], actual: dict[str, dict[str, list]],
                limit: int = 20) -> list[str]:
    """Human-readable differences, table by table and cell by cell (at most `limit`)."""
    out: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual or name not in expected:
            out.append(f"{name}: only in the {'golden' if name in expected else 'new'} release")
            continue
        want, got = expected[name], actual[name]
        if want["columns"] != got["columns"]:
            out.append(f"{name}: columns {want['columns']} != {got['columns']}")
            continue
        if len(want["rows"]) != len(got["rows"]):
            out.append(f"{name}: {len(want['rows'])} rows in the golden release, "
                       f"{len(got['rows'])} now")
        for index, (a, b) in enumerate(zip(want["rows"], got["rows"], strict=False)):
            for column, x, y in zip(want["columns"], a, b, strict=True):
                if x != y:
                    out.append(f"{name} row {index} {column}: {x} != {y}")
                    if len(out) >= limit:
                        return out
    return out
