"""`pathlink demo` and `pathlink synth`: synthetic months, both runs, and a quality table."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.cli._common import console as err_console
from pipelines.cli._common import fail
from pipelines.workspace import CONFIG_NAME, WorkspaceError, init_workspace

DEMO_MARKER = ".pathlink-demo"


def previous_periods(today: date, count: int = 2) -> list[str]:
    """The `count` whole months before `today`, oldest first (e.g. 2026-09, 2026-10)."""
    periods = []
    year, month = today.year, today.month
    for _ in range(count):
        month -= 1
        if month == 0:
            year, month = year - 1, 12
        periods.append(f"{year:04d}-{month:02d}")
    return sorted(periods)


def _prepare(directory: Path) -> Path:
    directory = directory.resolve()
    if directory.exists():
        if not (directory / DEMO_MARKER).exists() and any(directory.iterdir()):
            raise WorkspaceError(
                f"{directory} exists and is not a previous demo workspace; choose another --dir"
            )
        shutil.rmtree(directory)
    return directory


def truth_by_record(truth_csv: Path) -> pd.DataFrame:
    """Ground truth keyed like the crosswalk: record_key -> true person id."""
    truth = pd.read_csv(truth_csv, dtype=str)
    truth["record_key"] = truth["partner_id"] + ":" + truth["partner_record_id"]
    return truth.drop_duplicates("record_key", keep="last")[["record_key", "true_person_id"]]


def evaluate_workspace(workspace: Path, truth_csv: Path) -> dict[str, float]:
    """Pairwise precision, recall and F1 of the latest crosswalk against synthetic truth."""
    from linkage.evaluate import pairwise_scores
    from pipelines.state import StateStore
    from pipelines.workspace import load_workspace

    ws = load_workspace(workspace)
    with StateStore(ws.state_db) as state:
        crosswalk = state.crosswalk()
        snapshots = state.crosswalk_snapshots()
    truth = truth_by_record(truth_csv)
    clusters = crosswalk.rename(columns={"person_id": "cluster_id"})[["record_key", "cluster_id"]]
    scores = pairwise_scores(clusters, truth.rename(columns={"true_person_id": "true_id"}))
    periods = sorted(snapshots["period"].unique())
    if len(periods) >= 2:
        first = snapshots[snapshots["period"] == periods[0]]
        last = snapshots[snapshots["period"] == periods[-1]]
        kept = first.merge(last, on="record_key", suffixes=("_first", "_last"))
        scores["id_stability"] = float(
            (kept["person_id_first"] == kept["person_id_last"]).mean()) if len(kept) else 1.0
    return scores


def run_demo(directory: Path, *, persons: int, seed: int, console: Console) -> dict:
    """Build the demo workspace, run both months, print the summary table."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    started = time.perf_counter()
    directory = _prepare(directory)
    periods = previous_periods(date.today())
    from pipelines.orchestration.server import start_api

    api = start_api()  # the Prefect server starts while the months are synthesized
    from pipelines.orchestration.flows import run_workspace
    from pipelines.steps.ingest import warm_up
    from pipelines.synthetic.outcomes import STATE_WAGE_PARTNER, generate_outcomes
    from pipelines.synthetic.participants import PARTNERS, generate

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        step = progress.add_task("creating workspace", total=None)
        profiles = {pid: {"name": p.display_name, "age_min": p.age_min, "age_max": p.age_max}
                    for pid, p in PARTNERS.items()}
        profiles[STATE_WAGE_PARTNER] = {"name": "CT Department of Labor (UI wage records)"}
        ws = init_workspace(directory, [*PARTNERS, STATE_WAGE_PARTNER], key_id="demo",
                            partner_profiles=profiles)
        (directory / DEMO_MARKER).write_text("created by `pathlink demo`\n")
        progress.update(step, description=f"synthesizing {persons} persons, {periods}")
        synthetic = directory / "synthetic"
        generate(synthetic, seed=seed, persons=persons, periods=periods)
        generate_outcomes(synthetic, synthetic / "truth" / "participants_truth.csv", seed=seed)
        shutil.copytree(synthetic / "landing", ws.landing, dirs_exist_ok=True)
        progress.update(step, description="running the monthly flow (Prefect, ephemeral)")
        try:
            with api.active(meanwhile=warm_up):
                summary = run_workspace(directory, seed=seed)
        finally:
            api.close()
        progress.update(step, description="evaluating against the synthetic truth")
        scores = evaluate_workspace(directory, synthetic / "truth" / "participants_truth.csv")
        progress.update(step, description="done", completed=1, total=1)

    table = Table(title="Pathlink demo: participant rows per partner (both months)")
    for col in ("partner", "rows read", "accepted", "quarantined"):
        table.add_column(col, justify="left" if col == "partner" else "right")
    per_partner: dict[str, list[int]] = {}
    events: dict[str, list[int]] = {}
    for period in summary["periods"]:
        for drop in period["drops"]:
            if drop["dataset"] != "participants":
                acc = events.setdefault(drop["dataset"], [0, 0, 0])
                acc[0] += int(drop.get("rows_read", 0))
                acc[1] += int(drop.get("rows_accepted", 0))
                acc[2] += int(drop.get("rows_quarantined", 0))
                continue
            acc = per_partner.setdefault(drop["partner_id"], [0, 0, 0])
            acc[0] += int(drop.get("rows_read", 0))
            acc[1] += int(drop.get("rows_accepted", 0))
            acc[2] += int(drop.get("rows_quarantined", 0))
    for partner_id, (read, accepted, quarantined) in sorted(per_partner.items()):
        table.add_row(partner_id, str(read), str(accepted), str(quarantined))
    totals = [sum(v[i] for v in per_partner.values()) for i in range(3)]
    table.add_row("[b]all partners[/b]", *(f"[b]{v}[/b]" for v in totals))
    for dataset, (read, accepted, quarantined) in sorted(events.items()):
        table.add_row(f"[dim]{dataset} (all partners)[/dim]", str(read), str(accepted),
                      str(quarantined))
    console.print(table)

    import duckdb  # here: commands that never open a database (`check`) skip its import

    con = duckdb.connect(str(ws.warehouse_db), read_only=True)  # the analyst's warehouse
    try:
        n_persons = con.execute("SELECT count(*) FROM person").fetchall()[0][0]
        multi = con.execute(
            "SELECT count(*) FROM (SELECT person_id FROM participation GROUP BY person_id "
            "HAVING count(DISTINCT partner_id) >= 2)"
        ).fetchall()[0][0]
    finally:
        con.close()
    elapsed = time.perf_counter() - started
    results = Table(title="Pathlink demo: linkage")
    results.add_column("measure")
    results.add_column("value", justify="right")
    results.add_row("persons", str(n_persons))
    results.add_row("persons served by 2+ partners", str(multi))
    results.add_row("pairwise precision", f"{scores['precision']:.4f}")
    results.add_row("pairwise recall", f"{scores['recall']:.4f}")
    results.add_row("pairwise F1", f"{scores['f1']:.4f}")
    if "id_stability" in scores:
        results.add_row(f"{periods[0]} records keeping their person ID",
                        f"{scores['id_stability']:.2%}")
    results.add_row("wall time", f"{elapsed:.1f} s")
    console.print(results)
    console.print(f"published (aggregates only): {ws.published_db}\n"
                  f"evaluator report: {ws.published_db.parent / 'report.html'}\n"
                  f"restricted state: {ws.state_dir}   config: {directory / CONFIG_NAME}",
                  highlight=False)
    return {"summary": summary, "scores": scores, "persons": n_persons, "multi": multi,
            "seconds": elapsed}


def synth(
    directory: Annotated[Path, typer.Argument(help="Output folder (landing/ and truth/).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261,
    persons: Annotated[int, typer.Option(help="Number of true persons.")] = 3000,
    periods: Annotated[str, typer.Option(help="Comma-separated periods.")] = "2026-09,2026-10",
) -> None:
    """Write seeded synthetic monthly extracts for seven Hartford partners, truth apart."""
    import re

    from pipelines.synthetic.participants import generate

    chosen = [p.strip() for p in periods.split(",") if p.strip()]
    bad = [p for p in chosen if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", p)]
    if bad or not chosen:
        fail(f"--periods must be YYYY-MM,YYYY-MM,...; not {', '.join(bad) or 'empty'}", code=2)
    try:
        summary = generate(directory, seed=seed, persons=persons, periods=chosen)
    except OSError as exc:
        fail(f"cannot write to {directory}: {exc.strerror or type(exc).__name__}")
    err_console.print(f"synthetic drops written to {Path(directory) / 'landing'}; truth in "
                  f"{Path(directory) / 'truth'}: {summary}", highlight=False)


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Demo workspace folder.")] = Path(
        "demo-workspace"),
    persons: Annotated[int, typer.Option(help="Synthetic persons.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20261,
) -> None:
    """Synthesize two months for seven partners, run both, print quality and counts."""
    try:
        run_demo(directory, persons=persons, seed=seed, console=Console())
    except WorkspaceError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the demo to {directory}: {exc.strerror or type(exc).__name__}")


def register(app: typer.Typer) -> None:
    """Add ``demo`` and ``synth`` to the main app."""
    app.command()(synth)
    app.command()(demo)
