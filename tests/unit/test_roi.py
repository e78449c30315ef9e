"""Return on investment over a hand-built warehouse whose answers are worked out below.

Coverage: UI wages 2022Q1..2024Q4, partner data through 2024-12 (P20 enters then). The outcome
cohort is exits through 2023Q4 (Q+4 <= 2024Q4) and 2023-12 (12 months of partner data); the
earnings cohort also needs the 4 quarters before the entry quarter (entry >= 2023Q1) and
quarters 2-5 after the exit quarter (exit <= 2023Q3) in the wage data.

Program wb:hc (partner wb, wioa_adult):
- P1..P5 enter 2023-01 (2023Q1) and exit 2023-05 (2023Q2): before = 2022Q1..2022Q4, after =
  2023Q4..2024Q3.
    P1 before 4 x 1,000 = 4,000, after 4 x 2,000 = 8,000: +4,000, higher
    P2 before 0, after 2 x 3,000 = 6,000: +6,000, higher
    P3 before 4 x 2,500 = 10,000, after 4 x 2,000 = 8,000: -2,000
    P4 before 0, after 0: 0
    P5 before 2022Q3 + 2022Q4 = 3,000, after 2023Q4..2024Q2 = 4,500: +1,500, higher; its
       wages in 2023Q1 (the entry quarter) and 2023Q3 (exit + 1) are in neither window.
  Changes sorted: -2,000, 0, 1,500, 4,000, 6,000: median 1,500; fuzzy median = mean of the
  45th (0 + 0.8 x 1,500 = 1,200) and 55th (1,500 + 0.2 x 2,500 = 2,000) percentiles = 1,600.
  Higher: 3 of 5. Before: 0, 0, 3,000, 4,000, 10,000 (median 3,000; fuzzy (2,400 + 3,200) / 2
  = 2,800). After: 0, 4,500, 6,000, 8,000, 8,000 (median 6,000; fuzzy (5,700 + 6,400) / 2 =
  6,050).
- P6 enters 2023-06 and is still enrolled: a participant, never an exit. P7 enters 2022-06 and
  exits 2023-02 (2023Q1): in the cohort, not the earnings cohort (2021Q2..2022Q1 are not all
  in the wage data).
- In training: P1, P2, P3, P7. Credentials: P1 2023-09, P2 2024-04 (11 months after exit), P4
  2023-06 (not in training: no count), P7 2023-01 (during).
- Employed in Q+2: P1, P2, P3, P5 (2023Q4), P7 (2023Q3); not P4. Supportive services: P1.
- Costs: 2023Q1 staff 10,000 and training 20,000 (wioa_adult); 2023Q2 staff 10,000
  (wioa_adult) and training 5,000 (foundation_career_pathways: braided); 2023-07 and 2023-08
  staff 3,000 each (2023Q3 is incomplete: no 2023-09); 2024Q4 staff 50,000 (its exits are not
  measurable yet). The window is 2023Q1..2023Q2 and its cost 45,000.
  Participants (active in 2023Q1 or 2023Q2): P1..P7 = 7. Completers (cohort exits in 2023Q1 or
  2023Q2): P1..P5, P7 = 6. Credentials among them: P1, P2, P7 = 3. Employed Q2: P1, P2, P3,
  P5, P7 = 5. Cost per participant 45,000 / 7 = 6,429; per completer 7,500; per credential
  15,000; per employed exit 9,000.
Program yd:youth (partner yd, wioa_youth): P8, P9, P13 enter 2023-02 and exit 2023-04
  (2023Q2). P8 (training, credential 2023-05) earns 1,000 at E8 in 2023Q4 and 2024Q2 (+2,000);
  P13 (training, no credential) 1,200 in 2023Q4 (+1,200); P9 nothing (0). P8 had a supportive
  service. P20 enters 2024-12 (still enrolled). Costs: 2023Q2 staff 4,000. Window 2023Q2: 3
  participants, 3 completers, 1 credential, 2 employed.
Program yd:mini (partner yd, wioa_youth): P14 alone enters 2023-02 and exits 2023-04, earns
  1,500 at E14 in 2023Q4 and 2024Q2 (+3,000). Costs 2023Q2 staff 1,000. Its released
  employment (1 of 1), retention (1 of 1) and supportive services (0 of 1) are 100% or 0%, so
  suppressed even at a threshold of 1: **the program whose counts are suppressed gets no cost
  figure** ("complementary": held back with the released cells it is nested in), and the next
  smallest program of each line, yd:youth, loses the figures it shares with it.
Program cc:it (partner cc, careerconnect): P10..P12 enter 2023-01 and exit 2023-05. P10
  (training, credential 2023-06) earns 2,200 at E9 in 2023Q4 and 2024Q2 (+4,400); P11
  (training, no credential) 900 in 2023Q4 (+900) and had a supportive service; P12 earns only
  in 2024Q4, after its window (0). cc sent no costs: "no data sent".

Overall earnings change: -2,000, 0 (P4), 0 (P9), 0 (P12), 900, 1,200, 1,500, 2,000, 4,000,
4,400, 6,000: n = 11, median 1,200, 7 higher.

Threshold 1 (only 0% and 100% are suppressed) keeps the fixture small enough to follow every
rule by hand.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import duckdb
import pandas as pd
import pytest

from pipelines.warehouse import disclosure as d
from pipelines.warehouse import measures as m
from pipelines.warehouse import roi
from pipelines.workspace import RoiSettings
from schemas import ddl


def person(i: int) -> str:
    return f"P{i:02d}"


def _enrollment(i, partner, program, stream, entry, exit_month, training=False):
    return {"person_id": person(i), "partner_id": partner, "program_id": program,
            "funding_stream": stream, "sector": None, "entry_month": entry,
            "exit_month": exit_month, "exit_quarter": m.quarter_of(exit_month),
            "exit_exclusion_reason": None, "in_education_or_training": training}


def build_roi_warehouse(con: duckdb.DuckDBPyConnection,
                        settings: RoiSettings | None = None, *, mini: bool = False) -> None:
    """The warehouse of the module docstring, with the ROI views (``mini``: with yd:mini)."""
    con.execute(ddl("warehouse"))
    m.create_warehouse_facts(con)
    ids = [*range(1, 15), 20]
    con.register("persons_in", pd.DataFrame({
        "person_id": [person(i) for i in ids], "birth_year": [1990] * len(ids),
        "sex": ["F", "M"] * 7 + ["F"], "zip3": ["061"] * len(ids)}))
    con.execute("INSERT INTO person BY NAME SELECT * FROM persons_in")
    con.unregister("persons_in")
    enrollments = [
        *(_enrollment(i, "wb", "wb:hc", "wioa_adult", "2023-01", "2023-05", i <= 3)
          for i in range(1, 6)),
        _enrollment(6, "wb", "wb:hc", "wioa_adult", "2023-06", None),
        _enrollment(7, "wb", "wb:hc", "wioa_adult", "2022-06", "2023-02", True),
        *(_enrollment(i, "yd", "yd:youth", "wioa_youth", "2023-02", "2023-04", i != 9)
          for i in (8, 9, 13)),
        _enrollment(20, "yd", "yd:youth", "wioa_youth", "2024-12", None),
        *(_enrollment(i, "cc", "cc:it", "careerconnect", "2023-01", "2023-05", i != 12)
          for i in (10, 11, 12)),
    ]
    wages = [
        *((person(1), q, "E1", 1000.0) for q in ("2022Q1", "2022Q2", "2022Q3", "2022Q4")),
        *((person(1), q, "E1", 2000.0) for q in ("2023Q4", "2024Q1", "2024Q2", "2024Q3")),
        (person(2), "2024Q1", "E2", 3000.0), (person(2), "2023Q4", "E2", 3000.0),
        *((person(3), q, "E3", 2500.0) for q in ("2022Q1", "2022Q2", "2022Q3", "2022Q4")),
        *((person(3), q, "E3", 2000.0) for q in ("2023Q4", "2024Q1", "2024Q2", "2024Q3")),
        (person(5), "2022Q3", "E5", 1500.0), (person(5), "2022Q4", "E5", 1500.0),
        (person(5), "2023Q1", "E5", 7777.0), (person(5), "2023Q3", "E5", 8888.0),
        *((person(5), q, "E5", 1500.0) for q in ("2023Q4", "2024Q1", "2024Q2")),
        (person(7), "2023Q3", "E7", 2500.0),
        (person(8), "2023Q4", "E8", 1000.0), (person(8), "2024Q2", "E8", 1000.0),
        (person(13), "2023Q4", "E13", 1200.0),
        (person(10), "2023Q4", "E9", 2200.0), (person(10), "2024Q2", "E9", 2200.0),
        (person(11), "2023Q4", "E10", 900.0), (person(12), "2024Q4", "E9", 500.0),
    ]
    credentials = pd.DataFrame([
        (person(1), "wb", "occupational_certificate", "2023-09"),
        (person(2), "wb", "occupational_certificate", "2024-04"),
        (person(4), "wb", "occupational_certificate", "2023-06"),
        (person(7), "wb", "occupational_certificate", "2023-01"),
        (person(8), "yd", "occupational_certificate", "2023-05"),
        (person(10), "cc", "occupational_certificate", "2023-06"),
    ], columns=["person_id", "partner_id", "credential_type", "attained_month"])
    services = pd.DataFrame([
        (person(1), "wb", "2023-02", "supportive_service", 120.0),
        (person(8), "yd", "2023-03", "supportive_service", 80.0),
        (person(11), "cc", "2023-02", "supportive_service", 60.0),
    ], columns=["person_id", "partner_id", "service_month", "service_type", "amount"])
    costs = pd.DataFrame([
        ("wb", "wb:hc", "2023Q1", "2023Q1", "wioa_adult", "staff", 10000.0),
        ("wb", "wb:hc", "2023Q1", "2023Q1", "wioa_adult", "training", 20000.0),
        ("wb", "wb:hc", "2023Q2", "2023Q2", "wioa_adult", "staff", 10000.0),
        ("wb", "wb:hc", "2023Q2", "2023Q2", "foundation_career_pathways", "training", 5000.0),
        ("wb", "wb:hc", "2023-07", "2023Q3", "wioa_adult", "staff", 3000.0),
        ("wb", "wb:hc", "2023-08", "2023Q3", "wioa_adult", "staff", 3000.0),
        ("wb", "wb:hc", "2024Q4", "2024Q4", "wioa_adult", "staff", 50000.0),
        ("yd", "yd:youth", "2023Q2", "2023Q2", "wioa_youth", "staff", 4000.0),
    ], columns=["partner_id", "program_id", "cost_period", "cost_quarter", "funding_stream",
                "cost_category", "amount"])
    programs = [("wb:hc", "wb", "hc", "wioa_adult", None),
                ("yd:youth", "yd", "youth", "wioa_youth", None),
                ("cc:it", "cc", "it", "careerconnect", None)]
    if mini:
        enrollments.append(_enrollment(14, "yd", "yd:mini", "wioa_youth", "2023-02", "2023-04"))
        wages += [(person(14), "2023Q4", "E14", 1500.0), (person(14), "2024Q2", "E14", 1500.0)]
        costs.loc[len(costs)] = ("yd", "yd:mini", "2023Q2", "2023Q2", "wioa_youth", "staff",
                                 1000.0)
        programs.append(("yd:mini", "yd", "mini", "wioa_youth", None))
    m.load_facts(con, {
        "enrollment": pd.DataFrame(enrollments),
        "program": pd.DataFrame(
            programs, columns=["program_id", "partner_id", "program_name", "funding_stream",
                               "sector"]),
        "wage": pd.DataFrame(wages, columns=["person_id", "year_quarter", "employer_key",
                                             "wages"]),
        "credential": credentials,
        "service": services,
        "program_cost": costs,
    })
    m.create_warehouse_views(con)
    roi.create_roi_views(con, settings or RoiSettings())


@pytest.fixture(scope="module")
def warehouse():
    con = duckdb.connect()
    build_roi_warehouse(con)
    yield con
    con.close()


def cell(tidy, measure, dimension="overall", group="all", period="all"):
    rows = tidy[(tidy["measure"] == measure) & (tidy["dimension"] == dimension)
                & (tidy["group"] == group) & (tidy["period"] == period)]
    assert len(rows) == 1, (measure, dimension, group, period)
    return rows.iloc[0]


def test_earnings_before_and_after_per_exit(warehouse):
    rows = warehouse.execute(
        "SELECT person_id, earnings_before, earnings_after, earnings_change, earnings_higher "
        "FROM outcome_earnings_change ORDER BY person_id").fetchall()
    assert rows == [
        (person(1), 4000.0, 8000.0, 4000.0, True),
        (person(2), 0.0, 6000.0, 6000.0, True),
        (person(3), 10000.0, 8000.0, -2000.0, False),
        (person(4), 0.0, 0.0, 0.0, False),
        (person(5), 3000.0, 4500.0, 1500.0, True),
        (person(8), 0.0, 2000.0, 2000.0, True),
        (person(9), 0.0, 0.0, 0.0, False),
        (person(10), 0.0, 4400.0, 4400.0, True),
        (person(11), 0.0, 900.0, 900.0, True),
        (person(12), 0.0, 0.0, 0.0, False),
        (person(13), 0.0, 1200.0, 1200.0, True),
    ]


def test_earnings_change_measures_by_hand(warehouse):
    tidy = m.compute_measures(warehouse, specs=roi.earnings_specs())
    change = cell(tidy, "earnings_change_median", "program", "wb:hc")
    assert (change["denominator"], change["value"]) == (5, 1500.0)
    assert change["fuzzy_value"] == pytest.approx(1600.0)
    higher = cell(tidy, "earnings_higher_share", "program", "wb:hc")
    assert (higher["numerator"], higher["denominator"]) == (3, 5)
    before = cell(tidy, "earnings_before_median", "program", "wb:hc")
    after = cell(tidy, "earnings_after_median", "program", "wb:hc")
    assert (before["value"], before["fuzzy_value"]) == (3000.0, pytest.approx(2800.0))
    assert (after["value"], after["fuzzy_value"]) == (6000.0, pytest.approx(6050.0))
    overall = cell(tidy, "earnings_change_median")
    assert (overall["denominator"], overall["value"]) == (11, 1200.0)
    assert cell(tidy, "earnings_higher_share")["numerator"] == 7
    # by exit quarter: every earnings-cohort exit is in 2023Q2
    assert cell(tidy, "earnings_change_median", period="2023Q2")["denominator"] == 11


@pytest.fixture(scope="module")
def released(warehouse):
    """Every released relation at threshold 1 (~10 s: the tests using it are slow)."""
    return roi.released_tables(warehouse, threshold=1)


@pytest.mark.slow
def test_released_earnings_change_is_the_fuzzy_median(released):
    tables = released
    released = tables["released_measures"]
    change = cell(released, "earnings_change_median", "program", "wb:hc")
    assert (change["value"], change["display"], bool(change["suppressed"])) == (
        1600.0, "$1,600", False)
    higher = cell(released, "earnings_higher_share", "program", "wb:hc")
    assert (higher["value"], higher["display"]) == (0.6, "60%")
    # yd:youth: +2,000, 0, +1,200: fuzzy (0.9 x 1,200 + 1,200 + 0.1 x 800) / 2 = 1,180
    assert cell(released, "earnings_change_median", "program", "yd:youth")["value"] == 1180.0
    definitions = set(tables["released_measure_definitions"]["measure"])
    assert {"earnings_change_median", "earnings_higher_share", "earnings_before_median",
            "earnings_after_median"} <= definitions
    assert not definitions & set(roi.COUNT_SPECS)


def test_a_negative_median_is_shown_with_its_sign():
    assert d.dollars(-2000.0) == "-$2,000" and d.dollars(1600.0) == "$1,600"


def test_window_is_configurable():
    con = duckdb.connect()
    try:
        build_roi_warehouse(con, RoiSettings(pre_quarters=2, post_first=2, post_last=3))
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT person_id, earnings_before, earnings_after FROM outcome_earnings_change "
            "ORDER BY person_id").fetchall()}
    finally:
        con.close()
    # before = 2022Q3..2022Q4, after = 2023Q4..2024Q1
    assert rows[person(1)] == (2000.0, 4000.0)
    assert rows[person(3)] == (5000.0, 4000.0)
    assert rows[person(5)] == (3000.0, 3000.0)


def cost_rows(tables, dimension, group):
    frame = tables["released_cost_per_outcome"]
    return frame[(frame["dimension"] == dimension)
                 & (frame["group"] == group)].set_index("outcome")


@pytest.mark.slow
def test_cost_per_credential_by_hand(released):
    hc = cost_rows(released, "program", "wb:hc")
    assert hc.loc["credential", "units"] == 3
    assert hc.loc["credential", "cost"] == 45000.0
    assert hc.loc["credential", "cost_per_unit"] == 15000.0
    assert hc.loc["credential", "display"] == "$15,000"
    assert hc["units"].to_dict() == {"participant": 7, "completer": 6, "credential": 3,
                                     "employed_q2": 5}
    assert hc["cost_per_unit"].to_dict() == {"participant": 6429.0, "completer": 7500.0,
                                             "credential": 15000.0, "employed_q2": 9000.0}
    assert set(hc["window_first_quarter"]) == {"2023Q1"}
    assert set(hc["window_last_quarter"]) == {"2023Q2"}
    assert set(hc["window_quarters"]) == {2}
    assert not hc["suppressed"].any()
    # the partner wb is its one program; overall adds yd:youth (4,000; 3, 3, 1, 2)
    assert cost_rows(released, "partner", "wb")["cost_per_unit"].to_dict() == \
        hc["cost_per_unit"].to_dict()
    overall = cost_rows(released, "overall", "all")
    assert overall["units"].to_dict() == {"participant": 10, "completer": 9, "credential": 4,
                                          "employed_q2": 7}
    assert overall.loc["credential", "cost_per_unit"] == 12250.0  # 49,000 / 4


@pytest.mark.slow
def test_cost_per_outcome_by_funding_stream_uses_the_cost_rows_stream(released):
    adult = cost_rows(released, "funding_stream", "wioa_adult")
    assert adult.loc["participant", "cost"] == 40000.0  # the braided 5,000 is not WIOA
    assert adult.loc["participant", "cost_per_unit"] == 5714.0  # 40,000 / 7
    braided = cost_rows(released, "funding_stream", "foundation_career_pathways")
    assert braided["suppressed"].all() and braided.loc["participant", "cost"] == 5000.0
    assert set(braided["suppression_reason"]) == {roi.NO_UNITS}


@pytest.mark.slow
def test_no_costs_sent_and_no_cost_quarters(warehouse, released):
    cc = cost_rows(released, "program", "cc:it")
    assert cc["suppressed"].all() and cc["cost"].isna().all()
    assert set(cc["suppression_reason"]) == {roi.NO_COST_DATA}
    sent = pd.DataFrame({"partner_id": ["wb", "yd"], "dataset": ["program_costs"] * 2})
    tables = roi.roi_tables(warehouse, released["released_measures"], threshold=1,
                            settings=RoiSettings(), datasets_sent=sent)
    assert set(cost_rows(tables, "program", "cc:it")["suppression_reason"]) == {"no data sent"}
    assert set(cost_rows(tables, "partner", "cc")["suppression_reason"]) == {"no data sent"}


@pytest.mark.slow
def test_return_figure_by_hand(released):
    ret = released["released_program_return"].set_index("program_id")
    factor = 1 / 1.03 + 1 / 1.03 ** 2 + 1 / 1.03 ** 3
    assert roi.annuity_factor(3, 0.03) == pytest.approx(factor)
    hc = ret.loc["wb:hc"]
    assert hc["median_earnings_change"] == 1600.0 and hc["cost_per_participant"] == 6429.0
    assert hc["present_value_gain"] == pytest.approx(1600.0 * factor, abs=0.01)
    assert hc["return_ratio"] == round(1600.0 * factor / 6429.0, 2) == 0.70
    assert ret.loc["yd:youth", "return_ratio"] == round(1180.0 * factor / 1333.0, 2) == 2.50
    assert bool(ret.loc["cc:it", "suppressed"])
    assert "cost per participant" in ret.loc["cc:it", "suppression_reason"]


@pytest.mark.slow
def test_return_figure_follows_the_configured_horizon_and_rate(released):
    settings = RoiSettings(horizon_years=5, discount_rate=0.0)
    programs = {"wb:hc": "wb", "yd:youth": "yd", "cc:it": "cc"}
    ret = roi.program_return(released["released_measures"],
                             released["released_cost_per_outcome"], programs, settings)
    hc = ret.set_index("program_id").loc["wb:hc"]
    assert hc["return_ratio"] == round(1600.0 * 5 / 6429.0, 2)
    assert (hc["horizon_years"], hc["discount_rate"]) == (5, 0.0)
    rows = dict(zip(roi.settings_frame(settings)["setting"],
                    roi.settings_frame(settings)["value"], strict=True))
    assert rows["horizon_years"] == "5" and rows["discount_rate"] == "0"


@pytest.mark.slow
def test_program_costs_are_released_at_program_level(released):
    costs = released["released_program_costs"]
    assert list(costs.columns) == ["partner_id", "program_id", "cost_quarter",
                                   "funding_stream", "cost_category", "amount", "sent_as",
                                   "quarter_complete"]
    q3 = costs[(costs["program_id"] == "wb:hc") & (costs["cost_quarter"] == "2023Q3")]
    assert q3["amount"].sum() == 6000 and set(q3["sent_as"]) == {"month"}
    assert not q3["quarter_complete"].any()  # 2023-09 was never sent


@pytest.mark.slow
def test_a_program_whose_counts_are_suppressed_gets_no_cost_figure():
    con = duckdb.connect()
    try:
        build_roi_warehouse(con, mini=True)
        tables = roi.released_tables(con, threshold=1)
    finally:
        con.close()
    measures = tables["released_measures"]
    assert cell(measures, "employment_q2", "program", "yd:mini")["suppressed"]
    mini = cost_rows(tables, "program", "yd:mini")
    assert mini["suppressed"].all() and mini["units"].isna().all()
    assert mini["cost_per_unit"].isna().all() and set(mini["display"]) == {"suppressed"}
    assert mini.loc["participant", "cost"] == 1000.0  # the cost itself is no person data
    # cost / figure would give the count back, so every program sharing a line with it is
    # held back too: with one other costed partner, only the overall figures stay
    for program in ("yd:youth", "wb:hc"):
        assert cost_rows(tables, "program", program)["suppressed"].all()
    assert not cost_rows(tables, "overall", "all")["suppressed"].any()
    ret = tables["released_program_return"].set_index("program_id")
    assert bool(ret.loc["yd:mini", "suppressed"])


def test_counts_nested_in_released_cells_are_checked_by_subtraction():
    counts = pd.DataFrame([
        ("roi_employed_q2", "program", "a", "all", 12, 20),
        ("roi_employed_q2", "program", "b", "all", 12, 20),
        ("roi_employed_q2", "program", "c", "all", 12, 20),
    ], columns=["measure", "dimension", "group", "period", "numerator", "denominator"])
    released = pd.DataFrame([
        # a: 5 more exits outside the window, 3 of them employed: 3 of 5 is a small cell
        ("employment_q2", "program", "a", "all", 15, 25, False),
        # b: the window holds every exit: nothing to subtract
        ("employment_q2", "program", "b", "all", 12, 20, False),
        # c: suppressed in the release: the window's count could give it back
        ("employment_q2", "program", "c", "all", None, None, True),
    ], columns=["measure", "dimension", "group", "period", "numerator", "denominator",
                "suppressed"])
    forced = roi._nested_forced(counts, released, threshold=3)
    assert forced == {("roi_employed_q2", ("program", "a", "all")),
                      ("roi_employed_q2", ("program", "c", "all"))}


@pytest.fixture(scope="module")
def roi_report(tmp_path_factory):
    """The report of the mini fixture's release: (chart titles, the HTML file)."""
    from pipelines.warehouse.report import write_report

    folder = tmp_path_factory.mktemp("roi_report")
    db = folder / "pathlink.duckdb"
    con = duckdb.connect(str(db))
    try:
        build_roi_warehouse(con, mini=True)
        d.write_released(con, roi.released_tables(con, threshold=1))
    finally:
        con.close()
    out = folder / "report.html"
    return write_report(db, out), out


@pytest.mark.slow
def test_report_shows_the_roi_charts_and_no_figure_for_a_suppressed_program(roi_report):
    """The report of the mini fixture: the before/after and cost-per-outcome charts, the
    return table and the methods' limits; yd:mini's bars say why there is no figure."""
    charts, out = roi_report
    page = out.read_text(encoding="utf-8")
    assert "Median earnings in the year before entry and after exit, by program" in charts
    assert "Cost per outcome by program" in charts
    assert "Cost per outcome by funding stream" in charts
    assert page.count("<svg") == len(charts)
    assert "<h2>Return figure by program</h2>" in page
    assert "there is no comparison group" in page and "not the program's\neffect" in page
    cost_svg = page[page.index("aria-label='Cost per outcome by program'"):]
    cost_svg = cost_svg[:cost_svg.index("</svg>")]
    assert "yd: mini" in cost_svg and "no figure: " in cost_svg
    assert "$12,250" not in cost_svg  # the overall figure is not a program's


@pytest.mark.slow
def test_dp_mode_releases_the_roi_figures_under_the_one_budget():
    """In dp mode the earnings measures and the counts behind cost per outcome are noisy
    figures of the same budget; the internal counts are not released as measures."""
    con = duckdb.connect()
    try:
        build_roi_warehouse(con)
        tables = roi.released_tables(con, threshold=1, mode="dp", rho=1.0, delta=1e-6,
                                     max_units_per_person=2)
    finally:
        con.close()
    measures = tables["released_measures"]
    assert {"earnings_change_median", "earnings_higher_share"} <= set(measures["measure"])
    assert not set(measures["measure"]) & set(roi.COUNT_SPECS)
    rules = dict(zip(tables["released_disclosure_rules"]["rule"],
                     tables["released_disclosure_rules"]["setting"], strict=True))
    assert rules["mode"] == "dp" and "earnings_change_bounds" in rules
    assert float(rules["rho_spent"]) <= 1.0 + 1e-9
    # the noise is not seeded: whatever is shown divides the real cost by a noisy count of at
    # least the threshold; whatever is not says why
    hc = cost_rows(tables, "program", "wb:hc")
    assert set(hc["cost"]) == {45000.0}
    costs = tables["released_cost_per_outcome"]
    shown = costs[~costs["suppressed"]]
    assert (shown["units"] >= 1).all()
    assert (shown["cost_per_unit"] == (shown["cost"] / shown["units"]).round()).all()
    assert costs.loc[costs["suppressed"], "suppression_reason"].notna().all()


def test_roi_settings_are_read_and_checked(tmp_path):
    import tomllib

    import tomli_w

    from pipelines.workspace import WorkspaceError, init_workspace, load_workspace

    root = tmp_path / "ws"
    init_workspace(root, ["wb"], key_id="k1")
    assert load_workspace(root).roi == RoiSettings()
    config = root / "pathlink.toml"
    raw = tomllib.loads(config.read_text())
    raw["roi"] = {"pre_quarters": 2, "post_first": 3, "post_last": 4, "horizon_years": 5,
                  "discount_rate": 0.05}
    config.write_text(tomli_w.dumps(raw))
    assert load_workspace(root).roi == RoiSettings(2, 3, 4, 5, 0.05)
    raw["roi"] = {"pre_quarters": 4, "post_first": 2, "post_last": 3}  # 2 after, 4 before
    config.write_text(tomli_w.dumps(raw))
    with pytest.raises(WorkspaceError, match=r"\[roi\]"):
        load_workspace(root)
    raw["roi"] = {"discount_rate": "three percent"}
    config.write_text(tomli_w.dumps(raw))
    with pytest.raises(WorkspaceError, match=r"\[roi\]"):
        load_workspace(root)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
def test_roi_report_renders_in_headless_chromium(roi_report, tmp_path):
    """A real browser opens the page with the ROI charts and takes a screenshot."""
    _charts, out = roi_report
    shot = tmp_path / "roi_report.png"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         "--window-size=1100,3000", f"--screenshot={shot}", out.as_uri()],
        capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1100, 3000)
    assert shot.stat().st_size > 50_000  # a blank page compresses to a few kilobytes
