"""The static HTML report: expected charts, suppressed cells marked with their reason, n beside
every bar, display names, data covered, gaps for suppressed quarters, released figures only;
and a screenshot in headless Chromium where it is installed."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import duckdb
import pandas as pd
import pytest
from test_disclosure import random_warehouse

from pipelines.warehouse import disclosure as d
from pipelines.warehouse import tiers
from pipelines.warehouse.report import write_report

PARTNER_NAMES = {"p1": "Partner One", "p2": "Partner Two", "p3": "Partner Three",
                 "p4": "Partner Four"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    db = folder / "pathlink.duckdb"
    con = duckdb.connect(str(db))
    random_warehouse(con, seed=5, persons=200)
    sent = pd.DataFrame([(p, ds, "2024-01", "2024-06", 6) for p in PARTNER_NAMES
                         for ds in ("enrollments", "credentials", "wages")]
                        + [("p1", "services", "2024-01", "2024-06", 6)],
                        columns=["partner_id", "dataset", "first_period", "last_period",
                                 "periods"])
    d.publish_outcomes(con, threshold=10, datasets_sent=sent)
    d.write_released(con, tiers.metadata_tables(con, partners=PARTNER_NAMES,
                                                datasets_sent=sent,
                                                periods=["2024-05", "2024-06"]))
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
    for reason in set(released["suppression_reason"].dropna()):
        assert f"suppressed: {reason}" in page, reason
    assert "suppressed: no data sent" in page  # p2-p4 sent no services file
    assert re.search(r">(small|compl\.)</text>", page)  # heatmap cells say why
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


def test_display_names_and_n_beside_every_bar(report):
    _charts, page, released, *_ = report
    for name in PARTNER_NAMES.values():
        assert name in page
    assert ">p1<" not in page  # ids are not labels
    shown = released[~released["suppressed"] & (released["measure"] == "employment_q2")
                     & (released["dimension"] == "partner")]
    for row in shown.itertuples(index=False):
        assert f"(n={int(row.denominator):,})" in page


def test_data_covered_and_gaps_not_zeros(report):
    _charts, page, released, *_ = report
    assert "Data covered" in page and "2024-05 to" in page and "2024-06" in page
    assert "no data sent" in page
    by_quarter = released[(released["dimension"] == "overall") & (released["period"] != "all")]
    if by_quarter["suppressed"].any():
        assert "class='suppressed gap'" in page
    assert "a gap, not 0%" in page


def _page_without(tmp_path, emptied: tuple[str, ...], sent_dataset: str) -> str:
    """The report of a random warehouse with the `emptied` tables' rows deleted, one partner
    having sent `sent_dataset` (2024-01 to 2024-06)."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    random_warehouse(con, seed=5, persons=60)
    for table in emptied:
        con.execute(f"DELETE FROM {table}")
    sent = pd.DataFrame([("p1", sent_dataset, "2024-01", "2024-06", 6)],
                        columns=["partner_id", "dataset", "first_period", "last_period",
                                 "periods"])
    d.publish_outcomes(con, threshold=10, datasets_sent=sent)
    d.write_released(con, tiers.metadata_tables(con, partners=PARTNER_NAMES,
                                                datasets_sent=sent, periods=["2024-06"]))
    con.close()
    write_report(tmp_path / "w.duckdb", tmp_path / "r.html")
    return (tmp_path / "r.html").read_text()


def test_empty_cohort_is_explained(tmp_path):
    page = _page_without(tmp_path, ("wage",), "enrollments")  # nothing to follow exits with
    assert "The outcome cohort is empty" in page and "no UI wage records were sent" in page
    assert "through none" not in page and "no exits can be measured yet" in page


def test_participant_files_only_say_what_is_missing_not_none(tmp_path):
    """Only participant files so far: no partner month and no cohort window to name."""
    page = _page_without(tmp_path, ("wage", "enrollment", "service", "credential",
                                    "assessment", "employment", "skill_gain"), "participants")
    assert "up to none" not in page and "from none" not in page
    assert "no enrollment, service, credential, assessment, employment or skill-gain record" \
        in page
    assert "no exits can be measured yet" in page
    assert page.count("No figures yet") == 2  # neither an empty table nor an empty chart list


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow  # starts a browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
def test_report_renders_in_headless_chromium(report, tmp_path):
    """A real browser opens the page and takes a screenshot (apt-get install -y chromium)."""
    _charts, page, *_ = report
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         "--window-size=1100,2600", f"--screenshot={shot}", html.as_uri()],
        capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _png_size(shot) == (1100, 2600)
    # a blank page compresses to a few kilobytes; charts and tables do not
    assert shot.stat().st_size > 50_000
