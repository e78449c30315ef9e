"""The `pathlink` command line: one console script, subcommands named for what a user does."""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

# Quiet third-party telemetry before they are imported (this machine may have no network).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli import encode as cli_encode
from pipelines.cli.keys import app as keys_app
from pipelines.warehouse import dictionary
from pipelines.workspace import (
    WorkspaceError,
    add_partner,
    init_workspace,
    load_workspace,
)

app = typer.Typer(
    name="pathlink",
    help="Privacy-preserving data sharing and record linkage for workforce partners.",
    no_args_is_help=True,
    add_completion=False,
)
partners_app = typer.Typer(help="Register and list partners.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(keys_app, name="keys")
cli_encode.register(app)
dictionary.register(app)

console = Console(stderr=True)
WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    partners: Annotated[str, typer.Option(help="Comma-separated partner ids.")] = "",
    key_id: Annotated[str | None, typer.Option(help="Shared key id (default: new).")] = None,
) -> None:
    """Create a workspace (config, landing/, restricted state/, a new shared secret)."""
    ids = [p.strip() for p in partners.split(",") if p.strip()]
    try:
        ws = init_workspace(directory, ids, key_id=key_id)
    except WorkspaceError as exc:
        _fail(str(exc))
    console.print(f"workspace {ws.root} created; key id {ws.key_id}; partners: "
                  f"{', '.join(ws.partners) or '(none yet)'}", highlight=False)


@partners_app.command("add")
def partners_add(
    partner_id: Annotated[str, typer.Argument(help="Partner id (lowercase, digits, _).")],
    workspace: WorkspaceOpt,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Register a partner so its drops in landing/<partner_id>/ are accepted."""
    try:
        add_partner(workspace, partner_id, name=name)
    except WorkspaceError as exc:
        _fail(str(exc))
    console.print(f"partner {partner_id} registered", highlight=False)


@partners_app.command("list")
def partners_list(workspace: WorkspaceOpt) -> None:
    """List registered partners."""
    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        _fail(str(exc))
    for partner in ws.partners.values():
        typer.echo(f"{partner.partner_id}\t{partner.name}")


@app.command()
def synth(
    directory: Annotated[Path, typer.Argument(help="Output folder (landing/ and truth/).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261,
    persons: Annotated[int, typer.Option(help="Number of true persons.")] = 3000,
    periods: Annotated[str, typer.Option(help="Comma-separated periods.")] = "2026-09,2026-10",
) -> None:
    """Write seeded synthetic monthly extracts for seven Hartford partners, truth apart."""
    from pipelines.synthetic.participants import generate

    summary = generate(directory, seed=seed, persons=persons,
                       periods=[p.strip() for p in periods.split(",") if p.strip()])
    console.print(f"synthetic drops written to {Path(directory) / 'landing'}; truth in "
                  f"{Path(directory) / 'truth'}: {summary}", highlight=False)


@app.command()
def run(
    workspace: WorkspaceOpt,
    as_of: Annotated[str | None, typer.Option(help="Date for future/age checks (ISO).")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run.")] = 0.0,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress",
        help="Show drops, rows and periods as they are processed (default: on a terminal).",
    )] = None,
) -> None:
    """Process every period in landing/ not yet processed, oldest first.

    Only one run at a time may write a workspace: a second one exits with an error, or waits
    up to --wait seconds for the first to finish.
    """
    import contextlib

    from pipelines.orchestration.flows import run_workspace
    from pipelines.orchestration.runners import RunProgress
    from pipelines.state import StateLocked

    show = console.is_terminal if progress is None else progress
    try:
        load_workspace(workspace)
        with RunProgress(console) if show else contextlib.nullcontext():
            summary = run_workspace(workspace, as_of=as_of, wait_seconds=wait)
    except (WorkspaceError, StateLocked) as exc:
        _fail(str(exc))
    _print_run_summary(summary)
    if summary["refused"]:
        raise typer.Exit(1)


def _print_run_summary(summary: dict) -> None:
    table = Table(title=f"Run {summary['run_id']}")
    for col in ("period", "file", "status", "read", "accepted", "quarantined"):
        table.add_column(col, justify="right" if col in {"read", "accepted", "quarantined"}
                         else "left")
    for period in summary["periods"]:
        for drop in period["drops"]:
            table.add_row(period["period"], drop["rel_path"], drop["status"],
                          str(drop.get("rows_read", "")), str(drop.get("rows_accepted", "")),
                          str(drop.get("rows_quarantined", "")))
    console.print(table)
    from pipelines.orchestration.flows import rotation_note

    for period in summary["periods"]:
        link = period["link"]
        console.print(f"{period['period']}: {link.get('records', 0)} records -> "
                      f"{link.get('persons', 0)} persons", highlight=False)
        note = rotation_note(link)
        if note:
            console.print(f"{period['period']}: {note}", highlight=False)
    if not summary["periods"]:
        console.print(f"nothing new to process ({summary['unchanged']} files unchanged)")
    for refusal in summary["refused"]:
        console.print(f"[yellow]refused:[/yellow] {refusal['reason']}", highlight=False)


@app.command()
def crosswalk(workspace: WorkspaceOpt) -> None:
    """Print the restricted crosswalk (partner record -> person) as CSV on stdout."""
    from pipelines.state import StateStore

    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        _fail(str(exc))
    with StateStore(ws.state_db) as state:
        frame = state.crosswalk()
    frame[["partner_id", "partner_record_id", "person_id"]].to_csv(sys.stdout, index=False)


@app.command()
def status(
    workspace: WorkspaceOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per period and partner: what arrived, when it was processed, and what was quarantined."""
    import json

    from pipelines.orchestration.runners import status_report

    try:
        ws = load_workspace(workspace)
        report = status_report(ws)
    except WorkspaceError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    out = Console()
    table = Table(title=f"Pathlink status: {ws.root}")
    for col in ("period", "partner", "dataset", "status", "read", "accepted", "quarantined",
                "quarantined by rule", "processed (UTC)", "published (UTC)", "contract", "key",
                "code"):
        table.add_column(col, overflow="fold")
    for row in report["files"]:
        table.add_row(row["period"], row["partner_id"], row["dataset"],
                      row["status"] + (f" ({row['reason']})" if row["reason"] else ""),
                      *("" if row[k] is None else str(row[k])
                        for k in ("rows_read", "rows_accepted", "rows_quarantined")),
                      row["quarantined_by_rule"] or "", (row["processed_at"] or "")[:16],
                      (row["published_at"] or "not yet")[:16], row["contract"] or "",
                      (row["key_fingerprint"] or "")[:12], row["code_version"] or "")
    out.print(table)
    for item in report["pending"]:
        out.print(f"arrived, not yet processed: {item['file']}", highlight=False)
    for item in report["refused"]:
        out.print(f"[yellow]refused:[/yellow] {item['reason']}", highlight=False)
    for row in report["keys"]["records"]:
        key = f"key {row['key_id'] or '(not configured)'} {(row['key_fingerprint'] or '')[:12]}"
        if row["linked"]:
            out.print(f"{key} (current): {row['records']} records linked", highlight=False)
        else:
            out.print(f"[yellow]{key} ({row['role']}): {row['records']} records known only "
                      "under this key keep their persons but are not linked[/yellow] (see "
                      "docs/keys.md, Rotation)", highlight=False)
    for period in report["unpublished_periods"]:
        out.print(f"[yellow]period {period}: stored but not yet published[/yellow] "
                  "(an interrupted run; `pathlink run` finishes it)", highlight=False)
    if report["runs"]:
        runs = Table(title="Recent runs")
        for col in ("run", "started (UTC)", "finished (UTC)", "status", "periods", "code"):
            runs.add_column(col, overflow="fold")
        for row in report["runs"]:
            runs.add_row(row["run_id"], (row["started_at"] or "")[:16],
                         (row["finished_at"] or "")[:16], row["status"], row["periods"] or "",
                         row["code_version"] or "")
        out.print(runs)


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The file to check.")],
    dataset: Annotated[str, typer.Option(help="Dataset name, e.g. participants.")],
    partner: Annotated[str | None, typer.Option(help="Partner id (for its age range).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w",
                                                   help="Workspace (for mappings).")] = None,
) -> None:
    """Check a file against its data contract; prints what to fix, never PII values."""
    from pipelines.ingest import validate as intake

    partner_config = None
    if workspace is not None and partner is not None:
        try:
            partner_config = load_workspace(workspace).partner(partner)
        except WorkspaceError as exc:
            _fail(str(exc))
    report = intake.check_file(file, dataset, partner_id=partner, partner_config=partner_config,
                               as_of=date.today())
    typer.echo(intake.render_check_report(report))
    if report.verdict != "accepted":
        raise typer.Exit(1)


@app.command()
def serve(
    workspace: WorkspaceOpt,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "monthly",
) -> None:
    """Serve the monthly flow on its schedule (default: the 5th, 06:00 America/New_York).

    Runs until stopped (Ctrl-C or SIGTERM); needs PREFECT_API_URL pointing at a Prefect server.
    """
    from pipelines.orchestration.deployments import serve as serve_flow

    try:
        load_workspace(workspace)
    except WorkspaceError as exc:
        _fail(str(exc))
    console.print(f"serving pathlink-monthly/{name} for {Path(workspace).resolve()}",
                  highlight=False)
    serve_flow(workspace, name=name)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the released_* relations.")],
    workspace: WorkspaceOpt,
) -> None:
    """Run an evaluator query against the released (suppressed) views only; prints CSV."""
    from pipelines.warehouse.disclosure import QueryRejected, query_released

    try:
        ws = load_workspace(workspace)
        result = query_released(ws.published_db, sql)
    except (WorkspaceError, QueryRejected) as exc:
        _fail(str(exc))
    result.to_csv(sys.stdout, index=False)


@app.command()
def report(
    workspace: WorkspaceOpt,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write.")] = None,
) -> None:
    """Write the static HTML outcome report (released figures only)."""
    from pipelines.warehouse.report import write_report

    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        _fail(str(exc))
    target = out or ws.published_db.parent / "report.html"
    charts = write_report(ws.published_db, target)
    console.print(f"report written to {target}: {', '.join(charts)}", highlight=False)


@app.command()
def export(
    workspace: WorkspaceOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Export every released relation to CSV or Parquet."""
    from pipelines.warehouse.disclosure import export_released

    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        _fail(str(exc))
    for path in export_released(ws.published_db, out, fmt):
        typer.echo(str(path))


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Demo workspace folder.")] = Path(
        "demo-workspace"),
    persons: Annotated[int, typer.Option(help="Synthetic persons.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261,
) -> None:
    """Synthesize two months for seven partners, run both, print quality and counts."""
    from pipelines.cli.demo import run_demo

    try:
        run_demo(directory, persons=persons, seed=seed, console=Console())
    except WorkspaceError as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
