"""The release tiers: the analyst's warehouse in state/, aggregates only in published/.

* ``state/warehouse.duckdb`` (analyst only): the person-level warehouse (``person``,
  ``participation``, facts, outcome views) the figures are computed from, plus the released
  relations, so the analyst can check one against the other.
* ``published/pathlink.duckdb`` (evaluators, the public): **only** ``released_*`` relations,
  each an aggregate or a description (measures, pair counts, partners and what they sent,
  programs, coverage, the release's provenance and rules). Nothing person-level: no relation
  has a row per person, exit, enrollment, wage or event. The query sandbox copies every
  relation of this file, so the rule "the file holds only released aggregates" is also the
  sandbox's whole access rule (:mod:`pipelines.warehouse.sandbox`).
* ``research/<agreement>/`` : person-level extracts under an agreement
  (:mod:`pipelines.warehouse.research`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.faults import crash_point

RELEASED_PREFIX = "released_"
#: Column names that would make a relation person-level; none may appear in published/.
PERSON_LEVEL_COLUMNS = frozenset({
    "person_id", "research_id", "record_key", "partner_record_id", "enrollment_key",
    "birth_year", "zip3", "employer_key", "wages", "earnings", "entry_month", "exit_month",
})


def _quarter_label(qi: int | None) -> str | None:
    if qi is None or pd.isna(qi):
        return None
    qi = int(qi)
    return f"{qi // 4}Q{qi % 4 + 1}"


def _month_label(mi: int | None) -> str | None:
    if mi is None or pd.isna(mi):
        return None
    mi = int(mi)
    return f"{mi // 12:04d}-{mi % 12 + 1:02d}"


def coverage_frame(con: duckdb.DuckDBPyConnection, periods: list[str]) -> pd.DataFrame:
    """What the release covers: drop periods, wage quarters, partner data months and the exit
    window of the outcome cohort (the same conditions as the ``exit_cohort`` view).

    An exit is in the cohort when its quarter is between ``cohort_exit_from_quarter`` and
    ``cohort_exit_through_quarter`` and its month is not after ``cohort_exit_through_month``.
    """
    wage_first, wage_last, through = con.execute(
        "SELECT wage_first_qi, wage_last_qi, pl_month_index(partner_data_through_month) "
        "FROM coverage").fetchall()[0]
    cohort_exits, exits_reported = con.execute(
        "SELECT (SELECT count(*) FROM exit_cohort), "
        "(SELECT count(*) FROM enrollment WHERE exit_month IS NOT NULL)").fetchall()[0]
    exit_from_qi = None if wage_first is None else int(wage_first) - 2
    exit_through_qi = None if wage_last is None else int(wage_last) - 4
    exit_through_mi = None if through is None else int(through) - 12
    if exit_through_qi is not None and exit_through_mi is not None:
        exit_through_qi = min(exit_through_qi, exit_through_mi // 3)
    return pd.DataFrame([{
        "periods_first": min(periods) if periods else None,
        "periods_last": max(periods) if periods else None,
        "periods": ",".join(sorted(periods)),
        "wage_first_quarter": _quarter_label(wage_first),
        "wage_last_quarter": _quarter_label(wage_last),
        "partner_data_through_month": _month_label(through),
        "cohort_exit_from_quarter": _quarter_label(exit_from_qi),
        "cohort_exit_through_quarter": _quarter_label(exit_through_qi),
        "cohort_exit_through_month": _month_label(exit_through_mi),
        # whether there is anything to measure, never how much (the counts are in
        # released_measures, suppressed when small)
        "exits_reported": "some" if exits_reported else "none",
        "cohort_exits": "some" if cohort_exits else "none",
    }])


def metadata_tables(con: duckdb.DuckDBPyConnection, *, partners: Mapping[str, str],
                    datasets_sent: pd.DataFrame, periods: list[str]) -> dict[str, pd.DataFrame]:
    """The descriptive released relations: partners, data sent, programs, coverage, release.

    Args:
        con: The analyst warehouse (``program``, ``release`` and the ``coverage`` view).
        partners: partner_id -> display name.
        datasets_sent: partner_id, dataset, first_period, last_period, periods (accepted
            files only; from the state's file ledger).
        periods: The drop periods this release was made from.
    """
    programs = con.execute(
        "SELECT program_id, partner_id, program_name, funding_stream, sector FROM program "
        "ORDER BY program_id").df()
    release = con.execute("SELECT * FROM release").df()
    sent = datasets_sent.reindex(columns=["partner_id", "dataset", "first_period",
                                          "last_period", "periods"])
    return {
        "released_partners": pd.DataFrame(sorted(partners.items()),
                                          columns=["partner_id", "partner_name"]),
        "released_data_sent": sent.sort_values(["partner_id", "dataset"])
        .reset_index(drop=True).astype({"periods": "Int64"}),
        "released_programs": programs,
        "released_coverage": coverage_frame(con, periods),
        "released_release": release,
    }


def released_names(con: duckdb.DuckDBPyConnection,
                   catalog: str | None = None) -> list[tuple[str, str]]:
    """(name, 'BASE TABLE' | 'VIEW') of every ``released_*`` relation in the main schema of
    ``catalog`` (default: the connection's current database), tables first."""
    catalog = catalog or con.execute("SELECT current_database()").fetchall()[0][0]
    return [(r[0], r[1]) for r in con.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = ? AND table_schema = 'main' AND starts_with(table_name, ?) "
        "ORDER BY table_type, table_name", [catalog, RELEASED_PREFIX]).fetchall()]


def person_level_columns(con: duckdb.DuckDBPyConnection,
                         catalog: str | None = None) -> dict[str, list[str]]:
    """relation -> its columns that are person-level by name (must be empty in published/)."""
    catalog = catalog or con.execute("SELECT current_database()").fetchall()[0][0]
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'main' ORDER BY 1, ordinal_position",
        [catalog]).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        if column in PERSON_LEVEL_COLUMNS:
            out.setdefault(table, []).append(column)
    return out


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(tmp: Path, target: Path) -> None:
    """fsync ``tmp``, rename it over ``target`` and fsync the folder."""
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync(target.parent)


def write_published(warehouse_db: Path, target: Path, run_id: str) -> dict[str, int]:
    """Copy the ``released_*`` relations of the analyst warehouse into a new published file
    and swap it in atomically (tables stay tables, views are recreated as views).

    Raises:
        ValueError: A released relation has a person-level column.

    Returns:
        Rows per published relation.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{run_id}.tmp")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    out = duckdb.connect(str(tmp))
    try:
        quoted = str(warehouse_db).replace("'", "''")
        out.execute(f"ATTACH '{quoted}' AS analyst (READ_ONLY)")
        names = released_names(out, "analyst")
        leaking = {n: c for n, c in person_level_columns(out, "analyst").items()
                   if n in {name for name, _ in names}}
        if leaking:
            raise ValueError(f"released relations with person-level columns: {leaking}")
        for name, kind in names:
            if kind == "VIEW":
                sql = out.execute(
                    "SELECT sql FROM duckdb_views() WHERE database_name = 'analyst' "
                    "AND schema_name = 'main' AND view_name = ?", [name]).fetchall()[0][0]
                out.execute(sql)
            else:
                out.execute(f'CREATE TABLE "{name}" AS '  # noqa: S608
                            f'SELECT * FROM analyst.main."{name}"')
            counts[name] = int(out.execute(
                f'SELECT count(*) FROM "{name}"').fetchall()[0][0])  # noqa: S608
        out.execute("DETACH analyst")
        out.execute("CHECKPOINT")
    finally:
        out.close()
    crash_point("publish:before-replace")
    replace_atomically(tmp, target)
    return counts
