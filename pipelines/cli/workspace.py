"""`pathlink init | partners | run | status | crosswalk | check | serve`: the workspace."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli._clock import STARTED
from pipelines.cli._common import WorkspaceOpt, console, fail
from pipelines.orchestration import progress as progress_events
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
        self._listening = progress_events.listening(self)
        self._listening.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listening.__exit__(None, None, None)
        self.progress.stop()


class StageClock:
    """Sums the run's `stage` events per stage; `startup` is the command's start to the flow's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, event: str, counts: dict[str, Any]) -> None:
        if event == "flow-started":
            self.seconds["startup"] = float(counts["at"]) - STARTED
        elif event == "stage":
            name = str(counts["stage"])
            self.seconds[name] = self.seconds.get(name, 0.0) + float(counts["seconds"])

    def write(self, path: Path) -> None:
        import json
        import time

        path.write_text(json.dumps({**{k: round(v, 3) for k, v in self.seconds.items()},
                                    "command": round(time.perf_counter() - STARTED, 3)},
                                   indent=1), encoding="utf-8")


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
    reprocess: Annotated[list[str] | None, typer.Option(
        "--reprocess", metavar="PARTNER[/YYYY-MM]",
        help="Process this partner's drops (of one period) again even if unchanged; "
             "repeatable.")] = None,
    timings: Annotated[Path | None, typer.Option(
        help="Write the seconds each stage took (JSON, no data) to this file.")] = None,
    allow_shrink: Annotated[bool, typer.Option(
        "--allow-shrink", help="Publish even when nothing was accepted or the release would "
                               "lose more persons than [thresholds] max_person_drop.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="List what would be processed and why; read, write and publish "
                          "nothing.")] = False,
) -> None:
    """Process every period in landing/ not yet processed, oldest first.

    A drop read under a partner map or contract version that has changed since is processed
    again by itself; --reprocess forces it. Both are recorded in the ledger.

    A release is only replaced by a better-founded one: a period in which nothing was
    accepted, or a release that would lose more persons than [thresholds] max_person_drop,
    is not published and the run exits with status 1 (--allow-shrink publishes anyway).
    A secret whose fingerprint is not the one pinned for its key id stops the run before
    anything is written.

    Only one run at a time may write a workspace: a second one exits with an error, or waits
    up to --wait seconds for the first to finish.
    """
    import contextlib

    from pipelines.orchestration.server import start_api
    from pipelines.state import StateLocked
    from pipelines.steps.discover import reprocess_targets

    if as_of is not None:
        try:
            date.fromisoformat(as_of)
        except ValueError:
            fail(f"--as-of must be a date YYYY-MM-DD, not '{as_of}'", code=2)
    if dry_run:
        _dry_run(workspace, date.fromisoformat(as_of) if as_of else date.today(),
                 reprocess or [])
        return
    show = console.is_terminal if progress is None else progress
    clock = StageClock()
    try:
        ws = load_workspace(workspace)
        reprocess_targets(reprocess or [], ws)
        _keys_or_stop(ws)  # a wrong secret stops here: before any server starts or write
        api = start_api(ws.prefect_api_url)  # the server starts while the flows import
        try:
            from pipelines.steps.ingest import warm_up, warm_up_helper

            if not api.server_starting:  # (a starting server is better off with the core)
                warm_up_helper()  # the helper's imports on the other core, meanwhile
            from pipelines.orchestration.flows import run_workspace

            with (api.active(meanwhile=warm_up),
                  RunProgress(console) if show else contextlib.nullcontext(),
                  progress_events.listening(clock)):
                summary = run_workspace(workspace, as_of=as_of, wait_seconds=wait,
                                        reprocess=reprocess or [], allow_shrink=allow_shrink)
        finally:
            api.close()
    except (WorkspaceError, StateLocked) as exc:
        fail(str(exc))
    if timings is not None:
        clock.write(timings)
    _print_run_summary(summary)
    if summary["refused"] or summary.get("held"):
        raise typer.Exit(1)


def _keys_or_stop(ws: Any) -> None:
    """The pinned-key check before the flow starts (the flow checks again, for scheduled
    runs): a wrong secret is one line, and `[notify]` hears of it."""
    from pipelines.steps.keys import KeyPinError, check_keys
    from pipelines.steps.notify import FAILURE, notify, summary_payload

    try:
        for note in check_keys(ws):
            console.print(note, highlight=False)
    except KeyPinError as exc:
        for problem in notify(ws, summary_payload(ws, None, status=FAILURE, error=str(exc))):
            console.print(f"warning: {problem}", highlight=False)
        raise


def _dry_run(workspace: Path, as_of: date, reprocess: list[str]) -> None:
    """`run --dry-run`: what a run would process now and why (nothing read or written)."""
    import textwrap

    from pipelines.steps.run import preview_run

    try:
        preview = preview_run(load_workspace(workspace), as_of, reprocess)
    except WorkspaceError as exc:
        fail(str(exc))

    def say(text: str) -> None:
        for line in textwrap.wrap(text, width=80, subsequent_indent="  ",
                                  break_on_hyphens=False) or [""]:
            typer.echo(line)

    say(f"dry run of {preview['workspace']}: nothing is read, written or published")
    files = sum(len(p["files"]) for p in preview["periods"])
    say(f"would process {len(preview['periods'])} period(s), {files} file(s), oldest first:"
        if preview["periods"] else "nothing to process")
    for period in preview["periods"]:
        for item in period["files"]:
            say(f"  {period['period']}  {item['file']}: {item['explained']}")
        if period["finish"] and not period["files"]:
            say(f"  {period['period']}  (no new file) stored but not yet published: "
                "would be linked and published")
    for hold in preview["held"]:
        kind = "retried by the next run" if hold["period"] in {
            p["period"] for p in preview["periods"]} else "kept until a file for it arrives"
        say(f"held {hold['period']} ({kind}): {hold['reason']}")
    for refusal in preview["refused"]:
        say(f"would refuse: {refusal['reason']}")
    say(f"{preview['unchanged']} file(s) unchanged since processed")
    if preview["key_problem"]:
        say(f"the run would stop before writing anything: {preview['key_problem']}")
        raise typer.Exit(1)

def run_summary_text(summary: dict, width: int = 80) -> list[str]:
    """The run's files as plain lines that fit `width` columns (a terminal or a pipe); a file
    processed for another reason than being new says why below the table."""
    head = f"{'period':7} {'file':36} {'status':10} {'read':>7} {'acc.':>7} {'quar.':>6}"
    lines = [f"Run {summary['run_id']}", head, "-" * len(head)]
    why: list[str] = []
    for period in summary["periods"]:
        for drop in period["drops"]:
            name = f"{drop.get('partner_id', '')}/{drop['rel_path'].rsplit('/', 1)[-1]}"
            lines.append(f"{_fit(period['period'], 7):7} {_fit(name, 36):36} "
                         f"{_fit(drop['status'], 10):10} {drop.get('rows_read', ''):>7} "
                         f"{drop.get('rows_accepted', ''):>7} "
                         f"{drop.get('rows_quarantined', ''):>6}")
            if drop.get("why") not in (None, "new"):
                why.append(f"{period['period']} {name}: processed because {drop['why']}")
    import textwrap

    return [_fit(line, width) for line in lines] + [
        wrapped for line in why for wrapped in
        textwrap.wrap(line, width=width, subsequent_indent="  ", break_on_hyphens=False)]


def _print_run_summary(summary: dict) -> None:
    for line in run_summary_text(summary):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
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
        honoured = link.get("review_must_link", 0) + link.get("review_cannot_link", 0)
        if honoured or link.get("review_waiting"):
            console.print(f"{period['period']}: review decisions honoured: "
                          f"{link.get('review_must_link', 0)} match, "
                          f"{link.get('review_cannot_link', 0)} distinct"
                          + (f"; {link['review_waiting']} wait for a record not linked this run"
                             if link.get("review_waiting") else ""), highlight=False)
    if not summary["periods"]:
        console.print(f"nothing new to process ({summary['unchanged']} files unchanged)")
    for refusal in summary["refused"]:
        console.print(f"[yellow]refused:[/yellow] {refusal['reason']}", highlight=False)
    for hold in summary.get("held", []):
        console.print(f"[red]not published:[/red] {hold['reason']}", highlight=False)
    if summary.get("waiting"):
        console.print(f"waiting for the next run (after the held period): "
                      f"{', '.join(summary['waiting'])}", highlight=False)

def crosswalk(
    workspace: WorkspaceOpt,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write to this file (created 0600) instead of standard output.")
    ] = None,
) -> None:
    """Print the restricted crosswalk (partner record -> person) as CSV.

    Restricted: it ties each partner's record ids to person ids. -o FILE writes it with
    mode 0600; on standard output it warns when a terminal would see it, and a file the
    shell redirected it to is set to 0600.
    """
    import contextlib
    import os
    import stat

    from pipelines.state import StateStore
    from pipelines.workspace.modes import open_private

    try:
        ws = load_workspace(workspace)
        if not ws.state_db.is_file():
            raise WorkspaceError(f"no crosswalk in {ws.root} yet; `pathlink run --workspace "
                                 f"{ws.root}` links the drops first")
    except WorkspaceError as exc:
        fail(str(exc))
    with StateStore(ws.state_db) as state:
        frame = state.crosswalk()[["partner_id", "partner_record_id", "person_id"]]
    if out is not None:
        try:
            with open_private(out, "w", encoding="utf-8", newline="") as fh:
                frame.to_csv(fh, index=False)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror or type(exc).__name__}")
        typer.echo(f"wrote {out} (mode 0600): {len(frame)} records; restricted: keep it "
                   "with the analyst", err=True)
        return
    if sys.stdout.isatty() or sys.stderr.isatty():
        typer.echo("warning: the crosswalk is restricted (partner record ids -> person ids); "
                   "prefer `pathlink crosswalk -o FILE`, which writes it with mode 0600",
                   err=True)
    with contextlib.suppress(OSError, ValueError):  # stdout without a descriptor (a test)
        info = os.fstat(sys.stdout.fileno())
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            os.fchmod(sys.stdout.fileno(), 0o600)
            typer.echo("note: the file standard output goes to was readable by others; its "
                       "mode is now 0600", err=True)
    frame.to_csv(sys.stdout, index=False)

STATUS_COLUMNS = ("period", "partner_id", "dataset", "status", "rows_read", "rows_accepted",
                  "rows_quarantined", "quarantined_by_rule", "processed_at", "published_at",
                  "contract", "key_fingerprint", "code_version", "rel_path", "reason")


def _fit(text: Any, width: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[:width - 1] + "~"


def review_status_lines(review: dict[str, Any], width: int = 80) -> list[str]:
    """Clerical review in `status`: pending pairs, decisions, and precision and recall at the
    match threshold with their intervals and the number of decided pairs they rest on."""
    import textwrap

    if not review:
        return []
    decisions = review["decisions"]
    notes = [f"review: {review['pending_pairs']} of {review['possible_pairs']} possible "
             f"matches of the link of {review['period']} await a decision; decisions: "
             f"{decisions['match']} match, {decisions['distinct']} distinct, "
             f"{decisions['unsure']} unsure (pathlink review list)"]
    acc = review.get("accuracy")
    if acc is None:
        notes.append("accuracy: not estimated yet (pathlink review sample, then decide the "
                     "sample's pairs)")
    else:
        shown = []
        for figure in acc["figures"]:
            if figure["what"].startswith(("pairs at or above the match",
                                          "records linked")):
                value = ("not yet estimable" if figure["estimate"] is None else
                         f"{figure['estimate']:.3f} ({figure['low']:.3f}-{figure['high']:.3f})")
                what = "at the match threshold" if figure["what"].startswith("pairs") \
                    else "of linked records"
                shown.append(f"{figure['measure']} {what} {value}")
        notes.append(f"accuracy (95% intervals): {'; '.join(shown)}; from {acc['labelled']} "
                     f"decided of {acc['sample_size']} sampled pairs (sample "
                     f"{acc['sample_id']}, link of {acc['period']}; pathlink review accuracy)")
    lines = [""]
    for note in notes:
        lines += textwrap.wrap(note, width=width, subsequent_indent="  ",
                               break_on_hyphens=False)
    return lines


def status_compact(report: dict[str, Any], width: int = 80) -> str:
    """`pathlink status` for a terminal of `width` columns (80 by default) or a pipe: one line
    per file with counts, then what is pending, refused or unlinked, each wrapped to fit."""
    import textwrap

    lines = [_fit(f"Pathlink status: {report['workspace']}", width), ""]
    head = (f"{'period':7} {'partner':18} {'dataset':12} {'status':10} "
            f"{'read':>7} {'accepted':>8} {'quar.':>6}")
    lines += [head, "-" * len(head)]
    for row in report["files"]:
        lines.append(
            f"{_fit(row['period'], 7):7} {_fit(row['partner_id'], 18):18} "
            f"{_fit(row['dataset'], 12):12} {_fit(row['status'], 10):10} "
            + " ".join(f"{'' if row[k] is None else row[k]:>{w}}" for k, w in
                       (("rows_read", 7), ("rows_accepted", 8), ("rows_quarantined", 6))))
    if not report["files"]:
        lines.append("(no file processed yet)")
    notes: list[str] = []
    for row in report["files"]:
        where = f"{row['period']} {row['partner_id']} {row['dataset']}"
        if row["status"] == "rejected" and row.get("reason"):
            notes.append(f"rejected {where}: {row['reason']}")
        if row.get("quarantined_by_rule"):
            notes.append(f"quarantined {where}: {row['quarantined_by_rule']}")
    notes += [f"arrived, not yet processed: {item['file']}" for item in report["pending"]]
    notes += [f"refused: {item['reason']}" for item in report["refused"]]
    for row in report["keys"]["records"]:
        if not row["linked"]:
            notes.append(f"key {row['key_id'] or '(not configured)'} ({row['role']}): "
                         f"{row['records']} records known only under this key keep their "
                         "persons but are not linked (docs/keys.md, Rotation)")
    notes += [f"period {p}: stored but not yet published (an interrupted run; `pathlink "
              "run` finishes it)" for p in report["unpublished_periods"]]
    if notes:
        lines.append("")
        for note in notes:
            lines += textwrap.wrap(note, width=width, subsequent_indent="  ",
                                   break_on_hyphens=False)
    lines += review_status_lines(report.get("review") or {}, width)
    if report["runs"]:
        last = report["runs"][0]
        lines += ["", _fit(f"last run: {last['run_id']} {last['status']} "
                           f"{(last['started_at'] or '')[:16]} UTC", width)]
    lines += ["", "(more: --wide, --format csv|json; fixes per row: pathlink feedback)"]
    return "\n".join(lines) + "\n"


def status(
    workspace: WorkspaceOpt,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    wide: Annotated[bool, typer.Option("--wide", help="Every column (needs a wide terminal).")
                    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Per period and partner: what arrived, when it was processed, and what was quarantined.

    The default layout fits 80 columns and a pipe; --wide shows every column.
    """
    import csv
    import json

    from pipelines.steps.status import status_report

    if as_json:
        fmt = "json"
    if fmt not in ("table", "csv", "json"):
        fail(f"unknown --format '{fmt}'; use table, csv or json", code=2)
    try:
        ws = load_workspace(workspace)
        report = status_report(ws)
    except WorkspaceError as exc:
        fail(str(exc))
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(STATUS_COLUMNS),
                                extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(report["files"])
        return
    if not wide:
        typer.echo(status_compact(report), nl=False)
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
    for line in review_status_lines(report.get("review") or {}, width=out.width):
        out.print(line, highlight=False, markup=False)
    if report["runs"]:
        runs = Table(title="Recent runs")
        for col in ("run", "started (UTC)", "finished (UTC)", "status", "periods", "code"):
            runs.add_column(col, overflow="fold")
        for row in report["runs"]:
            runs.add_row(row["run_id"], (row["started_at"] or "")[:16],
                         (row["finished_at"] or "")[:16], row["status"], row["periods"] or "",
                         row["code_version"] or "")
        out.print(runs)


def feedback(
    workspace: WorkspaceOpt,
    partner: Annotated[str, typer.Option("--partner", help="The partner to write for.")],
    out: Annotated[Path, typer.Option("--out", "-o",
                                      help="File to write (.csv, .json, or text).")],
    period: Annotated[str | None, typer.Option(
        help="Period YYYY-MM (default: the partner's latest).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv, json or text (default: from the file name).")] = None,
) -> None:
    """Write what a partner should fix in its latest drops: rows, fields, rules and fixes.

    Row numbers are the partner's own (the header row counts); never a value.
    """
    from pipelines.ingest.landing import PERIOD_RE
    from pipelines.steps.feedback import partner_feedback, render_feedback

    chosen = fmt or {".csv": "csv", ".json": "json"}.get(out.suffix.lower(), "text")
    if chosen not in ("csv", "json", "text"):
        fail(f"unknown --format '{chosen}'; use csv, json or text", code=2)
    if period is not None and not PERIOD_RE.match(period):
        fail(f"--period must be YYYY-MM, not '{period}'", code=2)
    try:
        ws = load_workspace(workspace)
        report = partner_feedback(ws, partner, period)
    except WorkspaceError as exc:
        fail(str(exc))
    try:
        out.write_text(render_feedback(report, chosen), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    console.print(f"wrote {out}: {len(report['issues'])} issues in "
                  f"{len(report['files'])} file(s) of {partner} for {report['period']}",
                  highlight=False)


def template(
    dataset: Annotated[str, typer.Argument(help="Dataset, e.g. participants.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write to.")] = Path("."),
) -> None:
    """Write DATASET.csv (the header row) and DATASET.xlsx (a sheet to fill in, and a `fields`
    sheet saying what each column holds) from the dataset's contract."""
    from pipelines.ingest.template import write_template

    try:
        paths = write_template(dataset, out)
    except KeyError:
        fail(f"unknown dataset '{dataset}'; expected one of {', '.join(_datasets())}", code=2)
    except (FileExistsError, OSError) as exc:
        fail(str(exc))
    for path in paths:
        typer.echo(str(path))


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
    map_file: Annotated[Path | None, typer.Option(
        "--map", help="TOML with the partner's [partners.<id>] settings (needs --partner), "
                      "for a check away from the workspace.")] = None,
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
    if map_file is not None:
        from pipelines.workspace import partner_settings

        if partner is None:
            fail("--map needs --partner (whose [partners.<id>] table to use)", code=2)
        try:
            partner_config = partner_settings(map_file, partner)
        except WorkspaceError as exc:
            fail(str(exc), code=2)
    elif workspace is not None:
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
            from pipelines.steps.keys import check_keys

            check_keys(ws, pin_unpinned=False)  # a wrong secret stops here, before any write
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
    start_server: Annotated[bool, typer.Option(
        "--start-server/--no-start-server",
        help="Without PREFECT_API_URL, start a local Prefect server whose database lives in "
             "the workspace (default), or refuse.")] = True,
) -> None:
    """Serve the monthly flow on its schedule (default: the 5th, 06:00 America/New_York).

    Scheduling needs a Prefect server that keeps running. With PREFECT_API_URL set, that
    server is used (it must answer); otherwise a local one is started on 127.0.0.1 with its
    database in the workspace's state/prefect/, and stopped with this command. Runs until
    stopped (Ctrl-C or SIGTERM).
    """
    from pipelines.orchestration.deployments import serve as serve_flow

    try:
        load_workspace(workspace)
        serve_flow(workspace, name=name, start_server=start_server,
                   announce=typer.echo)  # one unwrapped line: the URL stays whole
    except WorkspaceError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        console.print("stopped", highlight=False)


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
    app.command()(feedback)
    app.command()(template)
    app.command()(serve)
