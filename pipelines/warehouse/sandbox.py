"""The query sandbox: one SELECT over the released aggregates, bounded in time, memory,
threads and rows.

The rule is simple so that it cannot be wrong: the published file holds only ``released_*``
relations (aggregates; :mod:`pipelines.warehouse.tiers`), and the statement runs in a fresh
in-memory DuckDB that holds copies of exactly those relations and nothing else, with file
access, extension loading and Python replacement scans disabled and the configuration locked.
Whatever the statement names, it can only reach released figures; a name that is not a
released relation (a person-level table, a CTE used outside its scope such as
``SELECT * FROM (WITH person AS (SELECT 1) SELECT 1) t, person``) is refused by DuckDB's own
binder, which resolves names by scope. So no syntax-tree checker is needed; the parser only
checks that the text is exactly one SELECT statement.

Bounds: the statement runs in a child process (``python -m pipelines.warehouse.sandbox``) so
that a runaway statement cannot take the caller with it:

* threads: DuckDB's ``threads`` setting;
* memory: DuckDB's ``memory_limit`` plus the child's ``RLIMIT_DATA`` (the limit plus a fixed
  allowance for the interpreter), so allocations DuckDB does not track (a huge ``repeat()``
  or ``range()`` list) fail too, with DuckDB's out-of-memory error;
* time: the child interrupts the statement at the timeout; the parent kills the child a few
  seconds later if the statement does not stop (some operators do not check for interrupts);
* rows: at most ``max_rows`` rows are fetched; one more and the query is stopped.

Each ends in one line: :class:`QueryRejected` (not a single SELECT, a relation that is not
released, an error in the statement) or :class:`QueryStopped` (a limit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

RELEASED_PREFIX = "released_"
#: RLIMIT_DATA allowance for the child's interpreter, DuckDB and pyarrow (measured: ~200 MB).
INTERPRETER_MB = 320
#: Seconds the parent waits beyond the timeout (child start-up, copying the released
#: relations) before it kills the child.
KILL_GRACE_SECONDS = 5.0

EXIT_REJECTED, EXIT_STOPPED, EXIT_FAILED = 3, 4, 5


class QueryRejected(ValueError):
    """A statement the sandbox does not run: not one SELECT, or not over released data."""


class QueryStopped(RuntimeError):
    """A statement stopped by one of the sandbox's limits (time, memory, rows)."""


@dataclass(frozen=True)
class Limits:
    """The bounds of one query (``[query]`` in ``pathlink.toml``)."""

    timeout_seconds: float = 10.0
    memory_limit_mb: int = 512
    threads: int = 1
    max_rows: int = 10000


def check_statement(sql: str) -> None:
    """Raise :class:`QueryRejected` unless ``sql`` parses as exactly one SELECT statement."""
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRejected(f"the statement does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise QueryRejected(f"exactly one SELECT statement is allowed (got {len(statements)})")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryRejected(f"only SELECT statements are allowed (got {name})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_query(published_db: str | Path, sql: str, limits: Limits | None = None) -> pd.DataFrame:
    """Run one SELECT over the released relations of ``published_db`` within ``limits``.

    Raises:
        QueryRejected: Not a single SELECT, or it names something that is not released, or
            DuckDB refuses it.
        QueryStopped: It hit the time, memory or row limit.
    """
    import pyarrow.ipc

    limits = limits or Limits()
    check_statement(sql)
    request = json.dumps({"db": str(published_db), "sql": sql,
                          "limits": limits.__dict__}).encode("utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATHLINK_SECRET")}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.warehouse.sandbox"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(request, timeout=limits.timeout_seconds
                                    + KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise QueryStopped(_timeout_message(limits)) from None
    if proc.returncode == 0:
        reader = pyarrow.ipc.open_stream(out)
        return reader.read_all().to_pandas()
    message = err.decode("utf-8", "replace").strip().splitlines()
    line = message[-1] if message else ""
    if proc.returncode == EXIT_REJECTED:
        raise QueryRejected(line)
    if proc.returncode == EXIT_STOPPED:
        raise QueryStopped(line)
    if proc.returncode < 0:
        raise QueryStopped(f"query stopped: the sandbox process was killed by signal "
                           f"{-proc.returncode}, most likely at the memory limit of "
                           f"{limits.memory_limit_mb} MB ([query] memory_limit_mb)")
    raise QueryStopped(f"query failed: {line or f'sandbox exit code {proc.returncode}'}")


def _timeout_message(limits: Limits) -> str:
    return (f"query stopped: it ran longer than the statement timeout of "
            f"{limits.timeout_seconds:g} s ([query] timeout_seconds)")


# ---- the child process --------------------------------------------------------------------

def _released_copy(db_path: str, limits: Limits) -> Any:
    """A locked in-memory DuckDB holding copies of the released relations only."""
    import duckdb

    source = duckdb.connect(db_path, read_only=True)
    try:
        names = [r[0] for r in source.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND starts_with(table_name, ?) ORDER BY 1", [RELEASED_PREFIX]).fetchall()]
        tables = {n: source.execute(f'SELECT * FROM "{n}"').to_arrow_table()  # noqa: S608
                  for n in names}
    finally:
        source.close()
    sandbox = duckdb.connect(":memory:", config={
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
        "threads": limits.threads,
        "memory_limit": f"{limits.memory_limit_mb}MB",
        "max_temp_directory_size": "0B",
    })
    for name, table in tables.items():
        sandbox.register("__incoming", table)
        sandbox.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __incoming')  # noqa: S608
        sandbox.unregister("__incoming")
    sandbox.execute("SET lock_configuration = true")
    return sandbox


def _child(request: dict) -> int:
    import resource

    limits = Limits(**request["limits"])
    allowance = (limits.memory_limit_mb + INTERPRETER_MB) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (allowance, allowance))

    import threading

    import duckdb
    import pyarrow as pa
    import pyarrow.ipc

    def fail(code: int, message: str) -> int:
        sys.stderr.write(message.replace("\n", " ") + "\n")
        return code

    try:
        con = _released_copy(request["db"], limits)
    except duckdb.Error as exc:
        return fail(EXIT_FAILED, f"the published file cannot be read: {_first_line(exc)}")
    timer = threading.Timer(limits.timeout_seconds, con.interrupt)
    timer.start()
    try:
        result = con.execute(request["sql"])
        reader = result.to_arrow_reader(min(limits.max_rows + 1, 10000))
        batches, rows = [], 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > limits.max_rows:
                return fail(EXIT_STOPPED, f"query stopped: the result has more than "
                                          f"{limits.max_rows} rows ([query] max_rows); "
                                          "aggregate or add a LIMIT")
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.InterruptException:
        return fail(EXIT_STOPPED, _timeout_message(limits))
    except (duckdb.OutOfMemoryException, MemoryError):
        return fail(EXIT_STOPPED, f"query stopped: it needed more than the memory limit of "
                                  f"{limits.memory_limit_mb} MB ([query] memory_limit_mb)")
    except duckdb.CatalogException as exc:
        text = _first_line(exc)
        if "does not exist" in text and ("Table" in text or "table" in text):
            return fail(EXIT_REJECTED, f"{text.removeprefix('Catalog Error: ')} The query "
                                       f"sandbox holds only the released aggregates "
                                       f"({RELEASED_PREFIX}* relations; SHOW TABLES lists "
                                       "them).")
        return fail(EXIT_REJECTED, text)
    except duckdb.PermissionException:
        return fail(EXIT_REJECTED, "file and network access is disabled in the query sandbox")
    except duckdb.Error as exc:
        return fail(EXIT_REJECTED, _first_line(exc))
    finally:
        timer.cancel()
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    sys.stdout.buffer.write(sink.getvalue().to_pybytes())
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(json.loads(sys.stdin.buffer.read().decode("utf-8"))))
