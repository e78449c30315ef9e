"""Clerical review in the linkage library: the weight census and pool, waterfalls that add up
to the stored weights, stable pair ids, and the stratified accuracy estimate (issue 18).

Real stages on seeded synthetic drops (``encode_labelled`` under a fixed test key, the shipped
spec); the estimator is checked against populations whose truth is known.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from keys import SharedSecret
from linkage import accuracy, review
from linkage.engine import LinkSpec, link_records
from linkage.evaluate import encode_labelled
from pipelines.synthetic.participants import generate, read_period

SECRET = SharedSecret("review-test", b"\x42" * 32)


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    drops = tmp_path_factory.mktemp("review")
    # 1,500 persons: enough namesakes for the frequency pass to adjust some pairs
    generate(drops, seed=5, persons=1500, periods=["2026-10"])
    encoded = encode_labelled(read_period(drops / "landing", "2026-10"), SECRET,
                              dt.date(2026, 10, 28))
    spec = LinkSpec.load()
    fs = spec.fellegi_sunter
    plan = accuracy.CensusPlan(
        accuracy.strata_edges(fs.possible_weight_threshold, fs.match_weight_threshold),
        pool_size=25, seed=1)
    return encoded, spec, plan, link_records(encoded, spec, keep_pairs="scored", census=plan)


@pytest.mark.slow
def test_the_census_counts_every_candidate_pair_and_pools_uniformly(linked):
    encoded, spec, plan, result = linked
    census = result.census
    fs = spec.fellegi_sunter
    assert census.strata["pairs"].sum() == result.stats["candidate_pairs"]
    assert census.histogram["pairs"].sum() == result.stats["candidate_pairs"]
    # the strata at and above the possible-match threshold hold exactly the scored pairs
    above = census.strata[census.strata["lo"] >= fs.possible_weight_threshold]
    assert above["pairs"].sum() == len(result.pairs)
    on_match = census.strata[census.strata["lo"] >= fs.match_weight_threshold]
    assert on_match["pairs"].sum() == int((result.pairs["match_class"] == "match").sum())
    # the pool: non-match candidates from the first edge to the possible threshold, no repeats
    pool = census.pool
    in_range = census.strata[(census.strata["lo"] >= plan.edges[0])
                             & (census.strata["hi"] <= fs.possible_weight_threshold)]
    assert census.pool_population == in_range["pairs"].sum()
    assert len(pool) == min(plan.pool_size, census.pool_population) > 0
    assert pool["match_weight"].between(plan.edges[0], fs.possible_weight_threshold,
                                        inclusive="left").all()
    assert set(pool["match_class"]) == {"non_match"}
    keys = set(zip(pool["record_key_l"], pool["record_key_r"], strict=True))
    assert len(keys) == len(pool)
    assert not keys & set(zip(result.pairs["record_key_l"], result.pairs["record_key_r"],
                              strict=True))
    # a pool pair's gammas give its weight, as for scored pairs
    again = link_records(encoded, spec, keep_pairs="all")
    weight = again.pairs.set_index(["record_key_l", "record_key_r"])["match_weight"]
    for row in pool.itertuples(index=False):
        if row.frequency_adjustment == 0:
            assert weight[(row.record_key_l, row.record_key_r)] <= fs.possible_weight_threshold


@pytest.mark.slow
def test_waterfalls_add_up_to_the_stored_weights(linked):
    _, _, _, result = linked
    snapshot = result.model.snapshot()
    pairs = pd.concat([result.pairs, result.census.pool], ignore_index=True)
    caps = frequency = 0
    for row in pairs.to_dict(orient="records"):
        gammas = {f: row[f] for f in result.model.features}
        fall = review.waterfall(snapshot, gammas, row["frequency_adjustment"])
        assert fall["total"] == pytest.approx(row["match_weight"], abs=1e-9)
        steps = {s["step"] for s in fall["steps"]}
        caps += "cap" in steps
        frequency += "frequency" in steps
        assert sum(fall["counts"].values()) == len(snapshot["comparisons"])
        for step in fall["steps"][1:]:
            if step["step"] not in ("cap", "frequency"):
                assert step["category"] in review.CATEGORIES
                assert (step["category"] == "missing") == (step["bits"] == 0.0
                                                          and step["level"] < 0)
    assert caps and frequency  # both kinds of step occur in this set


def test_level_meanings_and_categories():
    dice = {"kind": "dice", "levels": 4, "thresholds": [0.95, 0.8, 0.6]}
    assert [review.level_meaning(dice, g) for g in (3, 1, 0)] == [
        "similarity at least 0.95", "similarity at least 0.6", "similarity below 0.6"]
    years = {"kind": "year_diff", "levels": 3, "thresholds": [0, 1]}
    assert [review.level_meaning(years, g) for g in (2, 1, 0)] == [
        "equal", "at most 1 year", "more than 1 years apart"]
    ladder = {"kind": "exact_levels", "levels": 3, "columns": ["tok_a", "tok_b"]}
    assert review.level_meaning(ladder, 2) == "agrees on tok_a"
    assert review.level_meaning(ladder, 1) == "agrees on tok_b"
    assert [review.category(g, 4) for g in (-1, 0, 1, 3)] == [
        "missing", "disagree", "close", "agree"]
    assert review.parse_profile("gamma_a=3;gamma_b=-1;frequency_adjustment=-1.5") == {
        "gamma_a": 3, "gamma_b": -1}


def test_pair_ids_are_stable_and_ignore_order():
    a, b = "youth_dept:Y1", "community_college:C7"
    assert review.pair_id(a, b) == review.pair_id(b, a)
    assert review.pair_id(a, b) != review.pair_id(a, "community_college:C8")
    assert review.pair_id(a, b).startswith("R") and len(review.pair_id(a, b)) == 13


def test_strata_edges_and_allocation():
    edges = accuracy.strata_edges(-6, -2)
    assert edges == (-14, -10, -8, -6, -4, -2, 0, 2, 6, 14)
    assert accuracy.stratum_of(np.array([-20, -14, -6.0, -2.0, 30]), edges).tolist() == [
        0, 1, 4, 6, 10]
    pairs = np.array([50, 8, 11, 3, 13, 5, 20, 8, 29, 3600])
    sizes = accuracy.allocate(pairs, 200)
    assert sizes.sum() == 200 and (sizes <= pairs).all() and (sizes > 0).all()
    assert sizes[-1] > 90  # the large stratum gets its proportional half
    assert accuracy.allocate(np.array([3, 4]), 200).tolist() == [3, 4]  # a census
    with pytest.raises(ValueError):
        accuracy.strata_edges(0, -2)


def _population(rng):
    """Strata of known size and match share, as a census of pairs (stratum, is_match, linked)."""
    strata = pd.DataFrame({"stratum": range(5), "lo": [-np.inf, -14, -6, -2, 6],
                           "hi": [-14, -6, -2, 6, np.inf], "pairs": [5000, 300, 60, 120, 3000],
                           "expected_matches": [0.5, 3, 20, 90, 3000]})
    share = [0.0, 0.02, 0.3, 0.8, 0.995]
    rows = []
    for s, n, p in zip(strata["stratum"][1:], strata["pairs"][1:], share[1:], strict=True):
        is_match = rng.random(n) < p
        linked = np.where(is_match, rng.random(n) < 0.97, rng.random(n) < 0.02) if s >= 3 \
            else rng.random(n) < 0.05
        rows.append(pd.DataFrame({"stratum": s, "is_match": is_match, "linked": linked}))
    return strata, pd.concat(rows, ignore_index=True)


def _truth(strata, population, threshold):
    above = population["stratum"].map(strata.set_index("stratum")["lo"]) >= threshold
    matches = population["is_match"].sum() + strata.loc[0, "expected_matches"]
    tp = (above & population["is_match"]).sum()
    linked_tp = (population["linked"] & population["is_match"]).sum()
    return {"precision": tp / above.sum(), "recall": tp / matches,
            "linked_precision": linked_tp / population["linked"].sum(),
            "linked_recall": linked_tp / matches}


def test_a_census_of_labels_gives_the_exact_figures():
    strata, population = _population(np.random.default_rng(0))
    result = accuracy.estimate(strata, population, match_threshold=-2, possible_threshold=-6)
    truth = _truth(strata, population, -2)
    by = {(f["measure"], f["what"].split(" (")[0]): f for f in result["figures"]}
    precision = by[("precision", "pairs at or above the match threshold")]
    assert precision["estimate"] == pytest.approx(truth["precision"])
    assert precision["low"] == pytest.approx(precision["high"])  # nothing left to sample
    assert by[("recall", "records linked into one person")]["estimate"] == pytest.approx(
        truth["linked_recall"])
    assert all(s["census"] for s in result["strata"])
    assert result["tail"] == {"below": -14.0, "pairs": 5000, "expected_matches": 0.5}


@pytest.mark.slow
def test_intervals_from_a_sample_cover_the_truth_at_about_their_level():
    rng = np.random.default_rng(1)
    strata, population = _population(rng)
    truth = _truth(strata, population, -2)
    sizes = accuracy.allocate(strata["pairs"].to_numpy()[1:], 200)
    covered = {"precision": 0, "recall": 0, "linked_precision": 0, "linked_recall": 0}
    runs = 60
    for _ in range(runs):
        sample = pd.concat(
            [population[population["stratum"] == s].sample(int(k), random_state=rng)
             for s, k in zip(strata["stratum"][1:], sizes, strict=True)], ignore_index=True)
        result = accuracy.estimate(strata, sample, match_threshold=-2, possible_threshold=-6,
                                   seed=int(rng.integers(1 << 30)), draws=4000)
        figures = result["figures"]
        for name, f in (("precision", figures[0]), ("recall", figures[1]),
                        ("linked_precision", figures[4]), ("linked_recall", figures[5])):
            covered[name] += f["low"] <= truth[name] <= f["high"]
    assert all(c / runs >= 0.85 for c in covered.values()), covered


def test_an_unlabelled_stratum_leaves_the_figures_it_enters_unestimated():
    strata, population = _population(np.random.default_rng(2))
    some = population[population["stratum"] != 2]  # [-6, -2): the review band
    result = accuracy.estimate(strata, some, match_threshold=-2, possible_threshold=-6)
    unestimated = [(f["measure"], f["what"]) for f in result["figures"] if f["estimate"] is None]
    # every recall needs every stratum's matches; precision above the match threshold does not
    assert ("precision", "pairs at or above the match threshold (-2)") not in unestimated
    assert len(unestimated) == 5
    table = accuracy.threshold_table(strata, population, draws=500)
    assert table["threshold"].tolist() == [-14, -6, -2, 6]
    assert table["precision"].is_monotonic_increasing
    assert table["recall"].is_monotonic_decreasing


def test_allocation_passes_on_what_a_stratum_cannot_hold():
    pairs = np.array([5000, 40, 3000])
    capped = accuracy.allocate(pairs, 200, capacity=np.array([30, 40, 3000]))
    assert capped.sum() == 200 and capped[0] == 30 and capped[1] <= 40
    assert accuracy.allocate(pairs, 10_000, capacity=np.array([30, 40, 50])).tolist() == [
        30, 40, 50]
