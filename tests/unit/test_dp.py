"""Differential-privacy mode: OpenDP's noise under the configured budget, reported right."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from test_disclosure import random_warehouse

from pipelines.warehouse import disclosure as d
from pipelines.warehouse import dp
from pipelines.warehouse import measures as m
from pipelines.warehouse.report import write_report

RHO = 2.0
pytestmark = pytest.mark.slow  # DP over a warehouse: ~15 s; left out of `make test-fast`


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    path = tmp_path_factory.mktemp("dp") / "w.duckdb"
    con = duckdb.connect(str(path))
    random_warehouse(con, seed=11, persons=400)
    exact = m.compute_measures(con)
    tables = d.released_tables(con, threshold=10, mode="dp", rho=RHO, delta=1e-6,
                               max_units_per_person=2)
    d.write_released(con, tables)
    con.close()
    return path, exact, tables


def test_the_budget_is_spent_exactly_and_stated(release):
    _path, _exact, tables = release
    rules = dict(zip(tables["released_disclosure_rules"]["rule"],
                     tables["released_disclosure_rules"]["setting"], strict=True))
    assert rules["mode"] == "dp" and float(rules["rho"]) == RHO
    assert float(rules["rho_spent"]) == pytest.approx(RHO, rel=1e-6)
    assert float(rules["epsilon"]) == pytest.approx(dp.epsilon_at(RHO, 1e-6), abs=0.01)
    # sigma = sensitivity / sqrt(2 rho / queries), sensitivity = max units per person
    sigma = 2 / np.sqrt(2 * RHO / int(rules["queries"]))
    assert float(rules["noise_sd"]) == pytest.approx(sigma, abs=0.05)


def test_every_cell_is_released_with_noise_and_no_complementary_suppression(release):
    _path, exact, tables = release
    released = tables["released_measures"]
    assert len(released) == len(exact)
    assert set(released["suppression_reason"].dropna()) <= {"small cell", "no data sent"}
    merged = released.merge(exact, on=["measure", "dimension", "group", "period"],
                            suffixes=("", "_exact"))
    shown = merged[~merged["suppressed"] & (merged["measure"] != "median_earnings_q2")]
    assert (shown["denominator"] >= 10).all()  # a small noisy n is not shown
    overall = shown[shown["dimension"].isin(["overall", "partner", "sex"])]
    differs = (overall["denominator"] != overall["denominator_exact"]).mean()
    assert differs > 0.8, differs  # noise, not exact counts
    rules = dict(zip(tables["released_disclosure_rules"]["rule"],
                     tables["released_disclosure_rules"]["setting"], strict=True))
    error = (overall["denominator"] - overall["denominator_exact"]).abs()
    # partitioned groups: noise sd as stated (bounding can only lower a count)
    assert error.median() < 3 * float(rules["noise_sd"])


def test_medians_come_from_the_private_quantile(release):
    _path, _exact, tables = release
    released = tables["released_measures"]
    medians = released[(released["measure"] == "median_earnings_q2") & ~released["suppressed"]]
    assert len(medians) > 0
    assert (medians["value"].astype(float) % dp.MEDIAN_STEP == 0).all()


def test_contribution_bound_keeps_at_most_k_units_per_person():
    import pandas as pd

    rows = pd.DataFrame({"person_id": ["a"] * 5 + ["b"], "unit_key": [*"12345", "9"]})
    kept = dp._bounded(rows, 2)
    assert kept.groupby("person_id").size().to_dict() == {"a": 2, "b": 1}


def test_report_states_the_budget_and_noise_scale(release, tmp_path):
    path, _exact, _tables = release
    write_report(path, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert "Methods: differential privacy" in page and "&rho; = 2" in page
    assert "standard deviation" in page and "Methods: disclosure avoidance" not in page
