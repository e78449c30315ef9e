"""Static, self-contained HTML report of the released outcome figures.

Reads only ``released_*`` relations of the published file (read-only) and draws inline SVG
charts, so the file has no scripts, fonts or network references and can be mailed as is.
Partners and programs carry their display names; every bar its n (the denominator, or the
number of earners behind a median); every suppressed bar or cell is hatched grey and says why
(small cell, complementary, no data sent); suppressed points of a time series are gaps, not
zeros. The page says which periods the data covers and, when the outcome cohort is empty, why.
In ``dp`` mode the methods section states the privacy budget and the noise scale.
The methods section on linkage accuracy shows the clerical-review estimate its caller passes
(counts and figures only, read from the restricted state; not a table of the release).
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import duckdb
import pandas as pd

from pipelines.warehouse.disclosure import dollars, released_relations

GROUP_LABELS = {
    "all": "all", "unknown": "unknown", "none": "none of the listed barriers",
    "F": "female", "M": "male", "X": "another sex (X)",
    "hispanic_latino": "Hispanic/Latino", "american_indian_alaska_native":
        "American Indian/Alaska Native", "asian": "Asian",
    "black_african_american": "Black/African American",
    "native_hawaiian_pacific_islander": "Native Hawaiian/Pacific Islander", "white": "White",
    "two_or_more_races": "two or more races", "wioa_adult": "WIOA Adult",
    "wioa_dislocated_worker": "WIOA Dislocated Worker", "wioa_youth": "WIOA Youth",
    "careerconnect": "CareerConnect", "summer_youth_employment": "Summer Youth Employment",
    "foundation_career_pathways": "Foundation Career Pathways", "it": "IT",
    "business_financial_services": "business and financial services",
}

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


def _reason(row: object) -> str:
    reason = getattr(row, "suppression_reason", None)
    return "suppressed" if reason is None or pd.isna(reason) else f"suppressed: {reason}"


def _n(row: object) -> str:
    den = getattr(row, "denominator", None)
    return "" if den is None or pd.isna(den) else f"n={int(den):,}"


def bar_chart_svg(rows: pd.DataFrame, *, title: str, kind: str, ids: _Ids,
                  label: object = None) -> str:
    """Horizontal bars, one per group, each with its n; suppressed bars hatched with their
    reason. ``rows``: group, value, display, suppressed, denominator, suppression_reason;
    ``label(group)`` gives the group's display name."""
    label = label or (lambda g: g)
    label_w, bar_w, row_h, top = 260, 330, 24, 30
    height = top + row_h * len(rows) + 10
    hatch = ids.next()
    max_value = 1.0 if kind == "rate" else max(
        [float(v) for v in rows["value"].dropna()] + [1.0])
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{label_w + bar_w + 190}' "
             f"height='{height}' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' "
             f"font-size='12'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold'>{_e(title)}</text>"]
    for i, row in enumerate(rows.itertuples(index=False)):
        y = top + i * row_h
        parts.append(f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end'>"
                     f"{_e(label(row.group))}</text>")
        if row.suppressed:
            parts.append(f"<rect class='suppressed' x='{label_w}' y='{y + 3}' width='{bar_w}' "
                         f"height='{row_h - 8}' fill='url(#{hatch})'/>")
            parts.append(f"<text class='reason' x='{label_w + 6}' y='{y + 15}' fill='#444'>"
                         f"{_e(_reason(row))}</text>")
            continue
        if pd.isna(row.value):
            parts.append(f"<rect class='coded' x='{label_w}' y='{y + 3}' width='{bar_w}' "
                         f"height='{row_h - 8}' fill='#bbb'/>")
            parts.append(f"<text x='{label_w + 6}' y='{y + 15}' fill='#333'>{_e(row.display)}"
                         f"</text><text class='n' x='{label_w + bar_w + 6}' y='{y + 15}' "
                         f"fill='#555'>{_e(_n(row))}</text>")
            continue
        width = max(1.0, bar_w * float(row.value) / max_value)
        parts.append(f"<rect x='{label_w}' y='{y + 3}' width='{width:.1f}' "
                     f"height='{row_h - 8}' fill='#1b6ca8'/>")
        parts.append(f"<text x='{label_w + width + 6:.1f}' y='{y + 15}'>{_e(row.display)}"
                     f"<tspan class='n' fill='#555'> ({_e(_n(row))})</tspan></text>")
    parts.append("</svg>")
    return "".join(parts)


def heatmap_svg(pairs: pd.DataFrame, *, title: str, ids: _Ids, label: object = None) -> str:
    """Symmetric partner x partner matrix; suppressed cells hatched and labelled with their
    reason (``s.c.`` small cell, ``comp.`` complementary)."""
    label = label or (lambda g: g)
    partners = sorted(set(pairs["partner_a"]) | set(pairs["partner_b"]))
    cell, left, top = 64, 250, 190
    size = len(partners)
    hatch = ids.next()
    lookup = {}
    for row in pairs.itertuples(index=False):
        lookup[(row.partner_a, row.partner_b)] = row
        lookup[(row.partner_b, row.partner_a)] = row
    shown = [float(r.persons) for r in pairs.itertuples(index=False)
             if not r.suppressed and r.partner_a != r.partner_b]
    top_value = max([*shown, 1.0])
    # the column labels run up and to the right at 45 degrees: room for the last one
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{left + cell * size + 170}' "
             f"height='{top + cell * size + 20}' xmlns='http://www.w3.org/2000/svg' "
             f"font-family='sans-serif' font-size='11'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold' font-size='12'>{_e(title)}</text>"]
    for j, partner in enumerate(partners):
        x = left + j * cell + cell / 2
        parts.append(f"<text transform='translate({x:.0f},{top - 6}) rotate(-45)'>"
                     f"{_e(label(partner))}</text>")
    for i, a in enumerate(partners):
        y = top + i * cell
        parts.append(f"<text x='{left - 6}' y='{y + cell / 2 + 4:.0f}' text-anchor='end'>"
                     f"{_e(label(a))}</text>")
        for j, b in enumerate(partners):
            x = left + j * cell
            row = lookup.get((a, b))
            if row is None:
                continue
            if row.suppressed:
                reason = getattr(row, "suppression_reason", None)
                short = {"small cell": "small", "complementary": "compl."}.get(
                    reason if isinstance(reason, str) else "", "suppr.")
                parts.append(f"<rect class='suppressed' x='{x}' y='{y}' width='{cell - 2}' "
                             f"height='{cell - 2}' fill='url(#{hatch})'>"
                             f"<title>{_e(_reason(row))}</title></rect>"
                             f"<text x='{x + cell / 2:.0f}' y='{y + cell / 2 + 4:.0f}' "
                             f"text-anchor='middle' fill='#444'>{short}</text>")
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
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{left + width + 380}' "
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
                # a gap in the line, marked by a hatched band over the whole height: the
                # figure is unknown, not zero
                parts.append(f"<rect class='suppressed gap' x='{x - 4 + 3 * k:.0f}' y='{top}' "
                             f"width='3' height='{height}' fill='url(#{hatch})' "
                             f"stroke='{color}' stroke-width='0.5' opacity='0.8'>"
                             f"<title>{_e(name)} {_e(row.period)}: {_e(_reason(row))}</title>"
                             f"</rect>")
                if len(points) > 1:
                    parts.append(_polyline(points, color))
                elif len(points) == 1:
                    pass  # a lone point keeps its circle
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
                 f"y='{ly + 1}'>suppressed (a gap, not 0%)</text></svg>")
    return "".join(parts)


def _polyline(points: list[tuple[float, float]], color: str) -> str:
    coords = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    return f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='2'/>"


#: In place of an empty table or chart list: the release has no figure of that kind yet.
_NOTHING_YET = ("<p class='nothing-yet'>No figures yet: the release has nothing to measure "
                "here (see Data covered above).</p>")


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


OPTIONAL = ("released_partners", "released_programs", "released_coverage",
            "released_data_sent", "released_release", "released_cost_per_outcome",
            "released_program_return", "released_roi_settings")


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
        return {n: con.execute(f"SELECT * FROM {n}").df()  # noqa: S608
                for n in (*wanted, *OPTIONAL) if n in names}
    finally:
        con.close()


def _labels(released: dict[str, pd.DataFrame]):
    """(dimension, group) -> display label: partner and program names from the config."""
    partners: dict[str, str] = {}
    if "released_partners" in released:
        frame = released["released_partners"]
        partners = {p: (n or p) for p, n in zip(frame["partner_id"], frame["partner_name"],
                                                 strict=True)}
    programs: dict[str, str] = {}
    if "released_programs" in released:
        frame = released["released_programs"]
        for program, partner, name in zip(frame["program_id"], frame["partner_id"],
                                          frame["program_name"], strict=True):
            programs[program] = f"{partners.get(partner, partner)}: {name or program}"

    def label(dimension: str, group: str) -> str:
        if dimension == "partner":
            return partners.get(group, group)
        if dimension == "program":
            if group in programs:
                return programs[group]
            partner, _, code = str(group).partition(":")
            return f"{partners.get(partner, partner)}: {code}" if code else str(group)
        return GROUP_LABELS.get(group, str(group).replace("_", " "))

    return label


def _coverage_html(released: dict[str, pd.DataFrame], label) -> tuple[str, str]:
    """The 'data covered' section and, when the outcome cohort is empty, why."""
    coverage = released.get("released_coverage")
    if coverage is None or coverage.empty:
        return "", ""
    c = coverage.iloc[0]

    def missing(value: object) -> bool:
        return value is None or pd.isna(value)

    def text(value: object, default: str = "none") -> str:
        return default if missing(value) else str(value)

    if missing(c.partner_data_through_month):  # participant files only, so far
        through = ("no enrollment, service, credential, assessment, employment or skill-gain "
                   "record has been sent yet")
    else:
        through = f"partners' data refers to months up to {_e(text(c.partner_data_through_month))}"
    if missing(c.cohort_exit_from_quarter) or missing(c.cohort_exit_through_month):
        cohort = ("<li><b>Outcome cohort</b>: no exits can be measured yet (an exit is measured "
                  "once the 4th quarter after it is in the UI wage data and the 12 months after "
                  "it in partner data, without an exclusion reason).</li>")
    else:
        cohort = (f"<li><b>Outcome cohort</b>: exits from {_e(text(c.cohort_exit_from_quarter))} "
                  f"through {_e(text(c.cohort_exit_through_month))} (the 4th quarter after exit "
                  "covered by wage data, the 12 months after it by partner data), without an "
                  "exclusion reason.</li>")
    items = [
        f"<li><b>Partner extracts</b> for {_e(text(c.periods_first))} to "
        f"{_e(text(c.periods_last))}; {through}.</li>",
        f"<li><b>UI wage records</b> for {_e(text(c.wage_first_quarter))} to "
        f"{_e(text(c.wage_last_quarter))}.</li>"
        if not pd.isna(c.wage_last_quarter) else
        "<li><b>UI wage records</b>: none were sent, so no exit can be followed into "
        "employment.</li>",
        cohort,
    ]
    sent = released.get("released_data_sent")
    table = ""
    if sent is not None and not sent.empty:
        datasets = sorted(set(sent["dataset"]))
        head = "".join(f"<th>{_e(d)}</th>" for d in datasets)
        body = []
        for partner, rows in sent.groupby("partner_id", sort=True):
            got = dict(zip(rows["dataset"], zip(rows["first_period"], rows["last_period"],
                                                 strict=True), strict=True))
            cells = []
            for dataset in datasets:
                if dataset in got:
                    first, last = got[dataset]
                    cells.append(f"<td>{_e(first)}{'' if first == last else ' to ' + _e(last)}"
                                 "</td>")
                else:
                    cells.append("<td class='suppressed'>no data sent</td>")
            body.append(f"<tr><td>{_e(label('partner', partner))}</td>{''.join(cells)}</tr>")
        table = (f"<table class='sent'><thead><tr><th>partner</th>{head}</tr></thead><tbody>"
                 f"{''.join(body)}</tbody></table>")
    section = f"<h2>Data covered</h2><ul>{''.join(items)}</ul>{table}"
    empty = ""
    if getattr(c, "cohort_exits", "some") == "none":
        if pd.isna(c.wage_last_quarter):
            why = "no UI wage records were sent"
        elif getattr(c, "exits_reported", "some") == "none":
            why = "partners have reported no exits yet"
        else:
            why = (f"none of the exits partners reported falls between "
                   f"{_e(text(c.cohort_exit_from_quarter))} and "
                   f"{_e(text(c.cohort_exit_through_month))} without an exclusion reason: an "
                   f"exit is measured only once the 4th quarter after it is in the wage data "
                   f"(now through {_e(text(c.wage_last_quarter))}) and the 12 months after it "
                   f"in partner data (now through {_e(text(c.partner_data_through_month))})")
        empty = (f"<p class='empty-cohort'><b>The outcome cohort is empty</b>: {why}. The "
                 "employment, earnings, retention and credential figures are therefore blank; "
                 "they fill in as later wage quarters and partner months arrive.</p>")
    return section, empty


def _dp_methods(rules: dict[str, str]) -> str:
    if rules.get("mode") != "dp":
        return ""
    return f"""
<h2>Methods: differential privacy</h2>
<ul>
<li>This release was made in <b>differential privacy</b> mode: every count and median on this
page was computed with the OpenDP library ({_e(rules.get('dp_library', 'opendp'))}) under a
privacy budget of &rho; = {_e(rules.get('rho', '?'))} (zero-concentrated DP), which is
(&epsilon; = {_e(rules.get('epsilon', '?'))}, &delta; = {_e(rules.get('delta', '?'))})-DP for
the whole release.</li>
<li>The budget is split evenly over {_e(rules.get('queries', '?'))} queries (a noisy histogram
per population, dimension and exit-quarter split, one private-median query per dimension, one
for the partner pairs); each count carries Gaussian noise with standard deviation
{_e(rules.get('noise_sd', '?'))} (the noise scale; times the square root of the number of
groups where groups overlap: barriers, service types, a person's partners), so half of the
counts in non-overlapping groups are off by less than
{_e(rules.get('noise_median_abs', '?'))}.
Each person counts at most {_e(rules.get('max_units_per_person', '?'))} times in a measure
(further exits or enrollments are left out before counting).</li>
<li>Rates are noisy numerator / noisy denominator; medians are chosen by OpenDP's private
quantile among $250 steps from $0 to {_e(rules.get('median_upper', '?'))}. A cell whose noisy n
is under {_e(rules.get('small_cell_threshold', '?'))} is not shown (marked "small cell"), since
its noise would dominate; this uses only the noisy figures, so it costs no privacy.</li>
<li>Noise makes figures inconsistent with each other (groups need not add up to the total);
no complementary suppression is needed.</li>
</ul>"""


def linkage_methods(accuracy: dict | None) -> str:
    """The methods section on linkage accuracy: precision and recall with their intervals and
    the number of decided pairs they rest on (``pipelines.steps.review.report_accuracy``:
    counts and estimates only), or that none was estimated yet."""
    if not accuracy:
        return """
<h2>Methods: linkage accuracy</h2>
<p>Linkage accuracy has not been estimated from reviewed pairs yet (<code>pathlink review
sample</code>, then decide the sample's pairs).</p>"""
    rows = []
    for f in accuracy["figures"]:
        value = "not yet estimable" if f["estimate"] is None else (
            f"{f['estimate']:.3f} ({f['low']:.3f} to {f['high']:.3f})")
        rows.append(f"<tr><td>{_e(f['measure'])}</td><td>{_e(f['what'])}</td>"
                    f"<td>{_e(value)}</td></tr>")
    tail = accuracy["tail"]
    return f"""
<h2>Methods: linkage accuracy</h2>
<p>Records are linked into pseudonymous persons by a Fellegi-Sunter model over keyed
encodings of the identifying fields (docs/linkage.md). Accuracy is estimated
from a stratified random sample of {int(accuracy['sample_size'])} candidate pairs of the link
of {_e(accuracy['period'])} (matches, possible matches and non-matches, drawn by match weight so
the estimate is not biased toward hard cases), of which {int(accuracy['labelled'])} were
decided by a reviewer. 95% intervals from a Bayesian bootstrap over the strata. Recall counts
the pairs blocking compared; below {_e(tail['below'])} bits ({int(tail['pairs']):,} pairs)
the model's own expectation stands in for labels.</p>
<table><thead><tr><th>measure</th><th>of</th><th>estimate (95% interval)</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>"""


def write_report(published_db: str | Path, out_html: str | Path, *,
                 linkage_accuracy: dict | None = None) -> list[str]:
    """Write one self-contained HTML report from the released tables of a published file.

    ``linkage_accuracy``: the review sample's estimate (counts and figures only), for the
    methods section on linkage accuracy.

    Returns:
        Chart titles, in page order.
    """
    released = _load_released(published_db)
    measures = released["released_measures"]
    if "suppression_reason" not in measures.columns:
        measures = measures.assign(suppression_reason=None)
    definitions = released["released_measure_definitions"].set_index("measure")
    rules = dict(zip(released["released_disclosure_rules"]["rule"],
                     released["released_disclosure_rules"]["setting"], strict=True))
    label = _labels(released)
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
        charts.append((title, bar_chart_svg(rows, title=title, kind=kind, ids=ids,
                                            label=lambda g, d=dimension: label(d, g))))

    for measure in RATE_BY_PARTNER:
        add_bars(measure, "partner")
    add_bars("median_earnings_q2", "partner", kind="dollars")
    for dimension in EMPLOYMENT_DIMENSIONS:
        add_bars("employment_q2", dimension)
    add_bars("services_by_type", "service_type")
    pairs = released["released_coenrollment_pairs"]
    if not pairs.empty:
        title = "Overlap of partners' caseloads (persons enrolled at both partners)"
        charts.append((title, heatmap_svg(pairs, title=title, ids=ids,
                                          label=lambda g: label("partner", g))))
    series = {}
    for measure in OVER_TIME:
        rows = measures[(measures["measure"] == measure) & (measures["dimension"] == "overall")
                        & (measures["period"] != "all")]
        if not rows.empty:
            series[title_of(measure)] = rows
    if series:
        title = "Outcome rates by exit quarter"
        charts.append((title, line_chart_svg(series, title=title, ids=ids)))
    charts += roi_charts(released, measures, ids=ids, label=label)

    overall = measures[(measures["dimension"] == "overall") & (measures["period"] == "all")]
    overall = overall.assign(
        title=[title_of(m) for m in overall["measure"]],
        shown=[_reason(r) if r.suppressed else r.display
               for r in overall.itertuples(index=False)],
        n=[_n(r).removeprefix("n=") for r in overall.itertuples(index=False)],
    )[["title", "numerator", "n", "shown"]].rename(
        columns={"numerator": "numerator", "n": "n (denominator)", "shown": "figure"})
    coverage, empty = _coverage_html(released, label)
    threshold = _e(rules.get("small_cell_threshold", "?"))
    suppression_methods = "" if rules.get("mode") == "dp" else f"""
<h2>Methods: disclosure avoidance</h2>
<ul>
<li>Every figure on this page comes from the released tables of the published file; no
person-level data is read.</li>
<li><b>Small cell.</b> A rate is suppressed when its numerator or denominator is under
{threshold}{', or when fewer than ' + threshold + ' people are outside the numerator'
           if rules.get('protect_complement') == 'true' else ''}, or when it would be exactly
0% or 100%. A median is suppressed when fewer than {threshold} people contribute; a
co-enrollment count is suppressed when under {threshold}.</li>
<li><b>Complementary.</b> When a table publishes a total, a single suppressed
cell could be recovered by subtraction, so further cells (the next smallest) are suppressed
along every row, column and margin until each line hides at least two cells; a
linear-algebra check then confirms no suppressed cell can be solved from the published sums,
and an interval check that none can be narrowed to fewer than {threshold} values. Measures
that share people (employment, earnings and retention after exit) are suppressed together,
and so are cells that hold exactly the same people (a partner with a single program).</li>
<li><b>No data sent.</b> A partner that sent no file of the data a figure needs (for example
no services file) gets no figure for it, rather than a false 0%.</li>
<li><b>Medians</b> are fuzzy medians: the mean of the 45th and 55th percentiles, rounded to
$10.</li>
<li><b>Rates</b> are shown as whole percents; values that would round to 0% or 100% are shown
as "&lt;1%" / "&gt;99%".</li>
</ul>"""
    methods = f"""{suppression_methods}{_dp_methods(rules)}{roi_methods(released)}
<h2>Reading the charts</h2>
<ul>
<li><b>n</b> beside a bar is the number of exits, enrollments or persons the rate is over (for
median earnings: the number of people employed, whose earnings the median is taken of).</li>
<li>Hatched grey bars and cells are suppressed figures, not zeros; each says why. In the
rates by exit quarter, a suppressed quarter is a gap in its line.</li>
<li>Dates are published at month precision; outcomes after exit use quarterly UI wage
records.</li>
</ul>{linkage_methods(linkage_accuracy)}"""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join(f"<section class='chart'><h3>{_e(t)}</h3>{svg}</section>"
                   for t, svg in charts)
    mode = "differentially private" if rules.get("mode") == "dp" else \
        f"suppressed (small-cell threshold {threshold})"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Pathlink outcome report</title>
<style>
body {{ font-family: sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
.suppressed {{ background: #eee; color: #555; font-style: italic; }}
.empty-cohort {{ background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.6em; }}
section.chart {{ margin: 1.5em 0; }}
</style></head><body>
<h1>Pathlink outcome report</h1>
<p>Generated {generated}. Released figures only: {mode}.</p>
{coverage}
{empty}
<h2>Overall</h2>
{_table_html(overall) if len(overall) else _NOTHING_YET}
<h2>Charts</h2>
{body or _NOTHING_YET}
{roi_return_html(released, label)}
{methods}
</body></html>
"""
    Path(out_html).write_text(page, encoding="utf-8")
    return [t for t, _ in charts]


# ---- return on investment (pipelines/warehouse/roi.py) -----------------------------------

OUTCOME_LABELS = {"participant": "per participant", "completer": "per completer",
                  "credential": "per credential", "employed_q2": "per employed exit (Q2)"}


def cost_chart_svg(rows: pd.DataFrame, *, title: str, ids: _Ids, label: object = None) -> str:
    """Cost per outcome, one block of bars per group (participant, completer, credential,
    employed exit), each bar with the count it divides by; suppressed figures hatched with
    their reason. ``rows``: released_cost_per_outcome rows of one dimension."""
    label = label or (lambda g: g)
    label_w, bar_w, row_h, top, head_h = 170, 380, 20, 30, 20
    groups = list(dict.fromkeys(rows["group"]))
    height = top + len(groups) * (head_h + row_h * len(OUTCOME_LABELS) + 14) + 10
    hatch = ids.next()
    max_value = max([float(v) for v in rows["cost_per_unit"].dropna()] + [1.0])
    colors = dict(zip(OUTCOME_LABELS, SERIES_COLORS, strict=True))
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{label_w + bar_w + 230}' "
             f"height='{height}' xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' "
             f"font-size='12'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold'>{_e(title)}</text>"]
    y = top
    for group in groups:
        block = rows[rows["group"] == group].set_index("outcome")
        first = block.iloc[0]
        window = "" if pd.isna(first["window_first_quarter"]) else (
            f" {first['window_first_quarter']}-{first['window_last_quarter']}, "
            f"cost ${float(first['cost']):,.0f}")
        parts.append(f"<text x='0' y='{y + 14}'><tspan font-weight='bold'>"
                     f"{_e(label(group))}</tspan><tspan fill='#555' font-size='11'>"
                     f"{_e(window)}</tspan></text>")
        y += head_h
        for outcome, text in OUTCOME_LABELS.items():
            if outcome not in block.index:
                y += row_h
                continue
            row = block.loc[outcome]
            parts.append(f"<text x='{label_w - 6}' y='{y + 14}' text-anchor='end'>"
                         f"{_e(text)}</text>")
            if bool(row["suppressed"]) or pd.isna(row["cost_per_unit"]):
                reason = row["suppression_reason"]
                shown = "suppressed" if reason is None or pd.isna(reason) else \
                    f"no figure: {reason}"
                parts.append(f"<rect class='suppressed' x='{label_w}' y='{y + 3}' "
                             f"width='{bar_w}' height='{row_h - 6}' fill='url(#{hatch})'/>"
                             f"<text class='reason' x='{label_w + 6}' y='{y + 14}' "
                             f"fill='#444'>{_e(shown)}</text>")
            else:
                width = max(1.0, bar_w * float(row["cost_per_unit"]) / max_value)
                parts.append(f"<rect x='{label_w}' y='{y + 3}' width='{width:.1f}' "
                             f"height='{row_h - 6}' fill='{colors[outcome]}'/>"
                             f"<text x='{label_w + width + 6:.1f}' y='{y + 14}'>"
                             f"{_e(row['display'])}<tspan class='n' fill='#555'> "
                             f"(n={int(row['units']):,})</tspan></text>")
            y += row_h
        y += 14
    parts.append("</svg>")
    return "".join(parts)


def before_after_svg(before: pd.DataFrame, after: pd.DataFrame, change: pd.DataFrame, *,
                     title: str, ids: _Ids, label: object = None) -> str:
    """Median earnings in the year before entry and after exit, a pair of bars per group,
    with the median change and its n; a suppressed pair is hatched with its reason."""
    label = label or (lambda g: g)
    label_w, bar_w, pair_h, top = 340, 300, 40, 46
    groups = list(dict.fromkeys(change["group"]))
    hatch = ids.next()
    b, a, c = (f.set_index("group") for f in (before, after, change))
    values = [float(v) for f in (b, a) for v in f["value"].dropna()]
    max_value = max([*values, 1.0])
    parts = [f"<svg role='img' aria-label='{_e(title)}' width='{label_w + bar_w + 230}' "
             f"height='{top + pair_h * len(groups) + 10}' xmlns='http://www.w3.org/2000/svg' "
             f"font-family='sans-serif' font-size='12'>", HATCH.format(id=hatch),
             f"<text x='0' y='16' font-weight='bold'>{_e(title)}</text>",
             f"<rect x='{label_w}' y='24' width='10' height='10' fill='#9bbcd6'/>"
             f"<text x='{label_w + 14}' y='33'>before entry</text>"
             f"<rect x='{label_w + 110}' y='24' width='10' height='10' fill='#1b6ca8'/>"
             f"<text x='{label_w + 124}' y='33'>after exit</text>"]
    for i, group in enumerate(groups):
        y = top + i * pair_h
        parts.append(f"<text x='{label_w - 6}' y='{y + 20}' text-anchor='end'>"
                     f"{_e(label(group))}</text>")
        row = c.loc[group]
        hidden = [f.loc[group] for f in (b, a, c) if group in f.index
                  and (bool(f.loc[group]["suppressed"]) or pd.isna(f.loc[group]["value"]))]
        if hidden or group not in b.index or group not in a.index:
            reason = hidden[0] if hidden else row
            parts.append(f"<rect class='suppressed' x='{label_w}' y='{y + 4}' width='{bar_w}' "
                         f"height='{pair_h - 12}' fill='url(#{hatch})'/><text class='reason' "
                         f"x='{label_w + 6}' y='{y + 22}' fill='#444'>"
                         f"{_e(_reason(reason))}</text>")
            continue
        for k, (frame, color) in enumerate(((b, "#9bbcd6"), (a, "#1b6ca8"))):
            cell = frame.loc[group]
            width = max(1.0, bar_w * float(cell["value"]) / max_value)
            yy = y + 2 + k * 15
            parts.append(f"<rect x='{label_w}' y='{yy}' width='{width:.1f}' height='13' "
                         f"fill='{color}'/><text x='{label_w + width + 6:.1f}' y='{yy + 11}' "
                         f"font-size='11'>{_e(cell['display'])}</text>")
        parts.append(f"<text class='n' x='{label_w + bar_w + 90}' y='{y + 20}' fill='#333'>"
                     f"change {_e(row['display'])} ({_e(_n(row))})</text>")
    parts.append("</svg>")
    return "".join(parts)


def roi_charts(released: dict[str, pd.DataFrame], measures: pd.DataFrame, *, ids: _Ids,
               label) -> list[tuple[str, str]]:
    """The earnings before/after chart by program and the cost-per-outcome charts (by
    program and by funding stream), when the release has them."""
    charts: list[tuple[str, str]] = []
    program = measures[(measures["dimension"] == "program") & (measures["period"] == "all")]
    parts = {m: program[program["measure"] == m] for m in (
        "earnings_before_median", "earnings_after_median", "earnings_change_median")}
    if all(not f.empty for f in parts.values()):
        title = "Median earnings in the year before entry and after exit, by program"
        charts.append((title, before_after_svg(
            parts["earnings_before_median"], parts["earnings_after_median"],
            parts["earnings_change_median"], title=title, ids=ids,
            label=lambda g: label("program", g))))
    costs = released.get("released_cost_per_outcome")
    if costs is not None and not costs.empty:
        for dimension in ("program", "funding_stream"):
            rows = costs[costs["dimension"] == dimension]
            if rows.empty:
                continue
            title = f"Cost per outcome by {DIMENSION_LABELS[dimension]}"
            charts.append((title, cost_chart_svg(
                rows, title=title, ids=ids, label=lambda g, d=dimension: label(d, g))))
    return charts


def roi_return_html(released: dict[str, pd.DataFrame], label) -> str:
    """The return figure of each program as a table (empty when the release has none)."""
    returns = released.get("released_program_return")
    if returns is not None and not returns.empty:
        table = pd.DataFrame({
            "program": [label("program", g) for g in returns["program_id"]],
            "median earnings change": [
                "" if pd.isna(v) else dollars(float(v))
                for v in returns["median_earnings_change"]],
            "cost per participant": [
                "" if pd.isna(v) else dollars(float(v))
                for v in returns["cost_per_participant"]],
            "return": [r.display if not r.suppressed else
                       f"suppressed: {r.suppression_reason}"
                       for r in returns.itertuples(index=False)],
        })
        return ("<h2>Return figure by program</h2>\n<p>Discounted yearly earnings gain over "
                "the horizon divided by the cost per participant (see the methods; a "
                "before/after figure, not an effect).</p>\n" + _table_html(table))
    return ""


def roi_methods(released: dict[str, pd.DataFrame]) -> str:
    """The methods of the earnings change, cost per outcome and the return figure, with the
    settings the release was made with."""
    settings = released.get("released_roi_settings")
    if settings is None or settings.empty:
        return ""
    s = dict(zip(settings["setting"], settings["value"], strict=True))
    return f"""
<h2>Methods: earnings change, cost per outcome and return</h2>
<ul>
<li><b>Earnings change.</b> For each exit of the outcome cohort whose quarters are in the UI
wage data: total UI wages in {_e(s.get('earnings_after', '?'))} minus total UI wages in
{_e(s.get('earnings_before', '?'))} (a quarter without wages counts as $0). Released as the
median change, the medians before and after, and the share with higher earnings, by the same
dimensions and under the same suppression (or differential privacy) as every other measure.</li>
<li><b>Limits.</b> This is a before/after change within the same people, not the program's
effect: there is no comparison group, and earnings before entry are often depressed by the job
loss or hardship that led people to enroll (the "Ashenfelter dip"), so the change overstates
what the program caused. UI wages miss self-employment, federal and out-of-state jobs.</li>
<li><b>Cost per outcome.</b> A program's costs over its cost window ({_e(s.get('cost_window',
'?'))}) divided by its participants (enrollments active in the window), completers (cohort
exits in the window), credentials and employed exits (Q2) among them. The costs themselves are
program-level and published as sent; a figure whose count is suppressed is not shown, since
cost divided by it would give the count back (and so are the figures that would give it away
by subtraction).</li>
<li><b>Return figure.</b> {_e(s.get('return_formula', '?'))}, with horizon
H = {_e(s.get('horizon_years', '?'))} years and discount rate r = {_e(s.get('discount_rate',
'?'))} (annuity factor {_e(s.get('annuity_factor', '?'))}). Both inputs are released figures
(the fuzzy median change and the cost per participant), so it shows nothing they do not; it
assumes the before/after gain lasts the horizon, which it need not.</li>
</ul>"""
