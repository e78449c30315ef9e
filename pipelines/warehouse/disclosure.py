"""Disclosure avoidance for the evaluator warehouse: suppression, release, restricted queries.

Rules (thresholds are parameters; the default comes from ``[thresholds] small_cell`` in the
workspace's ``pathlink.toml``, 10 when absent):

1. Primary suppression. A rate cell is suppressed when its numerator or its denominator is
   under the threshold, or (``protect_complement``) when denominator - numerator is under it,
   or when the rate is exactly 0% or 100%. A median cell is suppressed when n is under the
   threshold. A count cell (co-enrollment pairs) when the count is under the threshold
   (zeros included).
2. Linked cells. Measures of one family share populations (e.g. the number employed in Q2 is
   both the numerator of ``employment_q2`` and the n of ``median_earnings_q2``), so a cell
   (dimension, group, period) suppressed in one measure of a family is suppressed in all.
3. Complementary suppression. Along every additive line (the groups of one dimension plus the
   overall cell they add up to; an exit-quarter series plus its all-quarters cell; one partner's
   row of the partner x partner matrix), a single suppressed cell could be recovered by
   subtraction, so the next-smallest published cell is suppressed too. Repeated until stable.
4. Audit. A linear-algebra attack (is a suppressed cell's unit vector in the row space of the
   published sums?) runs on each measure; any cell it can solve forces one more suppression.
5. Display. Released rates are rounded to 3 decimals and shown as whole percents; a rate that
   would show as 0% or 100% after rounding is shown as "<1%" / ">99%" with value NULL. Medians
   are released only as the fuzzy median (mean of the 45th and 55th percentiles), rounded to
   $10, and only when n >= threshold.

``released_*`` relations written by :func:`write_released` hold only these figures.
:func:`query_released` answers ``pathlink query "SQL"``: one SELECT over ``released_*`` only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from pipelines.tables import create_table_from_frame
from pipelines.warehouse.measures import (
    ALL,
    MEASURES,
    MeasureSpec,
    coenrollment_pairs,
    compute_measures,
)

DEFAULT_SMALL_CELL = 10
RELEASED_PREFIX = "released_"
SUPPRESSED = "suppressed"

Key = tuple[str, str, str]  # (dimension, group, period)


class QueryRejected(ValueError):
    """A `pathlink query` statement that is not a plain SELECT over released_* relations."""


# ---- threshold ----------------------------------------------------------------------------

def small_cell_threshold(workspace_root: str | Path | None = None) -> int:
    """``[thresholds] small_cell`` from the workspace config (10 without a workspace)."""
    if workspace_root is None:
        return DEFAULT_SMALL_CELL
    from pipelines.workspace import load_workspace

    return int(load_workspace(workspace_root).small_cell_threshold)


# ---- lines (additive relations between published cells) ----------------------------------

@dataclass(frozen=True)
class Line:
    """Cells whose parts add up to ``total`` (``total`` may be None when not published)."""

    parts: tuple[Key, ...]
    total: Key | None

    @property
    def cells(self) -> tuple[Key, ...]:
        return (*self.parts, self.total) if self.total is not None else self.parts


def measure_lines(rows: pd.DataFrame, spec: MeasureSpec) -> list[Line]:
    """Additive lines of one measure's cells (rows of one measure of the tidy frame)."""
    keys = set(zip(rows["dimension"], rows["group"], rows["period"], strict=True))
    lines: list[Line] = []
    for dimension in sorted(set(rows["dimension"])):
        sub = rows[rows["dimension"] == dimension]
        if dimension != "overall" and dimension in spec.additive_dimensions:
            for period in sorted(set(sub["period"])):
                parts = tuple(sorted((dimension, g, period)
                                     for g in sub.loc[sub["period"] == period, "group"]))
                total = ("overall", ALL, period)
                lines.append(Line(parts, total if total in keys else None))
        by_period = sub[sub["period"] != ALL]
        for group in sorted(set(by_period["group"])):
            parts = tuple(sorted((dimension, group, p)
                                 for p in by_period.loc[by_period["group"] == group, "period"]))
            total = (dimension, group, ALL)
            lines.append(Line(parts, total if total in keys else None))
    return [line for line in lines if len(line.cells) >= 2]


def _complete_lines(lines: list[Line], suppressed: set, size: Mapping) -> bool:
    """One pass of 'no line with exactly one suppressed cell'. Returns True if it changed."""
    changed = False
    for line in lines:
        hidden = [c for c in line.cells if c in suppressed]
        if len(hidden) != 1:
            continue
        candidates = [c for c in line.parts if c not in suppressed]
        if not candidates and line.total is not None and line.total not in suppressed:
            candidates = [line.total]
        if candidates:
            suppressed.add(min(candidates, key=lambda c: (size.get(c, 0), c)))
            changed = True
    return changed


def recoverable_cells(lines: Iterable[Line], suppressed: set) -> set:
    """Suppressed cells an attacker can solve exactly from the published line sums.

    Every line gives one linear equation in the suppressed cells (the published cells and the
    sum are known); a cell is determined iff its unit vector lies in the row space.
    """
    unknowns = sorted({c for line in lines for c in line.cells if c in suppressed})
    if not unknowns:
        return set()
    index = {c: i for i, c in enumerate(unknowns)}
    rows = []
    for line in lines:
        if not any(c in index for c in line.cells):
            continue
        if line.total is None:
            continue  # the sum is not published: no equation
        row = np.zeros(len(unknowns))
        for c in line.parts:
            if c in index:
                row[index[c]] += 1.0
        if line.total in index:
            row[index[line.total]] -= 1.0
        if np.any(row):
            rows.append(row)
    if not rows:
        return set()
    matrix = np.vstack(rows)
    rank = np.linalg.matrix_rank(matrix)
    solved = set()
    for cell, i in index.items():
        unit = np.zeros(len(unknowns))
        unit[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            solved.add(cell)
    return solved


# ---- measures -----------------------------------------------------------------------------

def _primary(row: Any, spec: MeasureSpec, threshold: int, protect_complement: bool) -> bool:
    den = row.denominator
    if pd.isna(den) or den < threshold:
        return True
    if spec.kind == "median":
        return False
    num = row.numerator
    if pd.isna(num) or num < threshold or num == 0 or num == den:
        return True
    return bool(protect_complement and den - num < threshold)


def suppress_measures(
    tidy: pd.DataFrame,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
    specs: Mapping[str, MeasureSpec] = MEASURES,
) -> pd.DataFrame:
    """Apply primary, linked and complementary suppression to a tidy measures frame.

    Args:
        tidy: Output of :func:`pipelines.warehouse.measures.compute_measures`.
        threshold: Small-cell threshold (counts under it are suppressed).
        protect_complement: Also suppress rates whose denominator - numerator is small.
        specs: Measure definitions (kind, family, additive dimensions).

    Returns:
        The released frame: ``measure, dimension, group, period, numerator, denominator,
        value, display, suppressed`` with figures of suppressed cells set to NULL, plus the
        internal column ``suppression`` (``primary`` / ``complementary``), which is not
        released.
    """
    tidy = tidy.reset_index(drop=True)
    families: dict[str, list[str]] = {}
    for name in dict.fromkeys(tidy["measure"]):
        spec = specs[name]
        families.setdefault(spec.family or name, []).append(name)
    status: dict[tuple[str, Key], str] = {}
    for members in families.values():
        family_rows = tidy[tidy["measure"].isin(members)]
        suppressed: set[Key] = set()
        primary: set[Key] = set()
        for row in family_rows.itertuples(index=False):
            if _primary(row, specs[row.measure], threshold, protect_complement):
                primary.add((row.dimension, row.group, row.period))
        suppressed |= primary
        per_measure = []
        for name in members:
            rows = family_rows[family_rows["measure"] == name]
            size = {(r.dimension, r.group, r.period): (0 if pd.isna(r.denominator)
                                                       else int(r.denominator))
                    for r in rows.itertuples(index=False)}
            per_measure.append((measure_lines(rows, specs[name]), size))
        for _ in range(1000):
            changed = False
            for lines, size in per_measure:
                while _complete_lines(lines, suppressed, size):
                    changed = True
                for cell in sorted(recoverable_cells(lines, suppressed)):
                    for line in lines:
                        if cell in line.cells:
                            open_cells = [c for c in line.parts if c not in suppressed]
                            if open_cells:
                                suppressed.add(min(open_cells,
                                                   key=lambda c, s=size: (s.get(c, 0), c)))
                                changed = True
                                break
            if not changed:
                break
        for name in members:
            for key in suppressed:
                status[(name, key)] = "primary" if key in primary else "complementary"
    keys = list(zip(tidy["measure"],
                    zip(tidy["dimension"], tidy["group"], tidy["period"], strict=True),
                    strict=True))
    tidy["suppression"] = [status.get(k) for k in keys]
    return _released_measure_frame(tidy, specs)


def _format_rate(value: float) -> tuple[float | None, str]:
    rounded = round(float(value), 3)
    if value < 0.01:
        return (None if rounded <= 0 else rounded), "<1%"
    if value > 0.99:
        return (None if rounded >= 1 else rounded), ">99%"
    return rounded, f"{round(value * 100):d}%"


def _released_measure_frame(tidy: pd.DataFrame, specs: Mapping[str, MeasureSpec]) -> pd.DataFrame:
    values: list[float | None] = []
    displays: list[str] = []
    for row in tidy.itertuples(index=False):
        if row.suppression is not None:
            values.append(None)
            displays.append(SUPPRESSED)
        elif specs[row.measure].kind == "median":
            fuzzy = row.fuzzy_value
            if pd.isna(fuzzy):
                values.append(None)
                displays.append(SUPPRESSED)
            else:
                released = float(round(fuzzy / 10.0) * 10)
                values.append(released)
                displays.append(f"${released:,.0f}")
        else:
            value, display = _format_rate(row.numerator / row.denominator)
            values.append(value)
            displays.append(display)
    hidden = tidy["suppression"].notna()
    out = pd.DataFrame({
        "measure": tidy["measure"],
        "dimension": tidy["dimension"],
        "group": tidy["group"],
        "period": tidy["period"],
        "numerator": tidy["numerator"].astype("Int64").mask(hidden),
        "denominator": tidy["denominator"].astype("Int64").mask(hidden),
        "value": pd.array(values, dtype="Float64"),
        "display": displays,
        "suppressed": hidden.to_numpy(),
        "suppression": tidy["suppression"],
    })
    return out


# ---- co-enrollment pairs ------------------------------------------------------------------

def pair_lines(pairs: pd.DataFrame) -> list[Line]:
    """Rows of the symmetric partner matrix (no published sum: lines without total)."""
    partners = sorted(set(pairs["partner_a"]) | set(pairs["partner_b"]))
    lines = []
    for partner in partners:
        cells = tuple(sorted((a, b, "all") for a, b in zip(pairs["partner_a"],
                                                             pairs["partner_b"], strict=True)
                             if partner in (a, b)))
        lines.append(Line(cells, None))
    return lines


def suppress_pairs(
    pairs: pd.DataFrame,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    linked_diagonal: Iterable[str] = (),
) -> pd.DataFrame:
    """Suppress the partner x partner co-enrollment matrix.

    Args:
        pairs: ``partner_a, partner_b, persons`` (a <= b; a == b is the partner's caseload).
        threshold: Small-cell threshold.
        linked_diagonal: Partners whose caseload is suppressed elsewhere (the ``partner``
            group of ``co_enrollment``); their diagonal cell is suppressed too.

    Returns:
        ``partner_a, partner_b, persons, display, suppressed`` (+ internal ``suppression``).
    """
    size = {(a, b, "all"): int(n) for a, b, n in zip(pairs["partner_a"], pairs["partner_b"],
                                                      pairs["persons"], strict=True)}
    primary = {c for c, n in size.items() if n < threshold}
    suppressed = set(primary) | {(p, p, "all") for p in linked_diagonal if (p, p, "all") in size}
    lines = pair_lines(pairs)
    for _ in range(1000):
        changed = False
        for line in lines:
            hidden = [c for c in line.cells if c in suppressed]
            if len(hidden) != 1:
                continue
            open_cells = [c for c in line.cells if c not in suppressed and c[0] != c[1]]
            open_cells = open_cells or [c for c in line.cells if c not in suppressed]
            if open_cells:
                suppressed.add(min(open_cells, key=lambda c: (size[c], c)))
                changed = True
        if not changed:
            break
    keys = [(a, b, "all") for a, b in zip(pairs["partner_a"], pairs["partner_b"], strict=True)]
    hidden = pd.Series([k in suppressed for k in keys], index=pairs.index)
    return pd.DataFrame({
        "partner_a": pairs["partner_a"],
        "partner_b": pairs["partner_b"],
        "persons": pairs["persons"].astype("Int64").mask(hidden),
        "display": [SUPPRESSED if h else str(int(n))
                    for h, n in zip(hidden, pairs["persons"], strict=True)],
        "suppressed": hidden.to_numpy(),
        "suppression": ["primary" if k in primary else ("complementary" if k in suppressed
                                                         else None) for k in keys],
    }).reset_index(drop=True)


# ---- released tables ----------------------------------------------------------------------

def _definitions() -> pd.DataFrame:
    return pd.DataFrame([
        {"measure": s.name, "kind": s.kind, "unit": s.unit, "title": s.title,
         "description": s.description,
         "additive_dimensions": ",".join(s.additive_dimensions)}
        for s in MEASURES.values()
    ])


def _rules(threshold: int, protect_complement: bool) -> pd.DataFrame:
    return pd.DataFrame([
        ("small_cell_threshold", str(threshold)),
        ("protect_complement", str(protect_complement).lower()),
        ("complementary_suppression", "along every additive line until stable, plus a "
                                      "linear-algebra audit"),
        ("median", "fuzzy median = mean of 45th and 55th percentiles, rounded to $10"),
        ("rates", "rounded to 3 decimals; <1% and >99% shown as such with value NULL"),
        ("date_precision", "months YYYY-MM, quarters YYYYQn"),
    ], columns=["rule", "setting"])


def released_tables(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
) -> dict[str, pd.DataFrame]:
    """Compute every measure and pair count from the warehouse and suppress them.

    Returns:
        ``released_measures``, ``released_coenrollment_pairs``, ``released_measure_definitions``,
        ``released_disclosure_rules`` (internal ``suppression`` columns removed).
    """
    tidy = compute_measures(con)
    measures = suppress_measures(tidy, threshold=threshold,
                                 protect_complement=protect_complement)
    co = measures[(measures["measure"] == "co_enrollment")
                  & (measures["dimension"] == "partner")]
    caseload_hidden = set(co.loc[co["suppressed"], "group"])
    pairs = suppress_pairs(coenrollment_pairs(con), threshold=threshold,
                           linked_diagonal=caseload_hidden)
    return {
        "released_measures": measures.drop(columns=["suppression"]),
        "released_coenrollment_pairs": pairs.drop(columns=["suppression"]),
        "released_measure_definitions": _definitions(),
        "released_disclosure_rules": _rules(threshold, protect_complement),
    }


def write_released(con: duckdb.DuckDBPyConnection,
                   tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Write released frames as tables, plus one convenience view per measure.

    Views: ``released_<measure>`` = rows of ``released_measures`` for that measure.

    Returns:
        Rows per table written.
    """
    counts = {}
    for name, frame in tables.items():
        if not name.startswith(RELEASED_PREFIX) or not name.replace("_", "").isalnum():
            raise ValueError(f"released relation names must start with {RELEASED_PREFIX!r}")
        if "suppression" in frame.columns:
            raise ValueError(f"{name}: internal column 'suppression' must not be released")
        create_table_from_frame(con, name, frame, replace=True)
        counts[name] = len(frame)
    if "released_measures" in tables:
        for measure in MEASURES:
            con.execute(
                f"CREATE OR REPLACE VIEW {RELEASED_PREFIX}{measure} AS "  # noqa: S608
                f"SELECT dimension, \"group\", period, numerator, denominator, value, display, "
                f"suppressed FROM released_measures WHERE measure = '{measure}'"
            )
    return counts


def publish_outcomes(
    con: duckdb.DuckDBPyConnection,
    *,
    threshold: int = DEFAULT_SMALL_CELL,
    protect_complement: bool = True,
) -> dict[str, int]:
    """Compute, suppress and write every released table into an open warehouse connection."""
    return write_released(con, released_tables(con, threshold=threshold,
                                               protect_complement=protect_complement))


# ---- restricted query interface -----------------------------------------------------------

_ALLOWED_NODES = {"SELECT_NODE", "SET_OPERATION_NODE", "CTE_NODE", "RECURSIVE_CTE_NODE"}
_ALLOWED_TABLE_REFS = {"BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST"}
_DENIED_FUNCTION_PREFIXES = ("read_", "duckdb_", "pragma_", "sqlite_", "postgres_", "mysql_",
                             "parquet_", "iceberg_", "delta_", "http", "s3", "glob", "query",
                             "sniff_", "getenv", "current_setting", "which_secret",
                             "enable_", "disable_", "checkpoint", "force_checkpoint",
                             "arrow_scan", "pandas_scan", "python_", "load_", "install_")


def _walk(node: Any, visit) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _cte_names(tree: Any) -> set[str]:
    names: set[str] = set()

    def visit(node: dict) -> None:
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map", []):
                names.add(str(entry.get("key", "")).lower())

    _walk(tree, visit)
    return names


def check_released_sql(sql: str, allowed: Iterable[str]) -> None:
    """Raise :class:`QueryRejected` unless ``sql`` is one SELECT over allowed relations.

    DuckDB's own parser (``json_serialize_sql``) turns the text into a syntax tree; only
    SELECT statements serialize, so PRAGMA, ATTACH, COPY, SET, INSTALL, CREATE ... are
    rejected by the parser itself. The tree is then walked: every table reference must be a
    plain table named in ``allowed`` (or a CTE of the query), no table functions, no
    ``SHOW``/``DESCRIBE``/``SUMMARIZE``, no file, catalog, environment or SQL-executing
    functions, no qualified catalog or schema other than ``main``.
    """
    allowed_names = {a.lower() for a in allowed}
    probe = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        text = probe.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
    finally:
        probe.close()
    tree = json.loads(text)
    if tree.get("error"):
        raise QueryRejected(f"only a single SELECT is allowed: {tree.get('error_message')}")
    statements = tree.get("statements", [])
    if len(statements) != 1:
        raise QueryRejected("exactly one SELECT statement is allowed")
    ctes = _cte_names(statements)
    problems: list[str] = []

    def visit(node: dict) -> None:
        node_type = node.get("type")
        if "class" in node:
            if node.get("class") == "FUNCTION" or "function_name" in node:
                name = str(node.get("function_name", "")).lower()
                if name.startswith(_DENIED_FUNCTION_PREFIXES):
                    problems.append(f"function {name}() is not allowed")
                if node.get("schema") or node.get("catalog"):
                    problems.append(f"qualified function {name}() is not allowed")
            return
        if not isinstance(node_type, str):
            return
        if node_type.endswith("_NODE") and "modifiers" in node:
            if node_type not in _ALLOWED_NODES:
                problems.append(f"{node_type} is not allowed")
            return
        if "sample" in node and "alias" in node:  # a table reference
            if node_type not in _ALLOWED_TABLE_REFS:
                problems.append(f"{node_type.lower()} is not allowed (tables only)")
                return
            if node_type == "BASE_TABLE":
                table = str(node.get("table_name", "")).lower()
                schema = str(node.get("schema_name", "")).lower()
                catalog = str(node.get("catalog_name", "")).lower()
                if catalog or schema not in ("", "main"):
                    problems.append(f"qualified name {catalog}.{schema}.{table} is not allowed")
                elif table in ctes and not schema:
                    return
                elif table not in allowed_names:
                    problems.append(f"relation {table!r} is not released; query only "
                                    f"{RELEASED_PREFIX}* relations")
                if node.get("at_clause"):
                    problems.append("time travel (AT) is not allowed")

    _walk(statements, visit)
    if problems:
        raise QueryRejected("; ".join(dict.fromkeys(problems)))


def released_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Names of ``released_*`` tables and views in the main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name LIKE 'released\\_%' ESCAPE '\\' "
        "ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows]


def _isolated_copy(db_path: str | Path) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """An in-memory database holding only the released relations (no file access)."""
    source = duckdb.connect(str(db_path), read_only=True)
    try:
        names = released_relations(source)
        frames = {n: source.execute(f'SELECT * FROM "{n}"').df() for n in names}  # noqa: S608
    finally:
        source.close()
    sandbox = duckdb.connect(":memory:", config={"enable_external_access": False,
                                                 "python_enable_replacements": False})
    for name, frame in frames.items():
        create_table_from_frame(sandbox, name, frame)
    sandbox.execute("SET lock_configuration = true")
    return sandbox, names


def query_released(db_path: str | Path, sql: str) -> pd.DataFrame:
    """Run one evaluator SELECT against the released relations of a published file.

    Two layers: the statement is checked with :func:`check_released_sql`, then executed in an
    in-memory database that holds copies of the ``released_*`` relations only (opened from
    the published file read-only, external access disabled), so raw fact tables are not
    reachable even if a check were bypassed.

    Raises:
        QueryRejected: Not a single SELECT over released relations.
    """
    sandbox, names = _isolated_copy(db_path)
    try:
        check_released_sql(sql, names)
        return sandbox.execute(sql).df()
    finally:
        sandbox.close()


def export_released(db_path: str | Path, out_dir: str | Path, fmt: str = "csv") -> list[Path]:
    """Write every released relation to ``out_dir/<name>.<fmt>`` (csv or parquet)."""
    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be 'csv' or 'parquet'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path), read_only=True)
    written = []
    try:
        for name in released_relations(con):
            frame = con.execute(f'SELECT * FROM "{name}"').df()  # noqa: S608
            path = out / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                frame.to_parquet(path, index=False)
            written.append(path)
    finally:
        con.close()
    return written
