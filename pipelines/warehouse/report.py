"""Static, self-contained HTML report of the released (suppressed) outcome figures.

Reads only ``released_*`` relations of the published file (read-only) and draws inline SVG
charts, so the file has no scripts, fonts or network references and can be mailed as is.
Suppressed cells are drawn as hatched grey bars / cells labelled "suppressed".
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.warehouse.disclosure import released_relations

RATE_BY_PARTNER = ("employment_q2", "employment_q4", "retention_q2_q4", "credential_attainment",
                   "measurable_skill_gains", "supportive_services", "co_enrollment")
EMPLOYMENT_DIMENSIONS = ("funding_stream", "sector", "race_ethnicity", "sex", "age_band",
                         "barrier")
OVER_TIME = ("employment_q2", "employment_q4", "retention_q2_q4", "credential_attainment")
DIMENSION_LABELS = {"partner": "partner", "program": "program", "sector": "sector",
                    "funding_stream": "funding stream", "race_ethnicity": "race/ethnicity",
                    "sex": "sex", "age_band": "age band at first entry",
                    "barrier": "barrier to employment", "service_type": "service type",
                    "overall": "overall"}
SERIES_COLORS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49")
HATCH = ("<defs><pattern id='{id}' width='6' height='6' patternUnits='userSpaceOnUse' "
         "patternTransform='rotate(45)'><rect width='6' height='6' fill='#eee'/>"
         "<line x1='0' y1='0' x2='0' y2='6' stroke='#999' stroke-width='2'/></pattern></defs>")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"hatch{self.n}"


def bar_chart_svg(rows: pd.DataFrame, *, title: str, kind: str, ids: _Ids) -> str:
    """Horizontal bars, one per group; ``rows``: group, value, display, suppressed."""
    label_w, bar_w, row_h, top = 230, 360, 24, 30
    height = top + row_h * len(rows) + 10
    hatch = ids.next()
    max_value = 1.0 if kind == "rate" else max(
        [float(v) for v in rows["value"].dropna()] + [1.0])
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{label_w + bar_w + 120}' "
             f"height='{height}' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' "
             f"font-size='12'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold'>{_e(title)}</text>"]
    for i, row in enumerate(rows.itertuples(index=False)):
        y = top + i * row_h
        parts.append(f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end'>"
                     f"{_e(row.group)}</text>")
        if row.suppressed or pd.isna(row.value):
            css = "suppressed" if row.suppressed else "coded"
            fill = f"url(#{hatch})" if row.suppressed else "#bbb"
            parts.append(f"<rect class='{css}' x='{label_w}' y='{y + 3}' width='{bar_w}' "
                         f"height='{row_h - 8}' fill='{fill}'/>")
            parts.append(f"<text x='{label_w + 6}' y='{y + 15}' fill='#555'>"
                         f"{_e(row.display)}</text>")
            continue
        width = max(1.0, bar_w * float(row.value) / max_value)
        parts.append(f"<rect x='{label_w}' y='{y + 3}' width='{width:.1f}' "
                     f"height='{row_h - 8}' fill='#1b6ca8'/>")
        parts.append(f"<text x='{label_w + width + 6:.1f}' y='{y + 15}'>{_e(row.display)}"
                     f"</text>")
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(pairs: pd.DataFrame, *, title: str, ids: _Ids) -> str:
    """Symmetric partner x partner matrix; suppressed cells hatched and labelled."""
    partners = sorted(set(pairs["partner_a"]) | set(pairs["partner_b"]))
    cell, left, top = 64, 170, 150
    size = len(partners)
    hatch = ids.next()
    lookup = {}
    for row in pairs.itertuples(index=False):
        lookup[(row.partner_a, row.partner_b)] = row
        lookup[(row.partner_b, row.partner_a)] = row
    shown = [float(r.persons) for r in pairs.itertuples(index=False)
             if not r.suppressed and r.partner_a != r.partner_b]
    top_value = max([*shown, 1.0])
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{left + cell * size + 20}' "
             f"height='{top + cell * size + 20}' xmlns='http://www.w3.org/2000/svg' "
             f"font-family='sans-serif' font-size='11'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold' font-size='12'>{_e(title)}</text>"]
    for j, partner in enumerate(partners):
        x = left + j * cell + cell / 2
        parts.append(f"<text transform='translate({x:.0f},{top - 6}) rotate(-45)'>"
                     f"{_e(partner)}</text>")
    for i, a in enumerate(partners):
        y = top + i * cell
        parts.append(f"<text x='{left - 6}' y='{y + cell / 2 + 4:.0f}' text-anchor='end'>"
                     f"{_e(a)}</text>")
        for j, b in enumerate(partners):
            x = left + j * cell
            row = lookup.get((a, b))
            if row is None:
                continue
            if row.suppressed:
                parts.append(f"<rect class='suppressed' x='{x}' y='{y}' width='{cell - 2}' "
                             f"height='{cell - 2}' fill='url(#{hatch})'/>"
                             f"<text x='{x + cell / 2:.0f}' y='{y + cell / 2 + 4:.0f}' "
                             f"text-anchor='middle' fill='#555'>suppr.</text>")
                continue
            if a == b:
                fill = "#ddd"
            else:
                share = float(row.persons) / top_value
                shade = int(235 - 180 * share)
                fill = f"rgb({shade},{shade + 10 if shade < 245 else 245},250)"
            parts.append(f"<rect x='{x}' y='{y}' width='{cell - 2}' height='{cell - 2}' "
                         f"fill='{fill}'/><text x='{x + cell / 2:.0f}' "
                         f"y='{y + cell / 2 + 4:.0f}' text-anchor='middle'>"
                         f"{_e(row.display)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def line_chart_svg(series: dict[str, pd.DataFrame], *, title: str, ids: _Ids) -> str:
    """Rates by exit quarter, one line per measure; suppressed points drawn as hatched marks."""
    quarters = sorted({q for frame in series.values() for q in frame["period"]})
    left, top, width, height = 50, 40, max(360, 46 * len(quarters)), 220
    hatch = ids.next()
    step = width / max(1, len(quarters) - 1) if len(quarters) > 1 else width
    x_of = {q: left + i * step for i, q in enumerate(quarters)}
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{left + width + 220}' "
             f"height='{top + height + 60}' xmlns='http://www.w3.org/2000/svg' "
             f"font-family='sans-serif' font-size='11'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold' font-size='12'>{_e(title)}</text>"]
    for pct in (0, 25, 50, 75, 100):
        y = top + height - height * pct / 100
        parts.append(f"<line x1='{left}' x2='{left + width}' y1='{y:.0f}' y2='{y:.0f}' "
                     f"stroke='#eee'/><text class='axis' x='{left - 6}' y='{y + 4:.0f}' "
                     f"text-anchor='end'>{pct}%</text>")
    for q, x in x_of.items():
        parts.append(f"<text transform='translate({x:.0f},{top + height + 14}) rotate(45)'>"
                     f"{_e(q)}</text>")
    for k, (name, frame) in enumerate(series.items()):
        color = SERIES_COLORS[k % len(SERIES_COLORS)]
        points = []
        for row in frame.sort_values("period").itertuples(index=False):
            x = x_of[row.period]
            if row.suppressed or pd.isna(row.value):
                parts.append(f"<rect class='suppressed' x='{x - 5:.0f}' y='{top + height - 12}' "
                             f"width='10' height='10' fill='url(#{hatch})' stroke='{color}'>"
                             f"<title>{_e(name)} {_e(row.period)}: {_e(row.display)}</title>"
                             f"</rect>")
                if len(points) > 1:
                    parts.append(_polyline(points, color))
                points = []
                continue
            y = top + height - height * float(row.value)
            points.append((x, y))
            parts.append(f"<circle cx='{x:.0f}' cy='{y:.0f}' r='3' fill='{color}'>"
                         f"<title>{_e(name)} {_e(row.period)}: {_e(row.display)}</title>"
                         f"</circle>")
        if len(points) > 1:
            parts.append(_polyline(points, color))
        ly = top + 14 * k
        parts.append(f"<rect x='{left + width + 20}' y='{ly - 8}' width='10' height='10' "
                     f"fill='{color}'/><text x='{left + width + 36}' y='{ly + 1}'>"
                     f"{_e(name)}</text>")
    ly = top + 14 * len(series)
    parts.append(f"<rect x='{left + width + 20}' y='{ly - 8}' width='10' height='10' "
                 f"fill='url(#{hatch})' stroke='#999'/><text x='{left + width + 36}' "
                 f"y='{ly + 1}'>suppressed</text></svg>")
    return "".join(parts)


def _polyline(points: list[tuple[float, float]], color: str) -> str:
    coords = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    return f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='2'/>"


def _table_html(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) \
                else value
            css = " class='suppressed'" if text == "suppressed" else ""
            cells.append(f"<td{css}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _load_released(published_db: str | Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        names = set(released_relations(con))
        wanted = ("released_measures", "released_coenrollment_pairs",
                  "released_measure_definitions", "released_disclosure_rules")
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"{published_db} has no {', '.join(missing)}; publish outcomes "
                             "first (pipelines.warehouse.disclosure.publish_outcomes)")
        return {n: con.execute(f"SELECT * FROM {n}").df() for n in wanted}  # noqa: S608
    finally:
        con.close()


def write_report(published_db: str | Path, out_html: str | Path) -> list[str]:
    """Write one self-contained HTML report from the released tables of a published file.

    Returns:
        Chart titles, in page order.
    """
    released = _load_released(published_db)
    measures = released["released_measures"]
    definitions = released["released_measure_definitions"].set_index("measure")
    rules = dict(zip(released["released_disclosure_rules"]["rule"],
                     released["released_disclosure_rules"]["setting"], strict=True))
    ids = _Ids()
    charts: list[tuple[str, str]] = []

    def title_of(measure: str) -> str:
        return str(definitions.loc[measure, "title"]) if measure in definitions.index \
            else measure

    def add_bars(measure: str, dimension: str, kind: str = "rate") -> None:
        rows = measures[(measures["measure"] == measure) & (measures["dimension"] == dimension)
                        & (measures["period"] == "all")]
        if rows.empty:
            return
        title = title_of(measure) if dimension == "service_type" else (
            f"{title_of(measure)} by {DIMENSION_LABELS.get(dimension, dimension)}")
        charts.append((title, bar_chart_svg(rows, title=title, kind=kind, ids=ids)))

    for measure in RATE_BY_PARTNER:
        add_bars(measure, "partner")
    add_bars("median_earnings_q2", "partner", kind="dollars")
    for dimension in EMPLOYMENT_DIMENSIONS:
        add_bars("employment_q2", dimension)
    add_bars("services_by_type", "service_type")
    pairs = released["released_coenrollment_pairs"]
    if not pairs.empty:
        title = "Overlap of partners' caseloads (persons enrolled at both partners)"
        charts.append((title, heatmap_svg(pairs, title=title, ids=ids)))
    series = {}
    for measure in OVER_TIME:
        rows = measures[(measures["measure"] == measure) & (measures["dimension"] == "overall")
                        & (measures["period"] != "all")]
        if not rows.empty:
            series[title_of(measure)] = rows
    if series:
        title = "Outcome rates by exit quarter"
        charts.append((title, line_chart_svg(series, title=title, ids=ids)))

    overall = measures[(measures["dimension"] == "overall") & (measures["period"] == "all")]
    overall = overall.assign(title=[title_of(m) for m in overall["measure"]])[
        ["title", "numerator", "denominator", "display"]]
    threshold = _e(rules.get("small_cell_threshold", "?"))
    methods = f"""
<h2>Methods: disclosure avoidance</h2>
<ul>
<li>Every figure on this page comes from the released tables of the published file; no
person-level data is read.</li>
<li><b>Small cells.</b> A rate is suppressed when its numerator or denominator is under
{threshold}{', or when fewer than ' + threshold + ' people are outside the numerator'
           if rules.get('protect_complement') == 'true' else ''}, or when it would be exactly
0% or 100%. A median is suppressed when fewer than {threshold} people contribute; a
co-enrollment count is suppressed when under {threshold}.</li>
<li><b>Complementary suppression.</b> When a table publishes a total, a single suppressed
cell could be recovered by subtraction, so further cells (the next smallest) are suppressed
along every row, column and margin until each line hides at least two cells; a
linear-algebra check then confirms no suppressed cell can be solved from the published sums.
Measures that share people (employment, earnings and retention after exit) are suppressed
together.</li>
<li><b>Medians</b> are fuzzy medians: the mean of the 45th and 55th percentiles, rounded to
$10.</li>
<li><b>Rates</b> are shown as whole percents; values that would round to 0% or 100% are shown
as "&lt;1%" / "&gt;99%".</li>
<li>Hatched grey bars and cells marked <span class='suppressed'>suppressed</span> are
suppressed figures, not zeros.</li>
<li>Dates are published at month precision; outcomes after exit use quarterly UI wage
records. Exit-based measures use exits whose fourth quarter after exit is covered by wage
data and whose year after exit is covered by partner data.</li>
</ul>"""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<section class='chart'><h3>{_e(t)}</h3>{svg}</section>"
                   for t, svg in charts)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Pathlink outcome report</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
.suppressed {{ background: #eee; color: #666; font-style: italic; }}
section.chart {{ margin: 1.5em 0; }}
</style></head><body>
<h1>Pathlink outcome report</h1>
<p>Generated {generated}. Released, suppressed figures only
(small-cell threshold {threshold}).</p>
<h2>Overall</h2>
{_table_html(overall)}
<h2>Charts</h2>
{body}
{methods}
</body></html>
"""
    Path(out_html).write_text(page, encoding="utf-8")
    return [t for t, _ in charts]
