"""Disclosure avoidance: primary and complementary suppression, reasons, attacks, export."""

from __future__ import annotations

import itertools

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_measures import build_fixture_warehouse

from pipelines.warehouse import disclosure as d
from pipelines.warehouse import measures as m
from schemas import ddl

T = 10


def rate_rows(measure, cells):
    """Tidy rows from {(dimension, group, period): (numerator, denominator)}."""
    return pd.DataFrame([
        {"measure": measure, "dimension": dim, "group": grp, "period": per, "numerator": n,
         "denominator": den, "value": n / den if den else None, "fuzzy_value": float("nan")}
        for (dim, grp, per), (n, den) in cells.items()
    ])


def status(released, dimension, group, period="all", measure=None):
    rows = released[(released["dimension"] == dimension) & (released["group"] == group)
                    & (released["period"] == period)]
    if measure:
        rows = rows[rows["measure"] == measure]
    assert len(rows) == 1
    return rows.iloc[0]


def test_small_counts_suppressed_and_complement_added():
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (100, 150),
        ("partner", "a", "all"): (60, 80),
        ("partner", "b", "all"): (35, 60),
        ("partner", "c", "all"): (5, 10),   # numerator 5 < 10: primary
    })
    out = d.suppress_measures(tidy, threshold=T)
    assert status(out, "partner", "c").suppression == "primary"
    # c alone could be recovered as total - a - b: the next smallest (b, 60) goes too
    assert status(out, "partner", "b").suppression == "complementary"
    assert not status(out, "partner", "a").suppressed
    assert not status(out, "overall", "all").suppressed
    hidden = out[out["suppressed"]]
    assert hidden[["numerator", "denominator", "value"]].isna().all().all()
    assert set(hidden["display"]) == {"suppressed"}


def test_rate_suppressed_when_denominator_small_or_complement_small():
    tidy = rate_rows("credential_attainment", {
        ("overall", "all", "all"): (60, 120),
        ("sex", "F", "all"): (12, 15),      # 3 outside the numerator: complement rule
        ("sex", "M", "all"): (40, 96),
        ("sex", "X", "all"): (8, 9),        # denominator 9
    })
    out = d.suppress_measures(tidy, threshold=T)
    assert status(out, "sex", "X").suppression == "primary"
    assert status(out, "sex", "F").suppression == "primary"
    assert not status(out, "sex", "M").suppressed
    relaxed = d.suppress_measures(tidy, threshold=T, protect_complement=False)
    assert not status(relaxed, "sex", "F").suppressed or \
        status(relaxed, "sex", "F").suppression == "complementary"


def test_no_rate_released_as_zero_or_hundred_percent():
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (5000 + 40 + 9990, 5000 + 40 + 10000),
        ("partner", "a", "all"): (5000, 5000),     # 100%: suppressed
        ("partner", "b", "all"): (0, 40),          # 0%: suppressed
        ("partner", "c", "all"): (9990, 10000),    # 99.9%: shown as >99%
    })
    out = d.suppress_measures(tidy, threshold=T, protect_complement=False)
    assert status(out, "partner", "a").suppressed
    assert status(out, "partner", "b").suppressed
    c = status(out, "partner", "c")
    assert c.display == ">99%"
    shown = out[~out["suppressed"]]
    assert not shown["display"].isin(["0%", "100%"]).any()
    assert not shown["value"].dropna().isin([0.0, 1.0]).any()


def test_fuzzy_median_released_only_when_n_at_least_threshold():
    tidy = pd.DataFrame([
        {"measure": "median_earnings_q2", "dimension": "overall", "group": "all",
         "period": "all", "numerator": None, "denominator": 40, "value": 7000.0,
         "fuzzy_value": 7123.4},
        {"measure": "median_earnings_q2", "dimension": "sex", "group": "F", "period": "all",
         "numerator": None, "denominator": 31, "value": 7100.0, "fuzzy_value": 7188.0},
        {"measure": "median_earnings_q2", "dimension": "sex", "group": "M", "period": "all",
         "numerator": None, "denominator": 9, "value": 6000.0, "fuzzy_value": 6010.0},
    ])
    out = d.suppress_measures(tidy, threshold=T)
    overall = status(out, "overall", "all")
    assert overall.value == 7120.0 and overall.display == "$7,120"   # fuzzy, not exact 7000
    assert status(out, "sex", "M").suppressed
    assert status(out, "sex", "F").suppressed   # complementary: F = overall - M
    assert not (out["value"] == 7000.0).any()


def test_linked_family_cells_suppressed_together():
    cells = {("overall", "all", "all"): (60, 100), ("sex", "F", "all"): (52, 80),
             ("sex", "M", "all"): (8, 20)}
    emp = rate_rows("employment_q2", cells)
    median = pd.DataFrame([
        {"measure": "median_earnings_q2", "dimension": k[0], "group": k[1], "period": k[2],
         "numerator": 0, "denominator": n, "value": 5000.0, "fuzzy_value": 5000.0}
        for k, (n, _den) in cells.items()])
    out = d.suppress_measures(pd.concat([emp, median], ignore_index=True), threshold=T)
    for measure in ("employment_q2", "median_earnings_q2"):
        assert status(out, "sex", "M", measure=measure).suppressed
        assert status(out, "sex", "F", measure=measure).suppressed


def test_by_quarter_series_gets_complementary_suppression():
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (120, 180),
        ("overall", "all", "2024Q1"): (60, 90),
        ("overall", "all", "2024Q2"): (55, 82),
        ("overall", "all", "2024Q3"): (5, 8),
    })
    out = d.suppress_measures(tidy, threshold=T)
    assert status(out, "overall", "all", "2024Q3").suppression == "primary"
    assert status(out, "overall", "all", "2024Q2").suppression == "complementary"
    assert not status(out, "overall", "all", "all").suppressed


def test_pairs_matrix_rows_and_columns():
    pairs = pd.DataFrame([
        ("a", "a", 300), ("a", "b", 40), ("a", "c", 4), ("b", "b", 200), ("b", "c", 55),
        ("c", "c", 120)], columns=["partner_a", "partner_b", "persons"])
    out = d.suppress_pairs(pairs, threshold=T)
    hidden = {(a, b) for a, b, s in zip(out.partner_a, out.partner_b, out.suppressed,
                                        strict=True) if s}
    assert ("a", "c") in hidden
    # every partner's row has 0 or >= 2 suppressed cells
    for partner in "abc":
        k = sum(1 for a, b in hidden if partner in (a, b))
        assert k != 1, partner
    linked = d.suppress_pairs(pairs, threshold=T, linked_diagonal=["c"])
    assert bool(linked.loc[(linked.partner_a == "c") & (linked.partner_b == "c"),
                           "suppressed"].iloc[0])


# ---- the attack ---------------------------------------------------------------------------

def attack(released: pd.DataFrame, specs=m.MEASURES) -> list:
    """Try to solve every suppressed cell from what is released; returns solved cells.

    The attacker knows, per measure and for numerators and denominators separately: groups of
    an additive dimension add up to the overall cell (per period), an exit-quarter series adds
    up to its all-quarters cell, and (exit family) the number employed in Q2 equals the n of
    the median and the denominator of retention. A cell is solved when it is the only unknown
    of an equation, or more generally when its unit vector is in the row space of the system
    (combinations of row/column sums, totals and differences across dimensions).
    """
    unknown_index = {}
    equations = []  # (coefficients dict, constant)
    by_key = {(r.measure, r.dimension, r.group, r.period): r
              for r in released.itertuples(index=False)}

    def var(measure, field, key):
        row = by_key.get((measure, *key))
        if row is None:
            return None, None
        value = getattr(row, field)
        if not row.suppressed:
            return None, (None if pd.isna(value) else float(value))
        name = (measure, field, key)
        unknown_index.setdefault(name, len(unknown_index))
        return name, None

    for measure, rows in released.groupby("measure"):
        spec = specs[measure]
        fields = ["denominator"] if spec.kind == "median" else ["numerator", "denominator"]
        for field in fields:
            for line in d.measure_lines(rows, spec):
                if line.total is None:
                    continue
                coef, const = {}, 0.0
                for part in line.parts:
                    name, value = var(measure, field, part)
                    if name:
                        coef[name] = coef.get(name, 0) + 1
                    else:
                        const -= value
                name, value = var(measure, field, line.total)
                if name:
                    coef[name] = coef.get(name, 0) - 1
                else:
                    const += value
                if coef:
                    equations.append((coef, const))
    exit_rows = released[released.measure == "employment_q2"]
    for r in exit_rows.itertuples(index=False):
        key = (r.dimension, r.group, r.period)
        for other, field in (("median_earnings_q2", "denominator"),
                             ("retention_q2_q4", "denominator")):
            a, va = var("employment_q2", "numerator", key)
            b, vb = var(other, field, key)
            if a is None and b is None:
                continue
            coef, const = {}, 0.0
            if a:
                coef[a] = 1
            else:
                const -= va
            if b:
                coef[b] = coef.get(b, 0) - 1
            else:
                const += vb
            equations.append((coef, const))
    if not unknown_index:
        return []
    matrix = np.zeros((len(equations), len(unknown_index)))
    for i, (coef, _const) in enumerate(equations):
        for name, c in coef.items():
            matrix[i, unknown_index[name]] = c
    # e_j is in the row space iff M^T x = e_j has an exact solution: solve for every unit
    # vector at once by least squares and look at the residuals
    n = len(unknown_index)
    if len(equations):
        x = np.linalg.lstsq(matrix.T, np.eye(n), rcond=None)[0]
        residual = np.abs(matrix.T @ x - np.eye(n)).max(axis=0)
    else:
        residual = np.ones(n)
    solved = []
    for name, j in unknown_index.items():
        single = [coef for coef, _ in equations if list(coef) == [name]]
        if single or residual[j] < 1e-6:
            solved.append(name)
    return solved


def random_warehouse(con, seed: int, persons: int = 260) -> None:
    """A random warehouse with many small groups (so there is plenty to suppress)."""
    rng = np.random.default_rng(seed)
    con.execute(ddl("warehouse"))
    m.create_warehouse_facts(con)
    ids = [f"R{i:04d}" for i in range(persons)]
    people = pd.DataFrame({"person_id": ids, "birth_year": 1990,
                           "sex": rng.choice(["F", "M", "X"], persons, p=[.55, .42, .03]),
                           "zip3": "061"})
    con.register("people", people)
    con.execute("INSERT INTO person BY NAME SELECT * FROM people")
    partners = ["p1", "p2", "p3", "p4"]
    enroll, wages, creds = [], [], []
    for pid in ids:
        for partner in rng.choice(partners, int(rng.choice([1, 1, 2, 3])), replace=False,
                                  p=[.5, .3, .15, .05]):
            exit_q = int(rng.integers(0, 6))
            exit_month = f"2022-{3 * exit_q % 12 + 1:02d}" if exit_q < 4 else \
                f"2023-{3 * (exit_q - 4) + 1:02d}"
            enroll.append({
                "person_id": pid, "partner_id": partner, "program_id": f"{partner}:x",
                "funding_stream": rng.choice(["wioa_adult", "careerconnect", "wioa_youth"]),
                "sector": rng.choice(["it", "healthcare", "clean_energy"], p=[.5, .45, .05]),
                "entry_month": "2021-06", "exit_month": exit_month,
                "exit_quarter": m.quarter_of(exit_month),
                "exit_exclusion_reason": None, "in_education_or_training": rng.random() < .6})
            if rng.random() < .5:
                creds.append((pid, partner, "occupational_certificate", exit_month))
        employer = f"E{int(rng.integers(0, 30))}"
        for q in range(2021 * 4 + 2, 2024 * 4 + 4):
            if rng.random() < .75:
                wages.append((pid, f"{q // 4}Q{q % 4 + 1}",
                              employer if rng.random() < .85 else "E99",
                              float(rng.integers(2000, 12000))))
    profile = pd.DataFrame({
        "person_id": ids, "hispanic_latino": rng.random(persons) < .4,
        "race_category": rng.choice(["white", "black_african_american", "asian"], persons,
                                    p=[.5, .45, .05]),
        "age_band_first_entry": rng.choice(["18-24", "25-34", "55+"], persons, p=[.5, .45, .05]),
        **{flag: rng.random(persons) < .1 for flag in m.BARRIER_FLAGS}})
    m.load_facts(con, {
        "person_profile": profile, "enrollment": pd.DataFrame(enroll),
        "wage": pd.DataFrame(wages, columns=["person_id", "year_quarter", "employer_key",
                                             "wages"]),
        "credential": pd.DataFrame(creds, columns=["person_id", "partner_id",
                                                   "credential_type", "attained_month"]),
        "service": pd.DataFrame([("R0000", "p1", "2024-06", "supportive_service", 10.0)],
                                columns=["person_id", "partner_id", "service_month",
                                         "service_type", "amount"]),
    })
    m.create_warehouse_views(con)


@pytest.fixture(scope="module")
def random_release():
    con = duckdb.connect()
    random_warehouse(con, seed=11)
    tidy = m.compute_measures(con)
    tables = d.released_tables(con, threshold=T)
    yield con, tidy, tables
    con.close()


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_attack_recovers_no_suppressed_cell(random_release):
    _con, _tidy, tables = random_release
    released = tables["released_measures"]
    assert released["suppressed"].sum() >= 10          # the fixture has small cells
    assert (released["suppressed"] & (released["dimension"] != "overall")).any()
    assert attack(released) == []


def test_attack_would_succeed_without_complementary_suppression(random_release):
    """Sanity check of the attacker: primary-only suppression leaks."""
    _con, tidy, _tables = random_release
    naive = tidy.copy()
    hide = (naive["numerator"].fillna(T) < T) | (naive["denominator"] < T)
    naive_released = naive.assign(suppressed=hide.to_numpy())
    assert attack(naive_released) != []


def test_released_counts_are_true_counts(random_release):
    _con, tidy, tables = random_release
    released = tables["released_measures"]
    merged = released.merge(tidy, on=["measure", "dimension", "group", "period"],
                            suffixes=("", "_true"))
    shown = merged[~merged["suppressed"]]
    assert (shown["denominator"] == shown["denominator_true"]).all()
    assert (shown["numerator"].fillna(-1) == shown["numerator_true"].fillna(-1)).all()
    assert not released.loc[released["suppressed"], ["numerator", "denominator", "value"]] \
        .notna().any().any()
    assert "suppression" not in released.columns


def test_every_additive_line_hides_zero_or_two_plus(random_release):
    _con, _tidy, tables = random_release
    released = tables["released_measures"]
    for measure, rows in released.groupby("measure"):
        hidden = set(zip(rows.loc[rows.suppressed, "dimension"],
                         rows.loc[rows.suppressed, "group"],
                         rows.loc[rows.suppressed, "period"], strict=True))
        for line in d.measure_lines(rows, m.MEASURES[measure]):
            if line.total is None:
                continue
            assert sum(c in hidden for c in line.cells) != 1, (measure, line)


def test_pairs_release_consistent_with_caseloads(random_release):
    _con, _tidy, tables = random_release
    pairs = tables["released_coenrollment_pairs"]
    measures = tables["released_measures"]
    co = measures[(measures.measure == "co_enrollment") & (measures.dimension == "partner")]
    for row in co.itertuples(index=False):
        diag = pairs[(pairs.partner_a == row.group) & (pairs.partner_b == row.group)].iloc[0]
        if row.suppressed:
            assert diag.suppressed
        else:
            assert diag.persons == row.denominator
    hidden = pairs[pairs.suppressed]
    assert hidden["persons"].isna().all()


# ---- export (the query sandbox: tests/unit/test_sandbox.py) --------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory):
    path = tmp_path_factory.mktemp("pub") / "pathlink.duckdb"
    con = duckdb.connect(str(path))
    build_fixture_warehouse(con)
    d.publish_outcomes(con, threshold=3)
    con.close()
    return path


def test_export_released(published, tmp_path):
    csvs = d.export_released(published, tmp_path / "csv", "csv")
    names = {p.stem for p in csvs}
    assert {"released_measures", "released_coenrollment_pairs"} <= names
    assert all(n.startswith("released_") for n in names)
    frame = pd.read_csv(tmp_path / "csv" / "released_measures.csv")
    assert "suppressed" in frame.columns
    parquet = d.export_released(published, tmp_path / "pq", "parquet")
    assert len(parquet) == len(csvs)
    with pytest.raises(ValueError):
        d.export_released(published, tmp_path, "xlsx")


def test_threshold_default_and_every_combination_of_thresholds():
    assert d.small_cell_threshold(None) == 10
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (70, 110), ("sex", "F", "all"): (40, 60),
        ("sex", "M", "all"): (25, 38), ("sex", "X", "all"): (5, 12)})
    for threshold, protect in itertools.product((5, 10, 20), (True, False)):
        out = d.suppress_measures(tidy, threshold=threshold, protect_complement=protect)
        assert out["suppressed"].sum() != 1


# ---- reasons ------------------------------------------------------------------------------

def test_every_suppressed_cell_carries_its_reason():
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (100, 150),
        ("partner", "a", "all"): (60, 80),
        ("partner", "b", "all"): (35, 60),
        ("partner", "c", "all"): (5, 10),
    })
    out = d.suppress_measures(tidy, threshold=T)
    assert status(out, "partner", "c").suppression_reason == "small cell"
    assert status(out, "partner", "b").suppression_reason == "complementary"
    assert pd.isna(status(out, "partner", "a").suppression_reason)
    assert out.loc[out["suppressed"], "suppression_reason"].notna().all()
    assert out.loc[~out["suppressed"], "suppression_reason"].isna().all()


def test_no_data_sent_is_its_own_reason_not_a_zero():
    tidy = rate_rows("supportive_services", {
        ("overall", "all", "all"): (80, 400),
        ("partner", "a", "all"): (50, 150),
        ("partner", "b", "all"): (30, 130),
        ("partner", "c", "all"): (0, 120),        # c sent no services file
        ("program", "c:x", "all"): (0, 120),
    })
    sent = pd.DataFrame({"partner_id": ["a", "b", "c"],
                         "dataset": ["services", "services", "enrollments"]})
    no_data = d.no_data_cells(tidy, sent)
    assert no_data == {("supportive_services", ("partner", "c", "all")),
                       ("supportive_services", ("program", "c:x", "all"))}
    out = d.suppress_measures(tidy, threshold=T, no_data=no_data)
    assert status(out, "partner", "c").suppression_reason == "no data sent"
    assert status(out, "program", "c:x").suppression_reason == "no data sent"
    # c alone on the partner line would be recovered from the total: one more goes
    assert status(out, "partner", "b").suppression_reason == "complementary"
    nobody = d.no_data_cells(tidy, sent[sent["dataset"] != "services"])
    assert len(nobody) == len(tidy)            # nobody sent services: every cell


def test_cells_holding_the_same_units_are_suppressed_together():
    """A partner whose only program is that program: both bars are the same figure."""
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (130, 200),
        ("partner", "a", "all"): (60, 80), ("partner", "b", "all"): (70, 120),
        ("program", "a:1", "all"): (60, 80),
        ("program", "b:1", "all"): (66, 110), ("program", "b:2", "all"): (4, 10),
    })
    plain = d.suppress_measures(tidy, threshold=T)
    assert status(plain, "program", "b:2").suppression_reason == "small cell"
    # the program line hides a:1 as its complement, but partner a shows the same figure
    assert status(plain, "program", "a:1").suppressed
    assert not status(plain, "partner", "a").suppressed
    signatures = pd.DataFrame([
        ("employment_q2", "partner", "a", "all", "80:1"),
        ("employment_q2", "program", "a:1", "all", "80:1"),
        ("employment_q2", "partner", "b", "all", "120:2"),
        ("employment_q2", "program", "b:1", "all", "110:3"),
        ("employment_q2", "program", "b:2", "all", "10:4"),
        ("employment_q2", "overall", "all", "all", "200:5"),
    ], columns=["measure", "dimension", "group", "period", "signature"])
    linked = d.suppress_measures(tidy, threshold=T, signatures=signatures)
    assert status(linked, "program", "a:1").suppressed
    assert status(linked, "partner", "a").suppression_reason == "complementary"
    # and the partner line then hides a second cell, so a is not the total minus b
    assert status(linked, "partner", "b").suppressed


def test_interval_audit_stops_a_complementary_bound_from_pinning_a_small_cell():
    """p (primary) + c (complementary) = 25 known: c >= 2T tells p <= 5 without the audit."""
    tidy = rate_rows("employment_q2", {
        ("overall", "all", "all"): (200, 425),
        ("sex", "F", "all"): (150, 300), ("sex", "M", "all"): (38, 100),
        ("sex", "X", "all"): (2, 5),             # primary
        ("sex", "unknown", "all"): (10, 20),     # its complement: den 20 >= 2T
    })
    lines = d.measure_lines(tidy, m.MEASURES["employment_q2"])
    hidden = {("sex", "X", "all"), ("sex", "unknown", "all")}
    assert d.interval_leaks(tidy, lines, hidden, {("sex", "X", "all")},
                            spec=m.MEASURES["employment_q2"], threshold=T)
    out = d.suppress_measures(tidy, threshold=T)
    hidden_now = set(zip(out.loc[out.suppressed, "dimension"], out.loc[out.suppressed, "group"],
                         out.loc[out.suppressed, "period"], strict=True))
    assert len(hidden_now) >= 3
    assert not d.interval_leaks(out.assign(numerator=tidy["numerator"],
                                           denominator=tidy["denominator"]),
                                lines, hidden_now,
                                {("sex", "X", "all")}, spec=m.MEASURES["employment_q2"],
                                threshold=T)


def test_signatures_of_the_fixture_warehouse_link_single_program_partners(published):
    con = duckdb.connect(str(published), read_only=True)
    try:
        sig = m.cell_signatures(con)
        released = con.execute("SELECT * FROM released_measures").df()
    finally:
        con.close()
    assert {"measure", "dimension", "group", "period", "signature"} <= set(sig.columns)
    merged = released.merge(sig, on=["measure", "dimension", "group", "period"])
    for (_measure, _signature), cells in merged.groupby(["measure", "signature"]):
        if len(cells) > 1 and not str(_signature).startswith("0:"):
            assert cells["suppressed"].nunique() == 1, cells
