"""Outcome measures over a hand-built warehouse whose answers are worked out below.

Fixture (partner data through 2024-10, wage data 2023Q1..2024Q4):
- P01..P12 exit program wb:adult at partner wb in 2023-05 (exit quarter 2023Q2), so Q2 after
  exit is 2023Q4 and Q4 after exit is 2024Q2: the outcome cohort is these 12 exits.
- P13 exits 2023-05 with an exclusion reason (deceased): out of every exit measure.
- P14 exits 2024-10: its 4th quarter after exit (2025Q4) is not covered: out of the cohort.
- Employed in 2023Q4: P01..P09 (earnings 1000, 2000, ..., 9000) -> 9/12 = 75%.
- Employed in 2024Q2: P01..P06 at E1 (their Q2 employer), P07 at E2 (Q2: E1), P10 -> 8/12.
- Retention with the same employer: P01..P06 of the 9 employed in Q2 -> 6/9.
- In education or training: P01..P08 flagged, P11 through a training_* service -> 9.
- Credentials: P01 2023-04 (during), P02 2024-05 (12 months after exit), P03 2024-06 (13
  months: too late), P09 (not in training) -> 2/9.
- Skill gains during training enrollments: P01 (credential 2023-04), P04 (reading 2 -> 3),
  P06 (reported gain); P05 (reading 3 -> 2) is no gain -> 3/9.
- P01, P02, P03 also enrolled at partner yd (still enrolled): co-enrolled 3 of 14 persons.
- Supportive services: P01 at wb, P03 at yd during enrollment (P02 got career services only,
  P12's supportive service came from yd where P12 is not enrolled) -> 2 of 17 enrollments.
- Sex: P01..P06 F, P07..P14 M -> employment Q2: F 6/6, M 3/6.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from pipelines.warehouse import measures as m
from schemas import ddl


def person(i: int) -> str:
    return f"P{i:02d}"


def build_fixture_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse schema and load the fixture described in the module docstring."""
    con.execute(ddl("warehouse"))
    m.create_warehouse_facts(con)
    persons = pd.DataFrame({
        "person_id": [person(i) for i in range(1, 15)],
        "birth_year": [1990] * 14,
        "sex": ["F"] * 6 + ["M"] * 8,
        "zip3": ["061"] * 14,
    })
    con.register("persons_in", persons)
    con.execute("INSERT INTO person BY NAME SELECT * FROM persons_in")
    con.unregister("persons_in")
    enrollment_rows = []
    for i in range(1, 15):
        exit_month = "2024-10" if i == 14 else "2023-05"
        enrollment_rows.append({
            "person_id": person(i), "partner_id": "wb", "program_id": "wb:adult",
            "funding_stream": "wioa_adult", "sector": "healthcare", "entry_month": "2023-01",
            "exit_month": exit_month, "exit_quarter": m.quarter_of(exit_month),
            "exit_exclusion_reason": "deceased" if i == 13 else None,
            "in_education_or_training": i <= 8,
        })
    for i in (1, 2, 3):
        enrollment_rows.append({
            "person_id": person(i), "partner_id": "yd", "program_id": "yd:youth",
            "funding_stream": "wioa_youth", "sector": None, "entry_month": "2023-01",
            "exit_month": None, "exit_quarter": None, "exit_exclusion_reason": None,
            "in_education_or_training": False,
        })
    wages = []
    for i in range(1, 10):
        wages.append((person(i), "2023Q4", "E1", 1000.0 * i))
    for i in range(1, 7):
        wages.append((person(i), "2024Q2", "E1", 5000.0))
    wages += [(person(7), "2024Q2", "E2", 4000.0), (person(10), "2024Q2", "E3", 3000.0),
              (person(10), "2023Q1", "E3", 2500.0), (person(10), "2024Q4", "E3", 3100.0)]
    services = pd.DataFrame([
        (person(1), "wb", "2023-02", "supportive_service", 120.0),
        (person(2), "wb", "2023-02", "career_service_basic", None),
        (person(3), "yd", "2023-03", "supportive_service", 80.0),
        (person(11), "wb", "2023-02", "training_occupational_skills", 1500.0),
        (person(12), "yd", "2023-02", "supportive_service", 50.0),
    ], columns=["person_id", "partner_id", "service_month", "service_type", "amount"])
    credentials = pd.DataFrame([
        (person(1), "wb", "occupational_certificate", "2023-04"),
        (person(2), "wb", "occupational_certificate", "2024-05"),
        (person(3), "wb", "occupational_certificate", "2024-06"),
        (person(9), "wb", "occupational_licensure", "2023-08"),
    ], columns=["person_id", "partner_id", "credential_type", "attained_month"])
    assessments = pd.DataFrame([
        (person(4), "wb", "reading", 2, "2023-01"), (person(4), "wb", "reading", 3, "2023-03"),
        (person(5), "wb", "reading", 3, "2023-01"), (person(5), "wb", "reading", 2, "2023-03"),
    ], columns=["person_id", "partner_id", "competency", "score", "assessment_month"])
    gains = pd.DataFrame([(person(6), "wb", "2023-02", "training_milestone")],
                         columns=["person_id", "partner_id", "gain_month", "gain_type"])
    profile = pd.DataFrame({
        "person_id": [person(i) for i in range(1, 15)],
        "hispanic_latino": [True] * 4 + [False] * 10,
        "race_category": [None] * 4 + ["white"] * 5 + ["black_african_american"] * 5,
        "age_band_first_entry": ["18-24"] * 7 + ["25-34"] * 7,
        **{flag: [i == 1 for i in range(1, 15)] for flag in m.BARRIER_FLAGS},
    })
    m.load_facts(con, {
        "person_profile": profile,
        "enrollment": pd.DataFrame(enrollment_rows),
        "wage": pd.DataFrame(wages, columns=["person_id", "year_quarter", "employer_key",
                                             "wages"]),
        "service": services,
        "credential": credentials,
        "assessment": assessments,
        "skill_gain": gains,
    })
    m.create_warehouse_views(con)


@pytest.fixture(scope="module")
def warehouse():
    con = duckdb.connect()
    build_fixture_warehouse(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def tidy(warehouse):
    return m.compute_measures(warehouse)


def cell(tidy, measure, dimension="overall", group="all", period="all"):
    rows = tidy[(tidy["measure"] == measure) & (tidy["dimension"] == dimension)
                & (tidy["group"] == group) & (tidy["period"] == period)]
    assert len(rows) == 1, (measure, dimension, group, period)
    return rows.iloc[0]


def test_tidy_columns(tidy):
    assert list(tidy.columns) == m.TIDY_COLUMNS
    assert set(tidy["dimension"]) >= set(m.DIMENSIONS)


def test_cohort_excludes_exclusions_and_uncovered_exits(warehouse):
    cohort = {r[0] for r in warehouse.execute("SELECT person_id FROM exit_cohort").fetchall()}
    assert cohort == {person(i) for i in range(1, 13)}


def test_employment_q2(tidy):
    row = cell(tidy, "employment_q2")
    assert (row.numerator, row.denominator) == (9, 12)
    assert row.value == pytest.approx(0.75)
    assert (cell(tidy, "employment_q2", "sex", "F").numerator,
            cell(tidy, "employment_q2", "sex", "F").denominator) == (6, 6)
    assert (cell(tidy, "employment_q2", "sex", "M").numerator,
            cell(tidy, "employment_q2", "sex", "M").denominator) == (3, 6)
    by_quarter = cell(tidy, "employment_q2", period="2023Q2")
    assert (by_quarter.numerator, by_quarter.denominator) == (9, 12)


def test_employment_q4(tidy):
    row = cell(tidy, "employment_q4")
    assert (row.numerator, row.denominator) == (8, 12)


def test_median_earnings_q2_and_fuzzy_median(tidy):
    row = cell(tidy, "median_earnings_q2")
    assert row.denominator == 9
    assert row.value == pytest.approx(5000.0)
    # earnings 1000..9000: p45 at rank 3.6 -> 4600, p55 at rank 4.4 -> 5400, mean 5000
    assert row.fuzzy_value == pytest.approx((4600 + 5400) / 2)
    female = cell(tidy, "median_earnings_q2", "sex", "F")
    # 1000..6000: p45 at rank 2.25 -> 3250, p55 at 2.75 -> 3750
    assert female.fuzzy_value == pytest.approx(3500.0)


def test_retention_same_employer(tidy):
    row = cell(tidy, "retention_q2_q4")
    assert (row.numerator, row.denominator) == (6, 9)


def test_credential_attainment_within_one_year(tidy):
    row = cell(tidy, "credential_attainment")
    assert (row.numerator, row.denominator) == (2, 9)


def test_measurable_skill_gains(tidy, warehouse):
    row = cell(tidy, "measurable_skill_gains")
    assert (row.numerator, row.denominator) == (3, 9)
    kinds = dict(warehouse.execute(
        "SELECT person_id, gain_type FROM skill_gain_all WHERE gain_source <> 'credential'"
    ).fetchall())
    assert kinds == {person(4): "assessment_level_gain", person(6): "training_milestone"}


def test_co_enrollment_and_pairs(tidy, warehouse):
    row = cell(tidy, "co_enrollment")
    assert (row.numerator, row.denominator) == (3, 14)
    yd = cell(tidy, "co_enrollment", "partner", "yd")
    assert (yd.numerator, yd.denominator) == (3, 3)
    pairs = m.coenrollment_pairs(warehouse)
    got = {(a, b): n for a, b, n in pairs.itertuples(index=False)}
    assert got == {("wb", "wb"): 14, ("wb", "yd"): 3, ("yd", "yd"): 3}


def test_supportive_services(tidy):
    row = cell(tidy, "supportive_services")
    assert (row.numerator, row.denominator) == (2, 17)
    by_type = tidy[tidy["measure"] == "services_by_type"].set_index("group")
    assert by_type.loc["supportive_service", "numerator"] == 2
    assert by_type.loc["career_service_basic", "numerator"] == 1
    assert by_type.loc["training_occupational_skills", "numerator"] == 1
    assert set(by_type["denominator"]) == {17}


def test_person_dimensions(tidy):
    hispanic = cell(tidy, "employment_q2", "race_ethnicity", "hispanic_latino")
    assert (hispanic.numerator, hispanic.denominator) == (4, 4)
    returning = cell(tidy, "employment_q2", "barrier", "returning_citizen")
    assert (returning.numerator, returning.denominator) == (1, 1)
    none = cell(tidy, "employment_q2", "barrier", "none")
    assert none.denominator == 11
    ages = tidy[(tidy["measure"] == "employment_q2") & (tidy["dimension"] == "age_band")]
    assert ages["denominator"].sum() == 12


def test_additive_dimensions_add_up(tidy):
    for measure, spec in m.MEASURES.items():
        if not spec.additive_dimensions:
            continue
        total = cell(tidy, measure).denominator
        for dim in spec.additive_dimensions:
            rows = tidy[(tidy["measure"] == measure) & (tidy["dimension"] == dim)
                        & (tidy["period"] == "all")]
            assert rows["denominator"].sum() == total, (measure, dim)


def test_person_quarter_timeline(warehouse):
    rows = warehouse.execute(
        "SELECT year_quarter, partners_enrolled, exits, employed, earnings, credentials "
        "FROM person_quarter WHERE person_id = 'P01' ORDER BY year_quarter").fetchall()
    by_q = {r[0]: r[1:] for r in rows}
    assert by_q["2023Q1"][0] == 2  # wb and yd
    assert by_q["2023Q2"][1] == 1  # exit quarter
    assert by_q["2023Q4"][2] is True and float(by_q["2023Q4"][3]) == 1000.0
    assert by_q["2023Q2"][4] == 1  # credential 2023-04
    assert max(by_q) == "2024Q4"


def test_helpers():
    assert m.race_category("white") == "white"
    assert m.race_category("asian;white") == "two_or_more_races"
    assert m.race_category("declined") is None
    assert m.age_band(16) == "14-17" and m.age_band(24) == "18-24" and m.age_band(70) == "55+"
    assert m.age_band(12) is None
    assert m.quarter_of("2024-11") == "2024Q4" and m.month_of("2024-11-05") == "2024-11"


def test_published_facts_hold_no_identity_columns(warehouse):
    columns = {r[0] for r in warehouse.execute(
        "SELECT column_name FROM information_schema.columns").fetchall()}
    for banned in ("ssn", "first_name", "last_name", "date_of_birth", "partner_record_id",
                   "employer_id", "street_address", "email", "phone"):
        assert banned not in columns


def test_synthetic_outcomes_deterministic_and_contract_shaped(tmp_path):
    import csv

    from pipelines.synthetic.outcomes import contract_columns, generate_outcomes

    def make(root):
        truth = root / "truth.csv"
        rows = [("workforce_board", "2026-09", f"WB-{i}", f"T{i}") for i in range(12)]
        rows += [("workforce_board", "2026-10", f"WB-{i}", f"T{i}") for i in range(6)]
        rows += [("youth_dept", "2026-10", f"Y-{i}", f"T{i}") for i in range(4)]
        with truth.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["partner_id", "period", "partner_record_id", "true_person_id"])
            w.writerows(rows)
        for partner, period, rid, tid in rows:
            folder = root / "landing" / partner / period
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "participants.csv"
            new = not path.exists()
            with path.open("a", newline="") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(["partner_record_id", "first_name", "last_name", "date_of_birth",
                                "ssn"])
                ssn = "" if tid in ("T0", "T1") else f"123-45-{int(tid[1:]) + 1000:04d}"
                w.writerow([rid, "Ana", "Diaz", "1990-01-01", ssn])
        return generate_outcomes(root, truth, seed=3)

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    counts = make(a)
    assert counts == make(b)
    assert counts["persons_without_ssn"] == 2 and counts["enrollments"] == 22
    files = sorted(p.relative_to(a) for p in (a / "landing").rglob("*.csv"))
    assert files == sorted(p.relative_to(b) for p in (b / "landing").rglob("*.csv"))
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    wages = (a / "landing" / "ct_dol" / "2026-09" / "wages.csv").read_text().splitlines()
    assert wages[0].split(",") == list(contract_columns("wages") or wages[0].split(","))
    assert not any(",Ana,Diaz," in line and line.startswith(",") for line in wages[1:])
    header = (a / "landing/workforce_board/2026-09/enrollments.csv").read_text().splitlines()[0]
    assert header.split(",") == list(contract_columns("enrollments") or header.split(","))
