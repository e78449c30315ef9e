"""`pathlink review list | show | decide | import | packet | sample | accuracy | thresholds`.

Clerical review of the latest link (docs/review.md). The terminal never shows a personal
value, token or filter: record keys, comparison names, agreement categories, weights, counts.
Only `review show` reads raw records, into an HTML page under `state/review/`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.cli._common import WorkspaceOpt, console, fail
from pipelines.workspace import WorkspaceError, load_workspace

ByOpt = Annotated[str | None, typer.Option("--by", help="Who decides (default: login name).")]


def _ws(workspace: Path):
    try:
        return load_workspace(workspace)
    except WorkspaceError as exc:
        fail(str(exc))


def waterfall_lines(pair: dict[str, Any], width: int = 80) -> list[str]:
    """A pair as plain lines: its keys, weight and class, then one line per step."""
    head = (f"{pair['pair_id']}  {pair['match_weight']:+.2f} {pair['match_class']}"
            f"{'  linked' if pair['linked'] else '  apart'}"
            + (f"  decided {pair['decision']} ({pair['decided_by']})" if pair.get("decision")
               else ""))
    lines = [head, f"  {pair['record_key_l']}  ~  {pair['record_key_r']}"]
    for step in pair["waterfall"]["steps"]:
        text = (f"    {step['step'][:18]:18} {step['category']:8} {step['bits']:+7.2f}  "
                f"{step['meaning']}")
        lines.append(text if len(text) <= width else text[:width - 1] + "~")
    counts = pair["waterfall"]["counts"]
    lines.append(f"    {'= weight':18} {'':8} {pair['waterfall']['total']:+7.2f}  "
                 + ", ".join(f"{n} {c}" for c, n in counts.items()))
    return lines


def list_pairs(
    workspace: WorkspaceOpt,
    record: Annotated[str | None, typer.Option(
        help="Every scored pair of this record (partner_id:partner_record_id), matches too.")
    ] = None,
    sample: Annotated[bool, typer.Option("--sample", help="The latest review sample's pairs.")
                      ] = False,
    decided: Annotated[bool, typer.Option("--decided", help="Keep decided pairs in the list.")
                       ] = False,
    fmt: Annotated[str, typer.Option("--format", help="text, csv or json.")] = "text",
    limit: Annotated[int, typer.Option(help="At most this many pairs (0: all).")] = 0,
) -> None:
    """The pairs to review, each with its weight and what each comparison contributed.

    Default: the possible matches without a decision. Never a value, token or filter.
    """
    from pipelines.steps.review import review_list

    if fmt not in ("text", "csv", "json"):
        fail(f"unknown --format '{fmt}'; use text, csv or json", code=2)
    try:
        listing = review_list(_ws(workspace), record=record, sample=sample, decided=decided)
    except WorkspaceError as exc:
        fail(str(exc))
    pairs = listing["pairs"][:limit] if limit > 0 else listing["pairs"]
    if fmt == "json":
        typer.echo(json.dumps({**listing, "pairs": pairs}, indent=2, default=str))
        return
    if fmt == "csv":
        names = [s["step"] for s in pairs[0]["waterfall"]["steps"]
                 if s["category"]] if pairs else []
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["pair_id", "record_key_l", "record_key_r", "match_weight",
                         "match_class", "linked", "decision",
                         *(f"{n}_category" for n in names), *(f"{n}_bits" for n in names)])
        for pair in pairs:
            steps = {s["step"]: s for s in pair["waterfall"]["steps"]}
            writer.writerow([pair["pair_id"], pair["record_key_l"], pair["record_key_r"],
                             f"{pair['match_weight']:.4f}", pair["match_class"],
                             pair["linked"], pair["decision"] or "",
                             *(steps[n]["category"] for n in names),
                             *(f"{steps[n]['bits']:.4f}" for n in names)])
        return
    what = ("sample " + str(listing["sample_id"]) if sample else
            f"pairs of {record}" if record else "possible matches without a decision")
    typer.echo(f"Link of {listing['period']} (run {listing['run_id']}): {len(pairs)} {what}; "
               f"thresholds: match {listing['thresholds']['match']:g}, possible "
               f"{listing['thresholds']['possible']:g} bits")
    for pair in pairs:
        typer.echo("")
        for line in waterfall_lines(pair):
            typer.echo(line)
    if pairs:
        typer.echo("\nSee a pair side by side: pathlink review show PAIR; decide: pathlink "
                   "review decide PAIR match|distinct|unsure")


def show(
    pair: Annotated[str, typer.Argument(help="Pair id (R + 12 hex), or a record key.")],
    workspace: WorkspaceOpt,
    other: Annotated[str | None, typer.Argument(
        help="The second record key, when PAIR is a record key.")] = None,
) -> None:
    """Write the two records side by side, with the waterfall, to state/review/PAIR.html.

    The page holds personal data read from landing/: it stays under state/ (restricted).
    Where a record was encoded on its partner's machine the page says so: send packets.
    """
    from pipelines.steps.review_pages import show_pair

    try:
        shown = show_pair(_ws(workspace), pair, other)
    except WorkspaceError as exc:
        fail(str(exc))
    typer.echo(f"wrote {shown['path']} (restricted: personal data; open it in a browser on "
               "this machine, delete it when done)")
    for key, why in shown["why_not"].items():
        typer.echo(f"  {key}: not shown: {why}")


def decide(
    pair: Annotated[str, typer.Argument(help="Pair id, or the first record key.")],
    decision: Annotated[str, typer.Argument(
        help="match, distinct or unsure; after PAIR, or after the two record keys.")],
    workspace: WorkspaceOpt,
    third: Annotated[str | None, typer.Argument(hidden=True)] = None,
    by: ByOpt = None,
) -> None:
    """Decide a pair: match (must-link), distinct (cannot-link) or unsure (neither).

    PAIR is a pair id, or two record keys (`pathlink review decide youth_dept:Y1
    community_college:C7 distinct`). Decisions are kept with who and when, and clustering
    honours them from the next run on (a run with nothing new links the latest period again).
    """
    from pipelines.steps.review import decide as decide_pair

    other = None
    if third is not None:  # PAIR KEY DECISION: two record keys
        other, decision = decision, third
    try:
        done = decide_pair(_ws(workspace), pair, decision, other=other, by=by)
    except WorkspaceError as exc:
        fail(str(exc))
    console.print(f"{done['decision_id']}: {done['pair_id']} ({done['record_key_l']} ~ "
                  f"{done['record_key_r']}) decided {done['decision']} by {done['decided_by']};"
                  " takes effect at the next `pathlink run`", highlight=False)


def import_(
    file: Annotated[Path, typer.Argument(help="CSV of decisions (a returned packet works).")],
    workspace: WorkspaceOpt,
    by: ByOpt = None,
) -> None:
    """Import decisions from a CSV: pair_id (or partner_id_l, partner_record_id_l,
    partner_id_r, partner_record_id_r), decision, and optionally decided_by."""
    from pipelines.steps.review import import_decisions

    try:
        done = import_decisions(_ws(workspace), file, by=by)
    except WorkspaceError as exc:
        fail(str(exc))
    counts = ", ".join(f"{n} {d}" for d, n in sorted(done["by_decision"].items())) or "none"
    console.print(f"imported {done['stored']} decisions ({counts}); {done['skipped_empty']} rows "
                  "without a decision skipped", highlight=False)


def packet(
    workspace: WorkspaceOpt,
    partner: Annotated[str, typer.Option("--partner", help="The partner to write for.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
    every: Annotated[bool, typer.Option(
        "--all", help="Every pending pair of the partner (default: those with a record "
                      "encoded on a partner's machine).")] = False,
) -> None:
    """Write a partner its own record ids in the pending pairs, the other partner and the
    pair's agreement profile (agree/close/disagree/missing per comparison), to settle with the
    other partner under their agreement; it comes back through `pathlink review import`."""
    from pipelines.steps.review import write_packet

    try:
        done = write_packet(_ws(workspace), partner, out, every=every)
    except WorkspaceError as exc:
        fail(str(exc))
    console.print(f"wrote {done['path']}: {done['pairs']} pending pairs of {partner} "
                  f"(link of {done['period']})", highlight=False)


def sample(
    workspace: WorkspaceOpt,
    size: Annotated[int, typer.Option(help="Pairs to draw.")] = 200,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: fresh).")] = None,
    by: ByOpt = None,
) -> None:
    """Draw a stratified random sample of the latest link's pairs (matches, possible matches
    and non-matches) for review, so accuracy estimates are not biased toward hard cases."""
    from pipelines.steps.review import draw_sample

    if size < 1:
        fail("--size must be at least 1", code=2)
    try:
        drawn = draw_sample(_ws(workspace), size=size, seed=seed, by=by)
    except WorkspaceError as exc:
        fail(str(exc))
    classes = ", ".join(f"{n} {c}" for c, n in sorted(drawn["by_class"].items()))
    console.print(f"sample {drawn['sample_id']}: {drawn['size']} pairs ({classes}) of the link "
                  f"of {drawn['period']}, seed {drawn['seed']}; decide them: pathlink review "
                  "list --sample", highlight=False)


def accuracy_lines(report: dict[str, Any]) -> list[str]:
    """The estimate as plain lines (what `status` and `review accuracy` print)."""
    lines = [f"Linkage accuracy, from review sample {report['sample_id']} of the link of "
             f"{report['period']}: {report['labelled']} of {report['sample_size']} pairs "
             "decided"]
    for f in report["figures"]:
        value = ("not yet estimable (a stratum has no decided pair)" if f["estimate"] is None
                 else f"{f['estimate']:.3f} (95% interval {f['low']:.3f}-{f['high']:.3f})")
        lines.append(f"  {f['measure']:9} {value}  {f['what']}")
    tail = report["tail"]
    lines.append(f"  below {tail['below']:g} bits ({tail['pairs']:,} candidate pairs) the "
                 f"model's expectation ({tail['expected_matches']:.2f} matches) stands in for "
                 "labels; pairs blocking never compared are not counted")
    return lines


def accuracy(
    workspace: WorkspaceOpt,
    sample_id: Annotated[str | None, typer.Option("--sample", help="Sample id (default: "
                                                                   "latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Precision and recall at the thresholds, with 95% intervals, from a review sample's
    decided pairs, and the number of pairs they rest on."""
    from pipelines.steps.review import accuracy_report

    if fmt not in ("text", "json"):
        fail(f"unknown --format '{fmt}'; use text or json", code=2)
    try:
        report = accuracy_report(_ws(workspace), sample_id=sample_id, table=fmt == "json")
    except WorkspaceError as exc:
        fail(str(exc))
    if report is None:
        fail("no review sample yet: draw one with `pathlink review sample`")
    if fmt == "json":
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    for line in accuracy_lines(report):
        typer.echo(line)


def thresholds(workspace: WorkspaceOpt) -> None:
    """Write state/review/thresholds.html: the match-weight distribution with the thresholds
    and the expected precision and recall at nearby thresholds from the review labels."""
    from pipelines.steps.review_pages import threshold_page

    try:
        done = threshold_page(_ws(workspace))
    except WorkspaceError as exc:
        fail(str(exc))
    typer.echo(f"wrote {done['path']}; the thresholds are [linkage] in pathlink.toml")


def register(app: typer.Typer) -> None:
    """Add the ``review`` group to the main app."""
    review_app = typer.Typer(help="Clerical review: pairs, decisions, packets, accuracy.",
                             no_args_is_help=True)
    review_app.command("list")(list_pairs)
    review_app.command("show")(show)
    review_app.command("decide")(decide)
    review_app.command("import")(import_)
    review_app.command("packet")(packet)
    review_app.command("sample")(sample)
    review_app.command("accuracy")(accuracy)
    review_app.command("thresholds")(thresholds)
    app.add_typer(review_app, name="review")
