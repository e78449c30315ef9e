"""Access to the release under data-sharing agreements: queries, exports, research extracts.

Every call names an agreement (``[agreements.<id>]`` in ``pathlink.toml``); one that is
unknown, expired, of the wrong tier or not covering the partners whose data would go out is
refused. Every call, refused or not, appends one entry to the audit log in state/
(:mod:`pipelines.state.audit`): when, which agreement, the SQL's hash, the row count and how
it ended; never a result value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.state import audit
from pipelines.warehouse import research, sandbox
from pipelines.warehouse.disclosure import export_released
from pipelines.workspace import Agreement, Workspace, WorkspaceError


class AccessRefused(WorkspaceError):
    """An access outside a live agreement (the message says which rule)."""


def _limits(ws: Workspace) -> sandbox.Limits:
    q = ws.query_limits
    return sandbox.Limits(timeout_seconds=q.timeout_seconds, memory_limit_mb=q.memory_limit_mb,
                          threads=q.threads, max_rows=q.max_rows)


def released_partners(published_db: Path) -> set[str]:
    """Partners whose data is in the published release (they sent at least one file)."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT partner_id FROM released_data_sent").fetchall()}
    finally:
        con.close()


def _agreement(ws: Workspace, agreement_id: str, *, tier: str, action: str,
               sql: str | None, today: dt.date | None) -> Agreement:
    try:
        return ws.agreement(agreement_id, tier=tier, today=today)
    except WorkspaceError as exc:
        found = ws.agreements.get(agreement_id)
        audit.append(ws.audit_log, action=action, agreement=agreement_id,
                     grantee=found.grantee if found else "", sql=sql, rows=None,
                     outcome="refused", detail=_refusal_kind(str(exc)))
        raise AccessRefused(str(exc)) from None


def _refusal_kind(message: str) -> str:
    for marker, kind in (("expired", "agreement expired"), ("no agreement", "no such agreement"),
                         ("tier", "agreement of another tier"),
                         ("does not cover", "partners not covered")):
        if marker in message:
            return kind
    return "refused"


def _published_scope(ws: Workspace, agreement: Agreement, action: str,
                     sql: str | None) -> None:
    """A query or export reads figures made from every partner's data: the agreement must
    cover each partner whose data is in the release."""
    if not ws.published_db.exists():
        raise AccessRefused(f"no release yet ({ws.published_db} does not exist); run "
                            "`pathlink run` first")
    uncovered = sorted(p for p in released_partners(ws.published_db)
                       if not agreement.covers(p))
    if uncovered:
        message = (f"agreement '{agreement.agreement_id}' does not cover partners "
                   f"{', '.join(uncovered)}, whose data is in the published figures; refused")
        audit.append(ws.audit_log, action=action, agreement=agreement.agreement_id,
                     grantee=agreement.grantee, sql=sql, rows=None, outcome="refused",
                     detail="partners not covered")
        raise AccessRefused(message)


def query(ws: Workspace, agreement_id: str, sql: str, *,
          today: dt.date | None = None) -> pd.DataFrame:
    """One SELECT over the released aggregates in the sandbox, under a live agreement.

    Raises:
        AccessRefused: No live agreement covering the release.
        sandbox.QueryRejected: Not one SELECT over released relations.
        sandbox.QueryStopped: A time, memory or row limit stopped it.
    """
    agreement = _agreement(ws, agreement_id, tier="published", action="query", sql=sql,
                           today=today)
    _published_scope(ws, agreement, "query", sql)
    try:
        result = sandbox.run_query(ws.published_db, sql, _limits(ws))
    except sandbox.QueryRejected:
        audit.append(ws.audit_log, action="query", agreement=agreement_id,
                     grantee=agreement.grantee, sql=sql, rows=None, outcome="refused",
                     detail="statement refused by the sandbox")
        raise
    except sandbox.QueryStopped as exc:
        audit.append(ws.audit_log, action="query", agreement=agreement_id,
                     grantee=agreement.grantee, sql=sql, rows=None, outcome="stopped",
                     detail=_stop_kind(str(exc)))
        raise
    audit.append(ws.audit_log, action="query", agreement=agreement_id,
                 grantee=agreement.grantee, sql=sql, rows=len(result), outcome="ok")
    return result


def _stop_kind(message: str) -> str:
    for marker, kind in (("timeout", "statement timeout"), ("memory", "memory limit"),
                         ("rows", "row cap")):
        if marker in message:
            return kind
    return "stopped"


def export(ws: Workspace, agreement_id: str, out_dir: Path, fmt: str, *,
           today: dt.date | None = None) -> list[Path]:
    """Every released relation to ``out_dir`` (csv or parquet), under a live agreement."""
    agreement = _agreement(ws, agreement_id, tier="published", action="export", sql=None,
                           today=today)
    _published_scope(ws, agreement, "export", None)
    written = export_released(ws.published_db, out_dir, fmt)
    rows = 0
    for path in written:
        frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        rows += len(frame)
    audit.append(ws.audit_log, action="export", agreement=agreement_id,
                 grantee=agreement.grantee, sql=None, rows=rows, outcome="ok",
                 detail=f"{len(written)} relations as {fmt}")
    return written


def extract(ws: Workspace, agreement_id: str, *,
            today: dt.date | None = None) -> research.Extract:
    """A k-anonymous person-level extract for a live research agreement, written to
    ``research/<agreement>/`` with its measured risk.

    Raises:
        AccessRefused: No live research agreement.
    """
    agreement = _agreement(ws, agreement_id, tier="research", action="extract", sql=None,
                           today=today)
    if not ws.warehouse_db.exists():
        raise AccessRefused(f"no analyst warehouse yet ({ws.warehouse_db}); run "
                            "`pathlink run` first")
    partners = tuple(p for p in ws.partners if agreement.covers(p))
    try:
        made = research.write_extract(
            ws.warehouse_db, ws.research_dir(agreement_id), partners=partners,
            settings=ws.release, salt=research.agreement_salt(ws.state_dir, agreement_id),
            agreement=agreement_id, purpose=agreement.purpose, grantee=agreement.grantee,
            expires=agreement.expires.isoformat())
    except Exception:
        audit.append(ws.audit_log, action="extract", agreement=agreement_id,
                     grantee=agreement.grantee, sql=None, rows=None, outcome="failed")
        raise
    audit.append(ws.audit_log, action="extract", agreement=agreement_id,
                 grantee=agreement.grantee, sql=None, rows=made.risk.persons, outcome="ok",
                 detail=f"k={made.risk.k_achieved} over {len(made.risk.quasi_identifiers)} "
                        "quasi-identifiers")
    return made
