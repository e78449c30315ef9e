"""Research extracts: generalization ladders, cell suppression to k, risk measurement."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_measures import build_fixture_warehouse

from pipelines.warehouse import disclosure, research, tiers
from pipelines.workspace import QUASI_IDENTIFIERS, ReleaseSettings

QIS = list(QUASI_IDENTIFIERS)


def random_people(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    partners = rng.choice(["a", "a+b", "b", "a+c", "c", "a+b+c"], n, p=[.4, .15, .2, .1, .1, .05])
    entry = [f"2024-{m:02d}" for m in rng.integers(1, 13, n)]
    exits = [f"2025-{m:02d}" if rng.random() < .7 else research.NONE
             for m in rng.integers(1, 13, n)]
    program = rng.choice(["a:1", "a:2", "b:1", "c:1"], n)
    return pd.DataFrame({
        "person_id": [f"P{i:05d}" for i in range(n)],
        "birth_year": rng.integers(1960, 2008, n).astype(str),
        "sex": rng.choice(["F", "M", "X"], n, p=[.5, .47, .03]),
        "zip3": rng.choice(["061", "060", "062", "064"], n, p=[.7, .15, .1, .05]),
        "partners": partners, "entry_period": entry, "exit_period": exits,
        "program": program,
        "funding_stream": pd.Series(program).map({"a:1": "wioa_adult", "a:2": "wioa_youth",
                                                  "b:1": "careerconnect",
                                                  "c:1": "wioa_adult"}).to_numpy(),
    })


def brute_force(frame: pd.DataFrame, qis: list[str]) -> tuple[int, float]:
    """min class size and singling-out rate by comparing every pair of rows."""
    values = frame[qis].astype(str).to_numpy()
    smallest, alone = len(frame), 0
    for row in values:
        same = (values == row).all(axis=1).sum()
        compatible = ((values == row) | (values == research.STAR)
                      | (row == research.STAR)).all(axis=1).sum()
        smallest = min(smallest, int(same))
        alone += int(compatible == 1)
    return smallest, alone / len(frame)


def test_ladders_step_to_coarser_values_and_end_in_a_star():
    frame = pd.DataFrame({"birth_year": ["1993"], "sex": ["F"], "zip3": ["061"],
                          "partners": ["a+b"], "entry_period": ["2024-05"],
                          "exit_period": [research.NONE], "program": ["a:1"],
                          "funding_stream": ["wioa_adult"]})
    expected = {
        "birth_year": ["1993", "1990-1994", "1990-1999", "*"],
        "sex": ["F", "*"],
        "zip3": ["061", "06x", "*"],
        "partners": ["a+b", "2 partners", "2+ partners", "*"],
        "entry_period": ["2024-05", "2024Q2", "2024", "*"],
        "exit_period": ["none", "none", "none", "*"],
        "program": ["a:1", "wioa_adult", "*"],
    }
    for qi, ladder in expected.items():
        assert research.levels_of(qi) == len(ladder), qi
        got = [research.generalize_column(frame, qi, level).iloc[0]
               for level in range(len(ladder))]
        assert got == ladder, qi


@pytest.mark.parametrize("k", [5, 11])
def test_anonymized_frame_is_k_anonymous_and_measured_right(k):
    frame = random_people(400)
    settings = ReleaseSettings(k=k)
    out, after, before = research.anonymize(frame, settings)
    assert before.share_unique > 0.5          # the raw quasi-identifiers single most out
    assert after.k_achieved >= k and after.share_under_k == 0 and after.share_unique == 0
    smallest, singled = brute_force(out, QIS)
    assert smallest == after.k_achieved
    assert singled == pytest.approx(after.singling_out_rate) and singled == 0
    assert after.persons + after.persons_dropped == len(frame)
    assert after.persons_dropped <= 0.05 * len(frame)
    raw_smallest, raw_singled = brute_force(frame, QIS)
    assert raw_smallest == before.k_achieved
    assert raw_singled == pytest.approx(before.singling_out_rate)


def test_cell_suppression_groups_rare_rows_under_a_star_and_drops_what_it_cannot():
    """A '*' is a value of its own: rare rows form a class together, never join one."""
    rows = [("x", "1")] * 6 + [("x", "2"), ("x", "3"), ("x", "4"), ("y", "9")]
    frame = pd.DataFrame(rows, columns=["a", "b"])
    out, cells, dropped = research.suppress_cells(frame, ["a", "b"], 3)
    assert (research.class_sizes(out, ["a", "b"]) >= 3).all()
    assert sorted(map(tuple, out.to_numpy().tolist())) == [("x", "*")] * 3 + [("x", "1")] * 6
    assert (cells, dropped) == (3, 1)
    # an attacker who knows ("x", "2") finds three candidates, not one
    assert research.matches(out, ["a", "b"], ["x", "2"]).sum() == 3


def test_research_ids_are_keyed_per_agreement():
    ids = pd.Series(["P1", "P2"])
    one = research.research_ids(ids, b"k" * 32)
    assert one.tolist() == research.research_ids(ids, b"k" * 32).tolist()
    assert not set(one) & set(research.research_ids(ids, b"j" * 32))
    assert all(v.startswith("R") and len(v) == 17 for v in one)


def test_wages_are_banded_and_top_coded():
    out = research.band_wages(pd.Series([None, 0.0, 4999.99, 5000.0, 25000.0]), 1000, 20000)
    assert out.tolist() == [None, "0-999", "4000-4999", "5000-5999", "20000+"]


def test_extract_of_the_fixture_warehouse(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    build_fixture_warehouse(con)
    con.execute("INSERT INTO participation SELECT DISTINCT person_id, partner_id, '2023-01', "
                "'2024-12', 1 FROM enrollment")
    sent = pd.DataFrame([("wb", "enrollments"), ("yd", "enrollments"), ("ct_dol", "wages")],
                        columns=["partner_id", "dataset"])
    disclosure.write_released(con, tiers.metadata_tables(
        con, partners={"wb": "WB", "yd": "YD", "ct_dol": "DOL"}, datasets_sent=sent,
        periods=["2024-12"]))
    con.close()
    salt = research.agreement_salt(tmp_path / "state", "a1")
    made = research.write_extract(
        warehouse, tmp_path / "research" / "a1", partners=["wb", "yd", "ct_dol"],
        settings=ReleaseSettings(k=3), salt=salt, agreement="a1", purpose="p", grantee="g",
        expires="2027-01-01")
    frame = pd.read_parquet(made.data)
    assert "person_id" not in frame.columns and frame["research_id"].str.startswith("R").all()
    assert {"earnings_q2_band", "employed_q2"} <= set(frame.columns)
    assert research.class_sizes(frame, QIS).min() >= 3
    meta = json.loads(made.risk_file.read_text())
    assert meta["risk"]["k_achieved"] >= 3 and meta["wages_included"] is True
    assert made.risk.persons + made.risk.persons_dropped == 14
    # without the wage partner in the agreement, no wage-derived column goes out
    made = research.write_extract(
        warehouse, tmp_path / "research" / "a2", partners=["wb", "yd"],
        settings=ReleaseSettings(k=3), salt=salt, agreement="a2", purpose="p", grantee="g",
        expires="2027-01-01")
    assert not {"earnings_q2_band", "employed_q2"} & set(pd.read_parquet(made.data).columns)
