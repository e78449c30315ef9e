"""The query sandbox: one SELECT over released aggregates only, bounded in time, memory, rows."""

from __future__ import annotations

import time

import duckdb
import pandas as pd
import pytest
from test_measures import build_fixture_warehouse

from pipelines.warehouse import disclosure as d
from pipelines.warehouse import sandbox as s
from pipelines.warehouse import tiers
from schemas import ddl

FAST = s.Limits(timeout_seconds=3, memory_limit_mb=128, threads=1, max_rows=500)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """An analyst warehouse with the fixture's facts, and the published file made from it."""
    folder = tmp_path_factory.mktemp("sandbox")
    warehouse = folder / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    build_fixture_warehouse(con)
    d.publish_outcomes(con, threshold=3)
    con.close()
    target = folder / "published" / "pathlink.duckdb"
    tiers.write_published(warehouse, target, "run-1")
    return target


def test_published_file_holds_released_relations_only(published):
    con = duckdb.connect(str(published), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables").fetchall()]
        leaking = tiers.person_level_columns(con)
    finally:
        con.close()
    assert names and all(n.startswith("released_") for n in names), names
    assert "released_measures" in names and "released_employment_q2" in names
    assert leaking == {}


def test_select_over_released_relations_runs(published):
    out = s.run_query(
        published,
        "WITH o AS (SELECT * FROM released_measures WHERE dimension = 'overall') "
        "SELECT measure, display FROM o JOIN released_measure_definitions USING (measure) "
        "ORDER BY measure", FAST)
    assert len(out) > 0 and list(out.columns) == ["measure", "display"]
    view = s.run_query(published, "SELECT count(*) AS n FROM released_employment_q2", FAST)
    assert int(view["n"].iloc[0]) > 0
    # what the sandbox holds is what SHOW TABLES lists: released relations, nothing else
    shown = s.run_query(published, "SHOW TABLES", FAST)
    assert shown["name"].str.startswith("released_").all()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM enrollment",
    "SELECT person_id FROM person",
    "SELECT * FROM released_measures JOIN person_profile ON true",
    "SELECT * FROM released_measures WHERE measure IN (SELECT person_id FROM outcome_exit)",
    # a CTE named like a person-level table is visible only inside its own scope
    "SELECT * FROM (WITH person AS (SELECT 1) SELECT 1) t, person",
    "SELECT * FROM main.exit_cohort",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT getenv('HOME')",
])
@pytest.mark.slow  # a sandbox process each (~1 s); the CTE trick below stays in the fast tier
def test_anything_but_released_data_is_refused_in_one_line(published, sql):
    with pytest.raises(s.QueryRejected) as caught:
        s.run_query(published, sql, FAST)
    assert "\n" not in str(caught.value) and str(caught.value)


@pytest.mark.parametrize("sql", [
    "PRAGMA table_info('enrollment')",
    "ATTACH '/tmp/x.duckdb' AS x",
    "COPY released_measures TO '/tmp/out.csv'",
    "CREATE TABLE released_x AS SELECT 1",
    "DELETE FROM released_measures",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "SELECT 1; SELECT * FROM enrollment",
    "CALL pragma_version()",
    "EXPLAIN SELECT 1",
])
def test_only_one_select_statement_is_accepted(sql):
    with pytest.raises(s.QueryRejected):
        s.check_statement(sql)


def test_the_cte_trick_is_refused_by_name_resolution(published):
    with pytest.raises(s.QueryRejected, match="person does not exist"):
        s.run_query(published, "SELECT * FROM (WITH person AS (SELECT 1) SELECT 1) t, person",
                    FAST)
    # the same CTE used within its scope is fine
    out = s.run_query(published, "SELECT * FROM (WITH person AS (SELECT 1 AS x) "
                                 "SELECT x FROM person) t", FAST)
    assert out["x"].tolist() == [1]


@pytest.mark.slow  # each runs into a limit
def test_recursive_cte_is_stopped_at_the_timeout(published):
    started = time.monotonic()
    with pytest.raises(s.QueryStopped, match="statement timeout of 3 s") as caught:
        s.run_query(published, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
                               "FROM r) SELECT count(*) FROM r", FAST)
    assert time.monotonic() - started < FAST.timeout_seconds + s.KILL_GRACE_SECONDS + 2
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_three_way_cross_join_is_stopped_by_time_or_memory(published):
    started = time.monotonic()
    with pytest.raises(s.QueryStopped, match=r"timeout|memory limit"):
        s.run_query(published, "SELECT a.measure, b.measure, c.measure FROM released_measures "
                               "a, released_measures b, released_measures c "
                               "ORDER BY 1, 2, 3", FAST)
    assert time.monotonic() - started < FAST.timeout_seconds + s.KILL_GRACE_SECONDS + 2


@pytest.mark.slow
def test_untracked_allocations_hit_the_memory_limit(published):
    with pytest.raises(s.QueryStopped, match="memory limit of 128 MB"):
        s.run_query(published, "SELECT length(repeat('x', 1500000000))", FAST)


def test_row_cap(published):
    with pytest.raises(s.QueryStopped, match="more than 500 rows"):
        s.run_query(published, "SELECT * FROM range(100000)", FAST)
    out = s.run_query(published, "SELECT * FROM range(500)", FAST)
    assert len(out) == 500


def test_write_published_refuses_a_person_level_released_relation(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute(ddl("warehouse"))
    con.execute("CREATE TABLE released_oops AS SELECT 'P1' AS person_id, 3 AS n")
    con.close()
    with pytest.raises(ValueError, match="person-level"):
        tiers.write_published(warehouse, tmp_path / "pub.duckdb", "r")
    assert not (tmp_path / "pub.duckdb").exists()


def test_results_are_frames_with_types(published):
    out = s.run_query(published, "SELECT measure, numerator, suppressed FROM released_measures "
                                 "LIMIT 3", FAST)
    assert isinstance(out, pd.DataFrame) and len(out) == 3
