"""`pathlink query | report | export | dictionary`: the evaluators' released figures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli._common import WorkspaceOpt, console, fail
from pipelines.warehouse import dictionary
from pipelines.workspace import WorkspaceError, load_workspace


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the released_* relations.")],
    workspace: WorkspaceOpt,
) -> None:
    """Run an evaluator query against the released (suppressed) views only; prints CSV."""
    import duckdb

    from pipelines.warehouse.disclosure import QueryRejected, query_released

    try:
        ws = _published(workspace)
        result = query_released(ws.published_db, sql)
    except (WorkspaceError, QueryRejected) as exc:
        fail(str(exc))
    except duckdb.Error as exc:  # the evaluator's own SQL over de-identified views
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(f"the query failed: {first}")
    result.to_csv(sys.stdout, index=False)


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
    charts = write_report(ws.published_db, target)
    console.print(f"report written to {target}: {', '.join(charts)}", highlight=False)

def export(
    workspace: WorkspaceOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Export every released relation to CSV or Parquet."""
    from pipelines.warehouse.disclosure import export_released

    if fmt not in ("csv", "parquet"):
        fail(f"unknown --format '{fmt}'; use csv or parquet", code=2)
    try:
        ws = _published(workspace)
    except WorkspaceError as exc:
        fail(str(exc))
    for path in export_released(ws.published_db, out, fmt):
        typer.echo(str(path))


def dictionary_command(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print the evaluator data dictionary (Markdown) generated from the DDL and contracts."""
    if output is None:
        typer.echo(dictionary.build_dictionary(), nl=False)
    else:
        try:
            written = dictionary.write_dictionary(output)
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or type(exc).__name__}")
        typer.echo(f"wrote {written}", err=True)


def register(app: typer.Typer) -> None:
    """Add the release commands to the main app."""
    app.command()(query)
    app.command()(report)
    app.command()(export)
    app.command("dictionary")(dictionary_command)
