"""The analyst's review pages: one pair side by side, and the threshold-selection chart.

Both are static HTML written under `state/review/` (0700, files 0600), never published: the
pair page holds the two raw records as the partners sent them (read from `landing/` at the
moment it is written), the chart only counts and estimates. Every text is HTML-escaped; the
pages carry a Content-Security-Policy that allows no script, no network and no frame.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts import pii_columns
from linkage.normalize import normalize_participants
from pipelines.ingest import FileRejected
from pipelines.ingest.landing import sha256_file
from pipelines.ingest.read import read_table
from pipelines.state import StateStore
from pipelines.steps.link import census_frame
from pipelines.steps.review import ReviewError, accuracy_report, pair_detail
from pipelines.workspace import Workspace

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
       "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1.5em auto; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.restricted { background: #fde8e8; border-left: 5px solid #c0392b; padding: 0.6em; }
.same { color: #1e7b34; } .differs { color: #b03a2e; font-weight: bold; }
.missing { color: #888; font-style: italic; }
td.bits { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 10px; }
.pos { background: #2e933c; } .neg { background: #c0392b; }
code { background: #f3f3f3; padding: 1px 4px; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<meta name='referrer' content='no-referrer'>"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}"
            "</body></html>\n")


def _write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def review_dir(ws: Workspace) -> Path:
    """Where the review pages go: `state/review/` (restricted, never published)."""
    return ws.state_dir / "review"


# -- one pair, side by side -------------------------------------------------------------------

def _raw_record(ws: Workspace, source: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """The record as its partner sent it, from landing/, or None and why not."""
    rel = source.get("rel_path")
    if rel is None or (isinstance(rel, float) and np.isnan(rel)):
        return None, "the ledger names no file for this record"
    if ".encoded." in str(rel):
        return None, ("encoded on the partner's own machine: the hub holds no raw record "
                      f"(send the partner a packet: pathlink review packet --partner "
                      f"{source['partner_id']})")
    path = ws.landing / str(rel)
    if not path.is_file() or path.is_symlink():
        return None, f"{rel} is no longer in landing/"
    if sha256_file(path) != source["file_sha256"]:
        return None, f"{rel} in landing/ has changed since it was linked"
    partner = ws.partner(source["partner_id"])
    try:
        frame = read_table(path, column_map=partner.columns, value_map=partner.values,
                           dataset="participants", sheet=partner.sheet, limits=ws.limits,
                           source_name=str(rel)).frame
    except FileRejected as exc:
        return None, f"{rel} cannot be read again: {exc.reason}"
    row = frame[frame["__row"].astype("int64") == int(source["source_row"])]
    if row.empty:
        return None, f"{rel} has no row {int(source['source_row'])}"
    record = row.iloc[0]
    return {c: ("" if c not in record or record[c] is None
                or (isinstance(record[c], float) and np.isnan(record[c])) else str(record[c]))
            for c in pii_columns("participants")}, f"{rel}, row {int(source['source_row'])}"


#: Which normalized column says whether two raw fields agree (linkage/normalize.py).
NORMALIZED = {"first_name": "given_name", "middle_name": "middle_name",
              "last_name": "family_name", "suffix": "suffix", "date_of_birth": "dob",
              "ssn": "ssn", "sex": "sex", "street_address": "street", "city": "city",
              "state": "state", "zip": "zip5", "phone": "phone", "email": "email"}


def _agreement(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    """same / differs / missing per raw field, judged on the normalized values (so that
    `7/3/1982` and `1982-07-03`, or `Male` and `M`, are the same)."""
    frame = normalize_participants(pd.DataFrame([left, right]), as_of=dt.date.today())
    out = {}
    for raw, norm in NORMALIZED.items():
        a, b = frame[norm].iloc[0], frame[norm].iloc[1]
        if a is None or b is None or (isinstance(a, float) and np.isnan(a)) \
                or (isinstance(b, float) and np.isnan(b)):
            out[raw] = "missing"
        else:
            out[raw] = "same" if a == b else "differs"
    return out


def _waterfall_rows(fall: dict[str, Any]) -> str:
    rows = []
    scale = max([abs(s["bits"]) for s in fall["steps"]] + [1.0])
    for step in fall["steps"]:
        width = int(120 * abs(step["bits"]) / scale)
        bar = (f"<span class='bar {'pos' if step['bits'] >= 0 else 'neg'}' "
               f"style='width:{width}px'></span>") if width else ""
        rows.append(f"<tr><td>{_e(step['step'])}</td><td>{_e(step['category'])}</td>"
                    f"<td>{_e(step['meaning'])}</td><td class='bits'>{step['bits']:+.2f}</td>"
                    f"<td>{bar}</td></tr>")
    rows.append(f"<tr><th colspan='3'>match weight</th><th class='bits'>"
                f"{fall['total']:+.2f}</th><th></th></tr>")
    return ("<table><thead><tr><th>step</th><th>category</th><th>level</th><th>bits</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def show_pair(ws: Workspace, pair: str, other: str | None = None) -> dict[str, Any]:
    """Write `state/review/<pair id>.html`: the two records side by side (from landing/,
    where the hub holds them), the waterfall and the decisions. Returns the path and, per side,
    whether the raw record could be shown (never the record itself)."""
    detail = pair_detail(ws, pair, other)
    ref = detail["pair"]
    with StateStore(ws.state_db) as state:
        sources = state.record_sources([ref.record_key_l, ref.record_key_r])
    by_key = {row["record_key"]: row for row in sources.to_dict(orient="records")}
    sides = []
    for key in (ref.record_key_l, ref.record_key_r):
        if key not in by_key:
            sides.append((key, None, "no stored version of this record"))
            continue
        record, where = _raw_record(ws, by_key[key])
        sides.append((key, record, where))
    columns = list(pii_columns("participants"))
    agreement = _agreement(sides[0][1], sides[1][1]) if sides[0][1] and sides[1][1] else {}
    head = (f"<tr><th>field</th><th>{_e(sides[0][0])}<br><small>{_e(sides[0][2])}</small></th>"
            f"<th>{_e(sides[1][0])}<br><small>{_e(sides[1][2])}</small></th><th></th></tr>")
    body = []
    for column in columns:
        left = sides[0][1].get(column, "") if sides[0][1] else None
        right = sides[1][1].get(column, "") if sides[1][1] else None
        state = agreement.get(column, "")
        mark = f"<span class='{state}'>{state}</span>" if state else ""
        cell = ["<td class='missing'>not held at the hub</td>" if v is None else
                f"<td>{_e(v)}</td>" for v in (left, right)]
        body.append(f"<tr><th>{_e(column)}</th>{''.join(cell)}<td>{mark}</td></tr>")
    scored = detail["scored"]
    if scored is None:
        scoring = ("<p>The latest link did not score this pair (it was not a candidate pair, "
                   "or fell below the possible-match weight outside the review pool).</p>")
    else:
        scoring = (f"<p>Latest link: weight <b>{scored['match_weight']:+.2f}</b>, class "
                   f"<b>{_e(scored['match_class'])}</b>; the two records are "
                   f"<b>{'in one person' if scored['linked'] else 'in two persons'}</b>.</p>"
                   + _waterfall_rows(scored["waterfall"]))
    decisions = "".join(f"<li>{_e(d['decision_id'])}: <b>{_e(d['decision'])}</b> by "
                        f"{_e(d['decided_by'])} at {_e(str(d['decided_at'])[:19])} UTC "
                        f"({_e(d['source'])})</li>" for d in detail["decisions"])
    page = _page(f"Pathlink review {ref.pair_id}", f"""
<p class='restricted'><b>Restricted: personal data.</b> This page shows two partner records
as they were sent, read from <code>landing/</code>. It lives under <code>state/</code> only;
do not copy, print or send it, and delete it when the pair is decided.</p>
<h1>Pair {_e(ref.pair_id)}</h1>
<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>
<h2>What the weight is made of</h2>
{scoring}
<h2>Decisions</h2>
{'<ul>' + decisions + '</ul>' if decisions else '<p>None yet.</p>'}
<p>Decide with <code>pathlink review decide {_e(ref.pair_id)} match|distinct|unsure
--workspace {_e(ws.root)}</code>; it takes effect at the next run.</p>""")
    path = _write_private(review_dir(ws) / f"{ref.pair_id}.html", page)
    return {"path": str(path), "pair_id": ref.pair_id,
            "shown": {key: record is not None for key, record, _ in sides},
            "why_not": {key: where for key, record, where in sides if record is None}}


# -- the threshold-selection chart -------------------------------------------------------------

def _histogram_svg(histogram: pd.DataFrame, thresholds: dict[str, float]) -> str:
    width, height, left, top = 760, 240, 60, 20
    if histogram.empty:
        return "<p>No candidate pairs.</p>"
    lo = float(histogram["bin_lo"].min())
    hi = float(histogram["bin_lo"].max()) + 1.0
    span = max(hi - lo, 1.0)
    counts = histogram["pairs"].to_numpy(dtype=float)
    scale = np.log10(counts.max() + 1)

    def x(w: float) -> float:
        return left + width * (w - lo) / span

    parts = [f"<svg role='img' aria-label='match weight distribution' width='{left + width + 20}'"
             f" height='{top + height + 50}' xmlns='http://www.w3.org/2000/svg' "
             "font-family='sans-serif' font-size='11'>"]
    for row in histogram.itertuples(index=False):
        h = height * np.log10(row.pairs + 1) / scale
        parts.append(f"<rect x='{x(row.bin_lo):.1f}' y='{top + height - h:.1f}' "
                     f"width='{max(width / span - 1, 1):.1f}' height='{h:.1f}' fill='#1b6ca8'>"
                     f"<title>{row.bin_lo:g} to {row.bin_lo + 1:g} bits: {int(row.pairs):,} "
                     f"pairs, {row.expected_matches:,.1f} expected matches</title></rect>")
    for name, value, color in (("possible", thresholds["possible"], "#edae49"),
                               ("match", thresholds["match"], "#d1495b")):
        parts.append(f"<line x1='{x(value):.1f}' x2='{x(value):.1f}' y1='{top}' "
                     f"y2='{top + height}' stroke='{color}' stroke-width='2'/>"
                     f"<text x='{x(value) + (-3 if name == 'possible' else 3):.1f}' "
                     f"y='{top + 12}' fill='{color}' "
                     f"text-anchor='{'end' if name == 'possible' else 'start'}'>"
                     f"{_e(name)} {value:g}</text>")
    for tick in range(int(np.ceil(lo / 10) * 10), int(hi) + 1, 10):
        parts.append(f"<text x='{x(tick):.1f}' y='{top + height + 14}' text-anchor='middle'>"
                     f"{tick}</text>")
    parts.append(f"<text x='{left + width / 2}' y='{top + height + 32}' text-anchor='middle'>"
                 "match weight (bits); bar height: pairs, log scale</text></svg>")
    return "".join(parts)


def _curve_svg(table: pd.DataFrame, thresholds: dict[str, float]) -> str:
    width, height, left, top = 760, 220, 60, 20
    rows = table.dropna(subset=["precision", "recall"])
    if rows.empty:
        return ("<p>No estimate yet: every stratum needs a decided pair of the sample "
                "(<code>pathlink review list --sample</code>).</p>")
    lo, hi = float(rows["threshold"].min()), float(rows["threshold"].max())
    span = max(hi - lo, 1.0)
    low_y = min(0.9, float(rows[["precision_low", "recall_low"]].min().min()))

    def x(t: float) -> float:
        return left + width * (t - lo) / span

    def y(v: float) -> float:
        return top + height * (1 - (v - low_y) / max(1 - low_y, 1e-9))

    parts = [f"<svg role='img' aria-label='expected precision and recall by threshold' "
             f"width='{left + width + 140}' height='{top + height + 50}' "
             "xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' font-size='11'>"]
    for v in np.linspace(low_y, 1, 5):
        parts.append(f"<line x1='{left}' x2='{left + width}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
                     f"stroke='#eee'/><text x='{left - 6}' y='{y(v) + 4:.1f}' "
                     f"text-anchor='end'>{v:.2f}</text>")
    for name, color in (("precision", "#1b6ca8"), ("recall", "#2e933c")):
        band = [(x(r.threshold), y(getattr(r, f"{name}_high"))) for r in rows.itertuples()]
        band += [(x(r.threshold), y(getattr(r, f"{name}_low")))
                 for r in reversed(list(rows.itertuples()))]
        parts.append("<polygon points='" + " ".join(f"{a:.1f},{b:.1f}" for a, b in band)
                     + f"' fill='{color}' fill-opacity='0.15'/>")
        line = " ".join(f"{x(r.threshold):.1f},{y(getattr(r, name)):.1f}"
                        for r in rows.itertuples())
        parts.append(f"<polyline points='{line}' fill='none' stroke='{color}' "
                     "stroke-width='2'/>")
        parts.append(f"<text x='{left + width + 8}' y='{y(float(rows[name].iloc[-1])) + 4:.1f}'"
                     f" fill='{color}'>{name}</text>")
    for value, color in ((thresholds["possible"], "#edae49"), (thresholds["match"], "#d1495b")):
        if lo <= value <= hi:
            parts.append(f"<line x1='{x(value):.1f}' x2='{x(value):.1f}' y1='{top}' "
                         f"y2='{top + height}' stroke='{color}' stroke-dasharray='4 3'/>")
    for r in rows.itertuples():
        parts.append(f"<text x='{x(r.threshold):.1f}' y='{top + height + 14}' "
                     f"text-anchor='middle'>{r.threshold:g}</text>")
    parts.append(f"<text x='{left + width / 2}' y='{top + height + 32}' text-anchor='middle'>"
                 "match threshold (bits): pairs at or above it are matches</text></svg>")
    return "".join(parts)


def _figures_table(figures: list[dict[str, Any]]) -> str:
    rows = []
    for f in figures:
        value = "not yet estimable" if f["estimate"] is None else (
            f"{f['estimate']:.4f} (95% interval {f['low']:.4f} to {f['high']:.4f})")
        rows.append(f"<tr><td>{_e(f['measure'])}</td><td>{_e(f['what'])}</td>"
                    f"<td>{_e(value)}</td></tr>")
    return ("<table><thead><tr><th>measure</th><th>of</th><th>estimate</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def threshold_page(ws: Workspace) -> dict[str, Any]:
    """Write `state/review/thresholds.html`: the latest link's match-weight distribution with
    the thresholds, and the expected precision and recall at nearby thresholds from the latest
    review sample's decisions (as Splink's threshold-selection charts)."""
    with StateStore(ws.state_db) as state:
        model = state.link_model()
    if model is None:
        raise ReviewError("nothing has been linked yet: run `pathlink run` first")
    snapshot = json.loads(model["model"])
    thresholds = {"match": snapshot["match_weight_threshold"],
                  "possible": snapshot["possible_weight_threshold"]}
    histogram = census_frame(model["histogram"])
    report = accuracy_report(ws, table=True)
    if report is None:
        curve = ("<p>No review sample yet: <code>pathlink review sample</code> draws one, "
                 "<code>pathlink review list --sample</code> shows its pairs to decide.</p>")
        figures = ""
        rows = ""
    else:
        table = pd.DataFrame(report["threshold_table"])
        curve = _curve_svg(table, thresholds)
        figures = _figures_table(report["figures"])
        rows = "".join(
            f"<tr><td>{r.threshold:g}</td><td>{int(r.pairs_above):,}</td>"
            + "".join("<td>-</td>" if pd.isna(getattr(r, k)) else
                      f"<td>{getattr(r, k):.4f}</td>"
                      for k in ("precision", "precision_low", "precision_high", "recall",
                                "recall_low", "recall_high")) + "</tr>"
            for r in table.itertuples())
        rows = ("<table><thead><tr><th>threshold</th><th>pairs at or above</th>"
                "<th>precision</th><th>low</th><th>high</th><th>recall</th><th>low</th>"
                f"<th>high</th></tr></thead><tbody>{rows}</tbody></table>")
    basis = "" if report is None else (
        f"<p>From sample {_e(report['sample_id'])} of the link of {_e(report['period'])}: "
        f"{report['labelled']} of {report['sample_size']} pairs decided. Below "
        f"{_e(report['tail']['below'])} bits ({report['tail']['pairs']:,} pairs) the model's "
        f"own expectation ({report['tail']['expected_matches']:.2f} matches) stands in for "
        "labels.</p>")
    page = _page("Pathlink threshold choice", f"""
<h1>Threshold choice</h1>
<p>Link of {_e(model['period'])} (run {_e(model['run_id'])}), spec
{_e(model['linkage_spec'])}: match threshold <b>{thresholds['match']:g}</b>, possible-match
threshold <b>{thresholds['possible']:g}</b> bits (<code>[linkage]</code> in
<code>pathlink.toml</code>).</p>
<h2>Match weight of every candidate pair</h2>
{_histogram_svg(histogram, thresholds)}
<h2>Expected precision and recall at nearby thresholds</h2>
{basis}{curve}{rows}
<h2>At the current thresholds</h2>
{figures or '<p>-</p>'}""")
    path = _write_private(review_dir(ws) / "thresholds.html", page)
    return {"path": str(path), "sample_id": None if report is None else report["sample_id"]}
