"""The static HTML report: expected charts, suppressed cells marked, released figures only."""

from __future__ import annotations

import re

import duckdb
import pytest
from test_disclosure import random_warehouse

from pipelines.warehouse import disclosure as d
from pipelines.warehouse.report import write_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    db = folder / "pathlink.duckdb"
    con = duckdb.connect(str(db))
    random_warehouse(con, seed=5, persons=200)
    d.publish_outcomes(con, threshold=10)
    released = con.execute("SELECT * FROM released_measures").df()
    pairs = con.execute("SELECT * FROM released_coenrollment_pairs").df()
    hidden_rows = con.execute(
        "SELECT employment_q2 FROM (SELECT count(*) FILTER (WHERE employed_q2) AS employment_q2"
        " FROM outcome_exit)").fetchall()
    con.close()
    out = folder / "report.html"
    charts = write_report(db, out)
    return charts, out.read_text(encoding="utf-8"), released, pairs, hidden_rows


def test_expected_charts(report):
    charts, page, *_ = report
    expected = [
        "Employment rate, 2nd quarter after exit by partner",
        "Employment rate, 4th quarter after exit by partner",
        "Median earnings, 2nd quarter after exit by partner",
        "Credential attainment within one year after exit by partner",
        "Measurable skill gains by partner",
        "Retention with the same employer, 2nd to 4th quarter by partner",
        "Employment rate, 2nd quarter after exit by race/ethnicity",
        "Overlap of partners' caseloads (persons enrolled at both partners)",
        "Outcome rates by exit quarter",
    ]
    for title in expected:
        assert title in charts
        assert f"<h3>{title.replace(chr(39), '&#x27;')}</h3>" in page
    assert page.count("<svg") == len(charts)


def test_suppressed_cells_are_marked(report):
    _charts, page, released, pairs, _ = report
    assert released["suppressed"].any() and pairs["suppressed"].any()
    assert "class='suppressed'" in page
    assert "suppr." in page          # heatmap cells
    assert "Methods: disclosure avoidance" in page
    assert "fuzzy median" in page.lower()


def test_self_contained(report):
    _charts, page, *_ = report
    assert "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", page)


def test_only_released_figures(report):
    _charts, page, released, _pairs, hidden = report
    shown = set(released.loc[~released["suppressed"], "display"])
    page = re.sub(r"<text class='axis'[^>]*>[^<]*</text>", "", page)  # axis ticks
    for text in re.findall(r">(\d{1,3}%|&lt;1%|&gt;99%|\$[\d,]+)<", page):
        text = text.replace("&lt;", "<").replace("&gt;", ">")
        assert text in shown, text
    # a suppressed count never appears as a number in the page
    sup = released[released["suppressed"] & (released["measure"] == "employment_q2")]
    assert sup["numerator"].isna().all()
    assert hidden  # the raw number exists in the warehouse, the page only has released ones
