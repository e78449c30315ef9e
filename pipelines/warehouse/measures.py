"""WIOA-style outcome measures over the evaluator warehouse (DuckDB SQL, tidy DataFrames).

The warehouse is ``schemas/warehouse.sql`` + ``schemas/warehouse_facts.sql`` (fact and
dimension tables) + ``schemas/warehouse_views.sql`` (person-level outcome views). This module
aggregates the views into one tidy frame per call; nothing here is suppressed: pass the result
to :mod:`pipelines.warehouse.disclosure` before anything leaves the analyst's machine.

Tidy columns: ``measure, dimension, group, period, numerator, denominator, value`` and, for
medians only, ``fuzzy_value`` (mean of the 45th and 55th percentiles). ``period`` is ``"all"``
or an exit quarter ``YYYYQn`` (by-exit-quarter rows exist for :data:`BY_PERIOD_DIMENSIONS`).
Definitions: ``docs/warehouse.md``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import duckdb
import pandas as pd

from pipelines.tables import insert_frame
from schemas import ddl

TIDY_COLUMNS = ["measure", "dimension", "group", "period", "numerator", "denominator", "value",
                "fuzzy_value"]
ALL = "all"
UNKNOWN = "unknown"

EPISODE_DIMENSIONS = ("overall", "partner", "program", "sector", "funding_stream")
PERSON_DIMENSIONS = ("race_ethnicity", "sex", "age_band", "barrier")
DIMENSIONS = EPISODE_DIMENSIONS + PERSON_DIMENSIONS
BY_PERIOD_DIMENSIONS = ("overall",)

RACE_CODES = ("american_indian_alaska_native", "asian", "black_african_american",
              "native_hawaiian_pacific_islander", "white")
AGE_BANDS = ((14, 17, "14-17"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"),
             (45, 54, "45-54"), (55, 200, "55+"))
BARRIER_FLAGS = ("returning_citizen", "homeless", "low_income", "english_learner",
                 "basic_skills_deficient", "single_parent", "foster_care")
FACT_TABLES = ("person_profile", "program", "enrollment", "service", "credential", "employment",
               "wage", "assessment", "skill_gain", "program_cost")


@dataclass(frozen=True)
class MeasureSpec:
    """How one measure is computed and how its cells relate for disclosure avoidance.

    Attributes:
        name: Measure name in the tidy frame.
        kind: ``rate`` (numerator / denominator), ``median`` (value over ``denominator`` units),
            ``count`` (``denominator`` units; internal counts such as those behind cost per
            outcome, :mod:`pipelines.warehouse.roi`).
        source: Person-level view the units come from.
        flag: SQL boolean expression for the numerator (rates).
        value: SQL numeric expression (medians).
        where: SQL filter defining the denominator population.
        unit: ``episode`` (enrollment / exit rows) or ``person`` (distinct persons).
        family: Measures whose cells are suppressed together (shared populations).
        by_period: Whether by-exit-quarter rows are produced.
        additive_dimensions: Dimensions whose groups partition the units, so group cells add up
            to the overall cell (used for complementary suppression and the attack audit).
        title: Human title for reports.
        description: Definition, one sentence.
    """

    name: str
    kind: str
    source: str
    flag: str = "NULL"
    value: str = "NULL"
    where: str = "true"
    unit: str = "episode"
    family: str = ""
    by_period: bool = False
    additive_dimensions: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = DIMENSIONS
    title: str = ""
    description: str = ""


_EPISODE_ADDITIVE = ("overall", "partner", "program", "sector", "funding_stream",
                     "race_ethnicity", "sex", "age_band")
_PERSON_ADDITIVE = ("overall", "race_ethnicity", "sex", "age_band")

MEASURES: dict[str, MeasureSpec] = {
    spec.name: spec
    for spec in (
        MeasureSpec(
            "employment_q2", "rate", "outcome_exit", flag="employed_q2", family="exit",
            by_period=True, additive_dimensions=_EPISODE_ADDITIVE,
            title="Employment rate, 2nd quarter after exit",
            description="Cohort exits with any UI wage record > 0 in the 2nd quarter after the "
                        "exit quarter / cohort exits."),
        MeasureSpec(
            "employment_q4", "rate", "outcome_exit", flag="employed_q4", family="exit",
            by_period=True, additive_dimensions=_EPISODE_ADDITIVE,
            title="Employment rate, 4th quarter after exit",
            description="Cohort exits with any UI wage record > 0 in the 4th quarter after the "
                        "exit quarter / cohort exits."),
        MeasureSpec(
            "median_earnings_q2", "median", "outcome_exit", value="earnings_q2",
            where="employed_q2", family="exit", by_period=True,
            additive_dimensions=_EPISODE_ADDITIVE,
            title="Median earnings, 2nd quarter after exit",
            description="Median of total UI wages in the 2nd quarter after exit among cohort "
                        "exits employed in that quarter (released as a fuzzy median)."),
        MeasureSpec(
            "retention_q2_q4", "rate", "outcome_exit", flag="retained_same_employer",
            where="employed_q2", family="exit", by_period=True,
            additive_dimensions=_EPISODE_ADDITIVE,
            title="Retention with the same employer, 2nd to 4th quarter",
            description="Cohort exits employed in Q2 with an employer_key having wages > 0 in "
                        "both Q2 and Q4 / cohort exits employed in Q2."),
        MeasureSpec(
            "credential_attainment", "rate", "outcome_exit", flag="credential_within_year",
            where="in_education_or_training", family="credential", by_period=True,
            additive_dimensions=_EPISODE_ADDITIVE,
            title="Credential attainment within one year after exit",
            description="Cohort exits in education or training with a credential attained "
                        "between entry and 12 months after exit / cohort exits in education "
                        "or training."),
        MeasureSpec(
            "measurable_skill_gains", "rate", "outcome_skill_gain", flag="skill_gain",
            family="msg", additive_dimensions=_EPISODE_ADDITIVE,
            title="Measurable skill gains",
            description="Enrollments in education or training with a skill gain at the same "
                        "partner during the enrollment / enrollments in education or "
                        "training."),
        MeasureSpec(
            "supportive_services", "rate", "outcome_service", flag="supportive_service",
            family="services", additive_dimensions=_EPISODE_ADDITIVE,
            title="Enrollments receiving supportive services",
            description="Enrollments with at least one supportive service (type "
                        "supportive_service or a detailed supportive type) from the enrolling "
                        "partner during the enrollment / enrollments."),
        MeasureSpec(
            "services_by_type", "rate", "outcome_service", family="services",
            dimensions=("service_type",), additive_dimensions=(),
            title="Services received by type",
            description="Enrollments with at least one service of the type from the enrolling "
                        "partner during the enrollment / enrollments (types overlap)."),
        MeasureSpec(
            "co_enrollment", "rate", "outcome_coenrollment", flag="co_enrolled",
            unit="person", family="coenrollment", additive_dimensions=_PERSON_ADDITIVE,
            title="Persons enrolled at two or more partners",
            description="Persons with enrollments at 2+ partners / persons with any "
                        "enrollment (partner, program, sector, funding stream groups: persons "
                        "with an enrollment there; groups overlap)."),
    )
}


# ---- schema -------------------------------------------------------------------------------

def create_warehouse_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Create the fact and dimension tables (after ``schemas/warehouse.sql``)."""
    con.execute(ddl("warehouse_facts"))


def create_warehouse_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the outcome views and period macros."""
    con.execute(ddl("warehouse_views"))


@contextlib.contextmanager
def views_materialized(con: duckdb.DuckDBPyConnection) -> Iterator[list[str]]:
    """Inside the block, each derived view of the warehouse is read from a snapshot of itself.

    Every measure, signature and disclosure query goes through the same stack of views
    (`outcome_exit` over `exit_cohort` over `person_quarter` ...), and DuckDB plans and runs
    that stack again for each of them: on a small month most of a release's time was planning
    (about 20 ms a query, dozens of queries). Here each view (not the `released_*` ones) is
    computed once, in the order the DDL created it, into a temporary table of the same name,
    which DuckDB reads before the view (the temporary schema comes first in its search path,
    also for the views built on it). Same rows, as the base tables do not change inside the
    block; the temporary tables are dropped at its end and never reach the file.

    Yields:
        The names of the views snapshotted.
    """
    names = [name for (name,) in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main' "
        "AND database_name = current_database() AND view_name NOT LIKE 'released\\_%' "
        "ESCAPE '\\' ORDER BY view_oid").fetchall()]
    made: list[str] = []
    try:
        for name in names:
            con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM main."{name}"')  # noqa: S608
            made.append(name)
        yield names
    finally:
        for name in reversed(made):
            con.execute(f'DROP TABLE IF EXISTS temp."{name}"')


def load_facts(con: duckdb.DuckDBPyConnection, frames: Mapping[str, pd.DataFrame]) -> dict:
    """Insert de-identified fact frames by column name (tables from :data:`FACT_TABLES`).

    Returns:
        Rows inserted per table.
    """
    counts = {}
    for table, frame in frames.items():
        if table not in FACT_TABLES:
            raise ValueError(f"unknown warehouse fact table {table!r}")
        insert_frame(con, table, frame)
        counts[table] = len(frame)
    return counts


# ---- small helpers for building facts ----------------------------------------------------

def month_of(value: str | dt.date | None) -> str | None:
    """``'YYYY-MM'`` from an ISO date/month string or a date (None stays None)."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return None
    if isinstance(value, dt.date):
        return f"{value.year:04d}-{value.month:02d}"
    text = str(value)
    return text[:7]


def quarter_of(month: str | None) -> str | None:
    """``'YYYYQn'`` of a ``'YYYY-MM'`` month."""
    if not month:
        return None
    return f"{month[:4]}Q{(int(month[5:7]) - 1) // 3 + 1}"


def race_category(codes: str | Iterable[str] | None) -> str | None:
    """WIOA race category from ';'-separated contract codes (two or more -> two_or_more_races)."""
    if codes is None or (isinstance(codes, float) and pd.isna(codes)):
        return None
    items = codes.split(";") if isinstance(codes, str) else list(codes)
    found = sorted({c.strip() for c in items if c and c.strip() in RACE_CODES})
    if not found:
        return None
    return found[0] if len(found) == 1 else "two_or_more_races"


def age_band(age: int | None) -> str | None:
    """Reporting age band for an age at first entry (None below 14 or unknown)."""
    if age is None or pd.isna(age):
        return None
    for low, high, label in AGE_BANDS:
        if low <= int(age) <= high:
            return label
    return None


# ---- measures -----------------------------------------------------------------------------

def _unit_sql(spec: MeasureSpec) -> str:
    period = "exit_quarter" if spec.by_period else "NULL"
    key = "person_id" if spec.unit == "person" else "enrollment_key"
    return (
        f"SELECT person_id, partner_id, program_id, sector, funding_stream, "  # noqa: S608
        f"{period} AS period, ({spec.flag}) AS num, ({spec.value}) AS val, {key} AS unit_key "
        f"FROM {spec.source} WHERE {spec.where}"
    )


def _groups_cte(spec: MeasureSpec, dimensions: tuple[str, ...]) -> str:
    """``WITH u AS (units), g AS (one row per unit and group it falls in)``."""
    parts = []
    for dim in dimensions:
        if dim == "overall":
            parts.append(f"SELECT 'overall' AS dimension, '{ALL}' AS grp, u.* FROM u")  # noqa: S608
        elif dim in EPISODE_DIMENSIONS:
            column = "program_id" if dim == "program" else (
                "partner_id" if dim == "partner" else dim)
            parts.append(f"SELECT '{dim}', coalesce(u.{column}, '{UNKNOWN}'), u.* FROM u")  # noqa: S608
        elif dim in PERSON_DIMENSIONS:
            parts.append(
                f"SELECT '{dim}', coalesce(pg.grp, '{UNKNOWN}'), u.* FROM u "  # noqa: S608
                f"LEFT JOIN person_group AS pg ON pg.person_id = u.person_id "
                f"AND pg.dimension = '{dim}'"
            )
    return f"WITH u AS ({_unit_sql(spec)}), g AS ({' UNION ALL '.join(parts)}) "


def _grouped_sql(spec: MeasureSpec, dimensions: tuple[str, ...]) -> str:
    if spec.unit == "person":
        num = "count(DISTINCT person_id) FILTER (WHERE num)"
        den = "count(DISTINCT person_id)"
    else:
        num = "count(*) FILTER (WHERE num)"
        den = "count(*)"
    if spec.kind == "count":
        aggs = (f"NULL::BIGINT AS numerator, {den} AS denominator, {den}::DOUBLE AS value, "
                "NULL::DOUBLE AS fuzzy_value")
    elif spec.kind == "median":
        aggs = ("NULL::BIGINT AS numerator, count(val) AS denominator, "
                "median(val)::DOUBLE AS value, "
                "((quantile_cont(val, 0.45) + quantile_cont(val, 0.55)) / 2)::DOUBLE "
                "AS fuzzy_value")
    else:
        aggs = (f"{num} AS numerator, {den} AS denominator, "
                f"{num} / nullif({den}, 0) AS value, NULL::DOUBLE AS fuzzy_value")
    by_period = [d for d in dimensions if d in BY_PERIOD_DIMENSIONS] if spec.by_period else []
    period_filter = (
        "GROUPING(period) = 1 OR (period IS NOT NULL AND dimension IN ("
        + ", ".join(f"'{d}'" for d in by_period) + "))"
        if by_period else "GROUPING(period) = 1"
    )
    return (
        f"{_groups_cte(spec, dimensions)}"  # noqa: S608
        f"SELECT '{spec.name}' AS measure, dimension, grp AS \"group\", "
        f"CASE WHEN GROUPING(period) = 1 THEN '{ALL}' ELSE period END AS period, {aggs} "
        f"FROM g GROUP BY GROUPING SETS ((dimension, grp), (dimension, grp, period)) "
        f"HAVING {period_filter}"
    )


def _service_type_sql(spec: MeasureSpec) -> str:
    return (
        f"WITH total AS (SELECT count(*) AS n FROM outcome_service), "  # noqa: S608
        f"types AS (SELECT service_type, count(DISTINCT enrollment_key) AS k "
        f"FROM enrollment_service GROUP BY service_type) "
        f"SELECT '{spec.name}' AS measure, 'service_type' AS dimension, "
        f"service_type AS \"group\", '{ALL}' AS period, k AS numerator, n AS denominator, "
        f"k / nullif(n, 0) AS value, NULL::DOUBLE AS fuzzy_value FROM types, total"
    )


def _complete_groups(frame: pd.DataFrame,
                     specs: Mapping[str, MeasureSpec] = MEASURES) -> pd.DataFrame:
    """Add zero cells for groups seen elsewhere in the same dimension (no silent zeros)."""
    if frame.empty:
        return frame
    domains = frame.groupby("dimension")["group"].unique()
    rows = []
    for (measure, dimension, period), cells in frame.groupby(
            ["measure", "dimension", "period"], sort=False):
        if dimension == "service_type" and measure != "services_by_type":
            continue
        missing = set(domains[dimension]) - set(cells["group"])
        spec = specs.get(measure)
        for group in sorted(missing):
            rows.append({"measure": measure, "dimension": dimension, "group": group,
                         "period": period,
                         "numerator": pd.NA if spec and spec.kind in ("median", "count")
                         else 0,
                         "denominator": 0, "value": None, "fuzzy_value": None})
    if rows:
        extra = pd.DataFrame(rows).astype({"value": "float64", "fuzzy_value": "float64"})
        frame = pd.concat([frame.astype({"value": "float64", "fuzzy_value": "float64"}),
                           extra], ignore_index=True)
    return frame


def compute_measures(
    con: duckdb.DuckDBPyConnection,
    measures: Iterable[str] | None = None,
    dimensions: Iterable[str] = DIMENSIONS,
    specs: Mapping[str, MeasureSpec] = MEASURES,
) -> pd.DataFrame:
    """Every measure by every dimension (and overall by exit quarter), unsuppressed.

    Args:
        con: Connection to a warehouse with facts loaded and views created.
        measures: Measure names (default: all of ``specs``).
        dimensions: Dimensions to group by (``overall`` is always included).
        specs: The measure definitions (default :data:`MEASURES`; the release adds the
            earnings-change measures of :mod:`pipelines.warehouse.roi`).

    Returns:
        Tidy frame with :data:`TIDY_COLUMNS`, sorted.
    """
    wanted_dims = tuple(dict.fromkeys(("overall", *dimensions)))
    frames = []
    for name in measures or specs:
        spec = specs[name]
        if spec.dimensions == ("service_type",):
            sql = _service_type_sql(spec)
        else:
            dims = tuple(d for d in wanted_dims if d in spec.dimensions)
            sql = _grouped_sql(spec, dims)
        frames.append(con.execute(sql).df())
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=TIDY_COLUMNS)
    tidy = _complete_groups(tidy, specs)
    tidy["numerator"] = pd.array(tidy["numerator"], dtype="Int64")
    tidy["denominator"] = pd.array(tidy["denominator"], dtype="Int64")
    tidy["value"] = pd.to_numeric(tidy["value"]).astype("float64")
    tidy["fuzzy_value"] = pd.to_numeric(tidy["fuzzy_value"]).astype("float64")
    order = {name: i for i, name in enumerate(specs)}
    dim_order = {name: i for i, name in enumerate((*DIMENSIONS, "service_type"))}
    tidy = tidy.assign(
        _m=tidy["measure"].map(order), _d=tidy["dimension"].map(dim_order),
        _p=tidy["period"].ne(ALL),
    ).sort_values(["_m", "_d", "_p", "period", "group"], kind="stable")
    return tidy.drop(columns=["_m", "_d", "_p"])[TIDY_COLUMNS].reset_index(drop=True)


def _spec_dimensions(spec: MeasureSpec, dimensions: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(("overall", *dimensions)))
    return tuple(d for d in wanted if d in spec.dimensions)


def unit_rows(con: duckdb.DuckDBPyConnection, measure: str,
              dimensions: Iterable[str] = DIMENSIONS,
              specs: Mapping[str, MeasureSpec] = MEASURES) -> pd.DataFrame:
    """One row per unit (exit, enrollment, person) and group it counts in: ``dimension,
    group, period`` (the exit quarter, NULL when the measure has no periods), ``person_id``,
    ``unit_key``, ``num`` (the numerator flag), ``val`` (the median's value). Person-level:
    for differential privacy (:mod:`pipelines.warehouse.dp`), never for release. Not for
    ``services_by_type``."""
    spec = specs[measure]
    if spec.dimensions == ("service_type",):
        raise ValueError("unit_rows does not cover services_by_type")
    sql = (f"{_groups_cte(spec, _spec_dimensions(spec, dimensions))}"  # noqa: S608
           f"SELECT dimension, grp AS \"group\", period, person_id, unit_key, num, val FROM g")
    return con.execute(sql).df()


def cell_signatures(con: duckdb.DuckDBPyConnection,
                    dimensions: Iterable[str] = DIMENSIONS,
                    specs: Mapping[str, MeasureSpec] = MEASURES) -> pd.DataFrame:
    """``measure, dimension, group, period, signature``: a fingerprint of each cell's units
    (count and sum of unit-key hashes). Two cells of a measure with the same signature hold the
    same units (a partner whose only program is that program), so the same figure: disclosure
    suppresses them together. Internal; never released."""
    frames = []
    for name, spec in specs.items():
        if spec.dimensions == ("service_type",):
            continue
        units = "count(DISTINCT unit_key)" if spec.unit == "person" else "count(unit_key)"
        total = ("sum(DISTINCT hash(unit_key)::HUGEINT)" if spec.unit == "person"
                 else "sum(hash(unit_key)::HUGEINT)")
        if spec.kind == "median":
            units, total = f"{units} FILTER (WHERE val IS NOT NULL)", \
                f"{total} FILTER (WHERE val IS NOT NULL)"
        by_period = spec.by_period and "overall" in BY_PERIOD_DIMENSIONS
        sql = (f"{_groups_cte(spec, _spec_dimensions(spec, dimensions))}"  # noqa: S608
               f"SELECT '{name}' AS measure, dimension, grp AS \"group\", "
               f"CASE WHEN GROUPING(period) = 1 THEN '{ALL}' ELSE period END AS period, "
               f"{units}::VARCHAR || ':' || coalesce({total}, 0)::VARCHAR AS signature "
               f"FROM g GROUP BY GROUPING SETS ((dimension, grp), (dimension, grp, period)) "
               f"HAVING GROUPING(period) = 1 OR (period IS NOT NULL AND dimension = 'overall' "
               f"AND {str(by_period).lower()})")
        frames.append(con.execute(sql).df())
    if not frames:
        return pd.DataFrame(columns=["measure", "dimension", "group", "period", "signature"])
    return pd.concat(frames, ignore_index=True)


def coenrollment_pairs(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Persons enrolled at both partners, for every partner pair (a <= b; a == b: caseload).

    Returns:
        Columns ``partner_a, partner_b, persons`` on the full upper-triangular grid of partners
        seen in ``enrollment`` (zero where nobody is shared).
    """
    return con.execute(
        """
        WITH partners AS (SELECT DISTINCT partner_id FROM enrollment)
        SELECT a.partner_id AS partner_a, b.partner_id AS partner_b,
               coalesce(cp.persons, 0)::BIGINT AS persons
        FROM partners AS a JOIN partners AS b ON a.partner_id <= b.partner_id
        LEFT JOIN coenrollment_pair AS cp
          ON cp.partner_a = a.partner_id AND cp.partner_b = b.partner_id
        ORDER BY 1, 2
        """
    ).df()
