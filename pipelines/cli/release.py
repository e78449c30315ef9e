"""`pathlink query | report | export | extract | audit | dictionary`: the release tiers.

Queries and exports of the published aggregates and research extracts run under a data-sharing
agreement (`--agreement`) and are logged; `audit` lists the log.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli._common import WorkspaceOpt, console, fail
from pipelines.workspace import WorkspaceError, load_workspace
from pipelines.workspace.modes import for_evaluators

AgreementOpt = Annotated[str, typer.Option(
    "--agreement", "-a", help="The data-sharing agreement ([agreements.<id>]) this is under.")]


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the released_* relations.")],
    workspace: WorkspaceOpt,
    agreement: AgreementOpt,
) -> None:
    """Run one SELECT over the released aggregates in the bounded sandbox; prints CSV.

    Refused outside a live agreement; logged in the audit log (hash of the SQL, row count).
    """
    from pipelines.steps import access
    from pipelines.warehouse.sandbox import QueryRejected, QueryStopped

    try:
        ws = _published(workspace)
        result = access.query(ws, agreement, sql)
    except (WorkspaceError, QueryRejected, QueryStopped) as exc:
        fail(str(exc))
    result.to_csv(sys.stdout, index=False)


def extract(
    workspace: WorkspaceOpt,
    agreement: AgreementOpt,
) -> None:
    """Make the k-anonymous research extract of a research agreement (research/<agreement>/)
    and print its measured risk."""
    from pipelines.steps import access

    try:
        ws = load_workspace(workspace)
        made = access.extract(ws, agreement)
    except WorkspaceError as exc:
        fail(str(exc))
    typer.echo(f"extract written to {made.data} (risk: {made.risk_file})")
    typer.echo("before generalization: " + "; ".join(made.risk_before.lines()[1:3]))
    typer.echo("extract:               " + "; ".join(made.risk.lines()))


def audit(
    workspace: WorkspaceOpt,
    agreement: Annotated[str | None, typer.Option(
        "--agreement", "-a", help="Only this agreement's entries.")] = None,
) -> None:
    """Print the audit log (every query, export and extract) as CSV; check its hash chain."""
    import csv
    from dataclasses import asdict

    from pipelines.state import audit as audit_log

    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        fail(str(exc))
    entries = [e for e in audit_log.read(ws.audit_log)
               if agreement is None or e.agreement == agreement]
    fields = ["at", "action", "agreement", "grantee", "sql_sha256", "rows", "outcome",
              "detail"]
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for entry in entries:
        writer.writerow(asdict(entry))
    broken = audit_log.verify_chain(ws.audit_log)
    if broken is not None:
        fail(f"the audit log's hash chain breaks at line {broken}: an entry was removed or "
             "edited")


def _published(workspace: Path) -> Any:
    """The workspace, refusing one with no release yet."""
    ws = load_workspace(workspace)
    if not ws.published_db.is_file():
        raise WorkspaceError(f"no release is published in {ws.root} yet; `pathlink run "
                             f"--workspace {ws.root}` publishes one")
    return ws


def report(
    workspace: WorkspaceOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write.")] = None,
) -> None:
    """Write the static HTML outcome report (released figures only)."""
    from pipelines.warehouse.report import write_report

    try:
        ws = _published(workspace)
    except WorkspaceError as exc:
        fail(str(exc))
    target = out or ws.published_db.parent / "report.html"
    from pipelines.steps.review import report_accuracy

    charts = write_report(ws.published_db, target, linkage_accuracy=report_accuracy(ws))
    for_evaluators(target)  # released figures only: readable by evaluators (0644)
    console.print(f"report written to {target}: {', '.join(charts)}", highlight=False)

def export(
    workspace: WorkspaceOpt,
    agreement: AgreementOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Export every released relation to CSV or Parquet (under an agreement; logged)."""
    from pipelines.steps import access

    if fmt not in ("csv", "parquet"):
        fail(f"unknown --format '{fmt}'; use csv or parquet", code=2)
    made = not out.exists()
    try:
        ws = _published(workspace)
        written = access.export(ws, agreement, out, fmt)
    except (WorkspaceError, ValueError) as exc:
        fail(str(exc))
    for path in written:
        for_evaluators(path)  # released relations only: for evaluators (0644)
        typer.echo(str(path))
    if made:
        for_evaluators(out)


def dictionary_command(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the evaluator data dictionary (Markdown) generated from the DDL and contracts."""
    # imported here: the warehouse (and DuckDB) is not loaded for every command, e.g. `check`
    from pipelines.warehouse import dictionary

    if output is None:
        typer.echo(dictionary.build_dictionary(), nl=False)
    else:
        try:
            written = dictionary.write_dictionary(output)
            for_evaluators(written)  # documentation for evaluators (0644)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or type(exc).__name__}")
        typer.echo(f"wrote {written}", err=True)


def register(app: typer.Typer) -> None:
    """Add the release commands to the main app."""
    app.command()(query)
    app.command()(report)
    app.command()(export)
    app.command()(extract)
    app.command()(audit)
    app.command("dictionary")(dictionary_command)
