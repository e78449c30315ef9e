"""`pathlink init | partners | run | status | crosswalk | check | serve`: the workspace."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli._common import WorkspaceOpt, console, fail
from pipelines.orchestration import progress
from pipelines.workspace import WorkspaceError, add_partner, init_workspace, load_workspace


class RunProgress:
    """A rich progress display fed by `progress.emit()` events: drops, rows read, periods."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                                 console=console, transient=False)
        self.drops = self.progress.add_task("drops", total=None, detail="")
        self.periods = self.progress.add_task("periods", total=None, detail="")
        self.rows = 0

    def __call__(self, event: str, counts: dict[str, Any]) -> None:
        if event == "discovered":
            self.progress.update(self.drops, total=counts.get("drops", 0))
            self.progress.update(self.periods, total=counts.get("periods", 0))
        elif event == "drop":
            self.rows += int(counts.get("rows_read") or 0)
            self.progress.update(self.drops, advance=1,
                                 detail=f"{self.rows:,} rows read; last: {counts['rel_path']} "
                                        f"({counts.get('status')})")
        elif event == "linked":
            self.progress.update(self.periods, detail=f"{counts.get('period')}: "
                                 f"{counts.get('records', 0):,} records -> "
                                 f"{counts.get('persons', 0):,} persons; publishing")
        elif event == "published":
            self.progress.update(self.periods, advance=1,
                                 detail=f"{counts.get('period')} published")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        self._listening = progress.listening(self)
        self._listening.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listening.__exit__(None, None, None)
        self.progress.stop()


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
        fail(str(exc))
    console.print(f"workspace {ws.root} created; key id {ws.key_id}; partners: "
                  f"{', '.join(ws.partners) or '(none yet)'}", highlight=False)

def partners_add(
    partner_id: Annotated[str, typer.Argument(help="Partner id (lowercase, digits, _).")],
    workspace: WorkspaceOpt,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
) -> None:
    """Register a partner so its drops in landing/<partner_id>/ are accepted."""
    try:
        add_partner(workspace, partner_id, name=name)
    except WorkspaceError as exc:
        fail(str(exc))
    console.print(f"partner {partner_id} registered", highlight=False)

def partners_list(workspace: WorkspaceOpt) -> None:
    """List registered partners."""
    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        fail(str(exc))
    for partner in ws.partners.values():
        typer.echo(f"{partner.partner_id}\t{partner.name}")

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
    from pipelines.state import StateLocked

    show = console.is_terminal if progress is None else progress
    try:
        load_workspace(workspace)
        with RunProgress(console) if show else contextlib.nullcontext():
            summary = run_workspace(workspace, as_of=as_of, wait_seconds=wait)
    except (WorkspaceError, StateLocked) as exc:
        fail(str(exc))
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
    from pipelines.orchestration.summary import rotation_note

    for period in summary["periods"]:
        link = period["link"]
        alone = link.get("no_identifiers", 0)
        console.print(f"{period['period']}: {link.get('records', 0)} records -> "
                      f"{link.get('persons', 0)} persons"
                      + (f" ({alone} with nothing to link on, each its own person)"
                         if alone else ""), highlight=False)
        note = rotation_note(link)
        if note:
            console.print(f"{period['period']}: {note}", highlight=False)
    if not summary["periods"]:
        console.print(f"nothing new to process ({summary['unchanged']} files unchanged)")
    for refusal in summary["refused"]:
        console.print(f"[yellow]refused:[/yellow] {refusal['reason']}", highlight=False)

def crosswalk(workspace: WorkspaceOpt) -> None:
    """Print the restricted crosswalk (partner record -> person) as CSV on stdout."""
    from pipelines.state import StateStore

    try:
        ws = load_workspace(workspace)
    except WorkspaceError as exc:
        fail(str(exc))
    with StateStore(ws.state_db) as state:
        frame = state.crosswalk()
    frame[["partner_id", "partner_record_id", "person_id"]].to_csv(sys.stdout, index=False)

def status(
    workspace: WorkspaceOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per period and partner: what arrived, when it was processed, and what was quarantined."""
    import json

    from pipelines.steps.status import status_report

    try:
        ws = load_workspace(workspace)
        report = status_report(ws)
    except WorkspaceError as exc:
        fail(str(exc))
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

def check(
    file: Annotated[Path, typer.Argument(help="The file to check.")],
    dataset: Annotated[str | None, typer.Option(
        help="Dataset name, e.g. participants (default: the file's name).")] = None,
    partner: Annotated[str | None, typer.Option(
        help="Partner id (its map, sheet and age range; default: from a landing path).")] = None,
    workspace: Annotated[Path | None, typer.Option("--workspace", "-w",
                                                   help="Workspace (for mappings).")] = None,
    engine: Annotated[str, typer.Option(
        help="vectorised (default) or gx: validate with Great Expectations (same findings, "
             "slower).")] = "vectorised",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """Check a file against its data contract; prints what to fix, never PII values.

    Shows how each header was placed (name, alias or your map) and suggests map lines for
    headers it could not place; `--format csv|json` lists every issue.
    """
    from pipelines import ingest
    from pipelines.ingest.landing import PERIOD_RE

    if fmt not in ("table", "csv", "json"):
        fail(f"unknown --format '{fmt}'; use table, csv or json", code=2)
    if not file.is_file():
        fail(f"{file}: no such file", code=2)
    if dataset is None:
        stem = file.name.split(".")[0].lower()
        if stem not in _datasets():
            fail(f"cannot tell the dataset from the name {file.name}; pass --dataset "
                 f"({', '.join(_datasets())})", code=2)
        dataset = stem
    partner_config, limits = None, None
    if workspace is not None:
        try:
            ws = load_workspace(workspace)
            if partner is None:  # a drop in the workspace's landing/: its folder says whose
                rel = file.resolve().relative_to(ws.landing.resolve()) \
                    if file.resolve().is_relative_to(ws.landing.resolve()) else None
                if rel is not None and len(rel.parts) == 3 and PERIOD_RE.match(rel.parts[1]):
                    partner = rel.parts[0]
            if partner is not None:
                partner_config = ws.partner(partner)
            limits = ws.limits
        except WorkspaceError as exc:
            fail(str(exc))
    if engine not in ingest.ENGINES:
        fail(f"--engine must be one of {', '.join(ingest.ENGINES)}", code=2)
    report = ingest.check_file(file, dataset, partner_id=partner, partner_config=partner_config,
                               as_of=date.today(), engine=engine, limits=limits)
    if fmt == "json":
        text = ingest.check_report_json(report)
    elif fmt == "csv":
        rows = ingest.issue_rows(report)
        text = ingest.rows_csv(rows)
        for item in ingest.summary_by_rule(rows):
            typer.echo(f"{item['rows']:>6}  {item['rule']}  {item['field']}  {item['action']}",
                       err=True)
    else:
        text = ingest.render_check_report(report, partner_id=partner)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}: {report.verdict}, {len(report.issues)} issues", err=True)
    else:
        typer.echo(text, nl=False)
    if report.verdict != "accepted":
        raise typer.Exit(1)


def _datasets() -> tuple[str, ...]:
    from data_contracts import DATASETS

    return DATASETS


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
        fail(str(exc))
    console.print(f"serving pathlink-monthly/{name} for {Path(workspace).resolve()}",
                  highlight=False)
    serve_flow(workspace, name=name)


def register(app: typer.Typer) -> None:
    """Add the workspace commands and the ``partners`` group to the main app."""
    partners_app = typer.Typer(help="Register and list partners.", no_args_is_help=True)
    partners_app.command("add")(partners_add)
    partners_app.command("list")(partners_list)
    app.command()(init)
    app.add_typer(partners_app, name="partners")
    app.command()(run)
    app.command()(crosswalk)
    app.command()(status)
    app.command()(check)
    app.command()(serve)
