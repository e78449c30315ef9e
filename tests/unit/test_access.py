"""Agreements, the audit log and access through them (query, export, extract refusals)."""

from __future__ import annotations

import datetime as dt
import json
import tomllib

import duckdb
import pandas as pd
import pytest
import tomli_w
from test_measures import build_fixture_warehouse

from pipelines.state import audit
from pipelines.steps import access
from pipelines.warehouse import disclosure, sandbox, tiers
from pipelines.workspace import WorkspaceError, init_workspace, load_workspace

TODAY = dt.date(2026, 11, 22)
AGREEMENTS = {
    "uconn-eval": {"partners": ["*"], "tier": "research", "purpose": "program evaluation",
                   "expires": dt.date(2027, 6, 30), "grantee": "UConn evaluation team"},
    "board-dash": {"partners": ["wb", "yd"], "tier": "published", "purpose": "dashboard",
                   "expires": "2027-01-31", "grantee": "Workforce board analysts"},
    "wb-only": {"partners": ["wb"], "tier": "published", "purpose": "wb's own figures",
                "expires": dt.date(2027, 1, 31), "grantee": "wb"},
    "old": {"partners": ["*"], "tier": "published", "purpose": "2025 study",
            "expires": dt.date(2026, 1, 31), "grantee": "someone"},
}


def _write_config(root, **tables):
    raw = tomllib.loads((root / "pathlink.toml").read_text())
    raw.update(tables)
    (root / "pathlink.toml").write_text(tomli_w.dumps(raw))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("access") / "w"
    init_workspace(root, ["wb", "yd"], key_id="k1")
    _write_config(root, agreements=AGREEMENTS,
                  query={"timeout_seconds": 5, "memory_limit_mb": 128, "max_rows": 50})
    workspace = load_workspace(root)
    con = duckdb.connect(str(workspace.warehouse_db))
    build_fixture_warehouse(con)
    datasets = ["enrollments", "services", "credentials", "assessments", "wages"]
    sent = pd.DataFrame([(p, d, "2023-01", "2024-12", 24) for p in ("wb", "yd") for d in datasets],
                        columns=["partner_id", "dataset", "first_period", "last_period",
                                 "periods"])
    disclosure.publish_outcomes(con, threshold=3, datasets_sent=sent)
    disclosure.write_released(con, tiers.metadata_tables(
        con, partners={"wb": "Workforce Board", "yd": "Youth Dept"}, datasets_sent=sent,
        periods=["2024-12"]))
    con.close()
    tiers.write_published(workspace.warehouse_db, workspace.published_db, "r1")
    return workspace


@pytest.fixture
def ws(built):
    """The module's workspace with an empty audit log."""
    built.audit_log.unlink(missing_ok=True)
    return built


def test_agreements_are_read_from_the_config(ws):
    a = ws.agreements["board-dash"]
    assert a.partners == ("wb", "yd") and a.tier == "published"
    assert a.expires == dt.date(2027, 1, 31) and a.grantee == "Workforce board analysts"
    assert ws.agreements["uconn-eval"].covers("anyone")
    assert not ws.agreements["wb-only"].covers("yd")
    assert ws.agreement("uconn-eval", tier="research", today=TODAY).agreement_id == "uconn-eval"


@pytest.mark.parametrize(("change", "message"), [
    ({"tier": "public"}, "tier must be one of"),
    ({"partners": ["nobody"]}, "not registered"),
    ({"partners": "wb"}, "must be a list"),
    ({"expires": "soon"}, "expires must be a date"),
    ({"grantee": " "}, "must not be empty"),
])
def test_a_malformed_agreement_is_refused_at_load(tmp_path, change, message):
    root = tmp_path / "w"
    init_workspace(root, ["wb"], key_id="k1")
    spec = {"partners": ["wb"], "tier": "published", "purpose": "p",
            "expires": dt.date(2027, 1, 1), "grantee": "g", **change}
    _write_config(root, agreements={"a1": spec})
    with pytest.raises(WorkspaceError, match=message):
        load_workspace(root)


def test_release_settings_defaults_and_validation(tmp_path):
    root = tmp_path / "w"
    init_workspace(root, ["wb"], key_id="k1")
    ws = load_workspace(root)
    assert ws.release.mode == "suppression" and ws.release.k == 11
    assert ws.release.quasi_identifiers == ("birth_year", "sex", "zip3", "partners",
                                            "entry_period", "exit_period", "program")
    _write_config(root, release={"mode": "dp", "rho": 0.5, "k": 5})
    ws = load_workspace(root)
    assert (ws.release.mode, ws.release.rho, ws.release.k) == ("dp", 0.5, 5)
    _write_config(root, release={"mode": "exact"})
    with pytest.raises(WorkspaceError, match="mode must be one of"):
        load_workspace(root)
    _write_config(root, release={"quasi_identifiers": ["shoe_size"]})
    with pytest.raises(WorkspaceError, match="shoe_size"):
        load_workspace(root)


@pytest.mark.parametrize(("agreement", "message"), [
    ("nope", "no agreement 'nope'"),
    ("old", "expired on 2026-01-31"),
    ("wb-only", "does not cover partners yd"),
])
def test_queries_outside_a_live_agreement_are_refused_and_logged(ws, agreement, message):
    sql = "SELECT count(*) FROM released_measures"
    with pytest.raises(access.AccessRefused, match=message):
        access.query(ws, agreement, sql, today=TODAY)
    [entry] = audit.read(ws.audit_log)
    assert (entry.action, entry.agreement, entry.outcome) == ("query", agreement, "refused")
    assert entry.sql_sha256 == audit.sql_hash(sql) and entry.rows is None


def test_research_extract_needs_a_research_agreement(ws):
    with pytest.raises(access.AccessRefused, match="research extract needs tier"):
        access.extract(ws, "board-dash", today=TODAY)
    assert audit.read(ws.audit_log)[-1].outcome == "refused"


def test_a_query_is_logged_with_hash_and_row_count_never_values(ws):
    sql = ("SELECT measure, \"group\", numerator, denominator, display FROM released_measures "
           "WHERE NOT suppressed")
    result = access.query(ws, "board-dash", sql, today=TODAY)
    assert len(result) > 0
    [entry] = audit.read(ws.audit_log)
    assert entry.outcome == "ok" and entry.rows == len(result)
    assert entry.grantee == "Workforce board analysts"
    assert entry.sql_sha256 == audit.sql_hash(sql)
    text = ws.audit_log.read_text()
    assert "SELECT" not in text  # the statement itself is not stored
    for value in set(result["display"]) | set(result["group"]):
        assert f'"{value}"' not in text and f": {value}," not in text
    record = json.loads(text.splitlines()[0])
    assert set(record) == {"at", "action", "agreement", "grantee", "sql_sha256", "rows",
                           "outcome", "detail", "prev_sha256"}


def test_a_stopped_query_is_logged_as_stopped(ws):
    with pytest.raises(sandbox.QueryStopped, match="more than 50 rows"):
        access.query(ws, "board-dash", "SELECT * FROM range(1000)", today=TODAY)
    assert audit.read(ws.audit_log)[-1].outcome == "stopped"
    assert audit.read(ws.audit_log)[-1].detail == "row cap"


def test_export_is_logged(ws, tmp_path):
    written = access.export(ws, "board-dash", tmp_path / "out", "csv", today=TODAY)
    assert written and all(p.name.startswith("released_") for p in written)
    entry = audit.read(ws.audit_log)[-1]
    assert entry.action == "export" and entry.rows > 0 and entry.sql_sha256 is None


def test_the_audit_log_is_a_hash_chain(tmp_path):
    log = tmp_path / "audit.log"
    for i in range(3):
        audit.append(log, action="query", agreement="a", grantee="g", sql=f"SELECT {i}",
                     rows=i, outcome="ok")
    assert audit.verify_chain(log) is None
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")  # an entry removed
    assert audit.verify_chain(log) == 2
    log.write_text("\n".join([lines[0], lines[1].replace('"rows": 1', '"rows": 9'), lines[2]])
                   + "\n")  # an entry edited
    assert audit.verify_chain(log) == 3
