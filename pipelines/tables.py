"""Load a pandas frame into a DuckDB table: the one way every module does it.

DuckDB reads a registered frame in place (no copy); the registration is removed again even
when the insert fails, so a connection never keeps a reference to restricted rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

_VIEW = "_frame_in"


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, *,
                 columns: Sequence[str] | None = None) -> None:
    """Insert every row of `frame` into `table`.

    Args:
        con: An open connection (inside the caller's transaction, if any).
        table: The target table (a fixed name from our own code, never user input).
        frame: The rows.
        columns: Frame columns to insert in the table's column order; by default the frame's
            columns are matched to the table's by name.
    """
    select = ", ".join(f'"{c}"' for c in columns) if columns is not None else None
    sql = (f"INSERT INTO {table} SELECT {select} FROM {_VIEW}" if select is not None  # noqa: S608
           else f"INSERT INTO {table} BY NAME SELECT * FROM {_VIEW}")  # noqa: S608
    con.register(_VIEW, frame)
    try:
        con.execute(sql)
    finally:
        con.unregister(_VIEW)


def create_table_from_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame,
                            *, replace: bool = False) -> None:
    """Create `table` (or replace it) with the columns and rows of `frame`."""
    verb = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE"
    con.register(_VIEW, frame)
    try:
        con.execute(f'{verb} "{table}" AS SELECT * FROM {_VIEW}')  # noqa: S608
    finally:
        con.unregister(_VIEW)
