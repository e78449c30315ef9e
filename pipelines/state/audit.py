"""The access audit log: one line per query, export and extract, append-only, in state/.

Each entry records when, which agreement (and its grantee), what was done, the SHA-256 of the
SQL (never the SQL text, which may quote values), how many rows went out and how it ended;
never a result value. Lines are JSON, appended with ``O_APPEND`` under an exclusive ``flock``
(so concurrent `pathlink query` processes never interleave), and each line carries the SHA-256
of the line before it, so a removed or edited line breaks the chain (:func:`verify_chain`).
The log is not in ``state.duckdb`` because a query must be logged while a run holds the
state's writer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ACTIONS = ("query", "export", "extract")
OUTCOMES = ("ok", "refused", "stopped", "failed")
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """One access, as logged. ``detail`` is our own one-line message (it never holds a value
    from the data or the SQL text)."""

    at: str
    action: str
    agreement: str
    grantee: str
    sql_sha256: str | None
    rows: int | None
    outcome: str
    detail: str = ""
    prev_sha256: str = GENESIS


def sql_hash(sql: str) -> str:
    """SHA-256 of the statement text as submitted (UTF-8)."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.rstrip("\n").encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _last_line(fd: int) -> str | None:
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    chunk = min(size, 65536)
    data = os.pread(fd, chunk, size - chunk).decode("utf-8")
    lines = [line for line in data.splitlines() if line.strip()]
    return lines[-1] if lines else None


def append(path: Path, *, action: str, agreement: str, grantee: str, sql: str | None,
           rows: int | None, outcome: str, detail: str = "",
           at: dt.datetime | None = None) -> AuditEntry:
    """Append one entry to the log at ``path`` and return it."""
    if action not in ACTIONS or outcome not in OUTCOMES:
        raise ValueError(f"unknown audit action/outcome {action!r}/{outcome!r}")
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    with _locked(path) as fd:
        last = _last_line(fd)
        entry = AuditEntry(
            at=when.isoformat(timespec="seconds").replace("+00:00", "Z"), action=action,
            agreement=agreement, grantee=grantee,
            sql_sha256=sql_hash(sql) if sql is not None else None,
            rows=None if rows is None else int(rows), outcome=outcome,
            detail=" ".join(detail.split())[:300],
            prev_sha256=_line_hash(last) if last else GENESIS)
        line = json.dumps(asdict(entry), sort_keys=True) + "\n"
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    return entry


def read(path: Path) -> list[AuditEntry]:
    """Every entry, oldest first (an empty list when nothing was logged yet)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entries.append(AuditEntry(**json.loads(line)))
    return entries


def verify_chain(path: Path) -> int | None:
    """The 1-based number of the first line whose ``prev_sha256`` does not match the line
    before it (a line removed, edited or inserted), or None when the chain is whole."""
    if not path.exists():
        return None
    previous = GENESIS
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if json.loads(line).get("prev_sha256") != previous:
            return number
        previous = _line_hash(line)
    return None
