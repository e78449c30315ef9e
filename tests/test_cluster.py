"""Clustering with the anti-chaining guard, the full link_records run, and pairwise scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _linkage_fixtures import encode, spec

from linkage.cluster import cluster_records, greedy_clusters
from linkage.engine import LinkResult, LinkSpec, link_records, load_link_spec
from linkage.evaluate import pairs_completeness, pairwise_scores


def _scored(pairs):
    return pd.DataFrame({
        "record_key_l": [p[0] for p in pairs], "record_key_r": [p[1] for p in pairs],
        "match_weight": [p[2] for p in pairs], "match_class": ["match"] * len(pairs),
    })


def _chain(ssn_c="222334444", dob_c="1990-04-12"):
    return encode([
        {"partner_id": "a", "partner_record_id": "A", "given": "sam", "family": "lee",
         "dob": "1990-04-12", "ssn": "111223333"},
        {"partner_id": "b", "partner_record_id": "B", "given": "sam", "family": "lee",
         "dob": None, "ssn": None},
        {"partner_id": "c", "partner_record_id": "C", "given": "sam", "family": "lee",
         "dob": dob_c, "ssn": ssn_c},
        {"partner_id": "c", "partner_record_id": "D", "given": "zoe", "family": "ng",
         "dob": "2000-01-01"},
    ])


def test_guard_splits_chain_with_different_ssn_tokens():
    encoded = _chain()
    scored = _scored([("a:A", "b:B", 12.0), ("b:B", "c:C", 10.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec())
    cid = dict(zip(clusters["record_key"], clusters["cluster_id"], strict=True))
    reason = dict(zip(clusters["record_key"], clusters["cluster_reason"], strict=True))
    assert cid["a:A"] == cid["b:B"]  # the heavier pair merges first
    assert cid["c:C"] != cid["a:A"]
    assert reason["c:C"] == reason["a:A"] == "split:ssn_conflict"
    assert reason["c:D"] == "singleton"
    assert clusters["cluster_id"].nunique() == 3


def test_plain_chain_merges_and_overwhelming_weight_overrides():
    encoded = _chain(ssn_c="111223333")
    scored = _scored([("a:A", "b:B", 12.0), ("b:B", "c:C", 10.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec())
    assert clusters.set_index("record_key").loc[["a:A", "b:B", "c:C"], "cluster_id"].nunique() == 1
    assert set(clusters["cluster_reason"]) == {"fs_weight>=0", "singleton"}

    encoded = _chain()
    scored = _scored([("a:A", "b:B", 50.0), ("b:B", "c:C", 45.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec())
    assert clusters.set_index("record_key").loc[["a:A", "b:B", "c:C"], "cluster_id"].nunique() == 1
    assert clusters.set_index("record_key").loc["a:A", "cluster_reason"] == "override:weight>=40"


def test_guard_splits_chain_with_distant_birth_years():
    encoded = _chain(ssn_c=None, dob_c="1975-04-12")
    scored = _scored([("a:A", "b:B", 12.0), ("b:B", "c:C", 10.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec()).set_index(
        "record_key")
    assert clusters.loc["a:A", "cluster_id"] != clusters.loc["c:C", "cluster_id"]
    assert clusters.loc["c:C", "cluster_reason"] == "split:dob_conflict"
    # a direct pair with different years is left to its weight unless guarded
    direct = _scored([("a:A", "c:C", 10.0)])
    loose = cluster_records(encoded["record_key"], direct, encoded, spec()).set_index("record_key")
    assert loose.loc["a:A", "cluster_id"] == loose.loc["c:C", "cluster_id"]
    strict = cluster_records(encoded["record_key"], direct, encoded,
                             spec(clustering={"direct_pair_guards": ["birth_year"]}))
    strict = strict.set_index("record_key")
    assert strict.loc["a:A", "cluster_id"] != strict.loc["c:C", "cluster_id"]


def test_non_match_pairs_are_ignored_and_within_partner_duplicates_merge():
    encoded = _chain(ssn_c=None)
    scored = _scored([("c:C", "c:D", 5.0), ("a:A", "b:B", 1.0)])
    scored.loc[1, "match_class"] = "possible"
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec()).set_index(
        "record_key")
    assert clusters.loc["c:C", "cluster_id"] == clusters.loc["c:D", "cluster_id"]
    assert clusters.loc["a:A", "cluster_id"] != clusters.loc["b:B", "cluster_id"]


def test_greedy_clusters_on_positions():
    labels, reasons = greedy_clusters(5, np.array([0, 1, 3]), np.array([1, 2, 4]),
                                      np.array([5.0, 4.0, 3.0]),
                                      ssn_codes=np.array([0, -1, 0, 1, 2]))
    assert labels[0] == labels[1] == labels[2]
    assert labels[3] == labels[4]  # a direct SSN disagreement is left to the pair weight
    labels, reasons = greedy_clusters(5, np.array([0, 1, 3]), np.array([1, 2, 4]),
                                      np.array([5.0, 4.0, 3.0]),
                                      ssn_codes=np.array([0, -1, 0, 1, 2]),
                                      direct_pair_guards=("ssn",))
    assert labels[3] != labels[4]
    assert reasons[3] == reasons[4] == "split:ssn_conflict"
    assert reasons[0] == "fs_weight>=0"


def test_link_records_end_to_end():
    people = []
    for i, (given, family, dob) in enumerate([("maria", "rivera", "1990-01-02"),
                                              ("jose", "rodriguez", "1985-06-30"),
                                              ("anh", "nguyen", "1999-12-12"),
                                              ("wojciech", "kowalski", "1970-03-03")]):
        people.append({"partner_id": "a", "partner_record_id": str(i), "given": given,
                       "family": family, "dob": dob, "ssn": f"12345{i:04d}"})
        people.append({"partner_id": "b", "partner_record_id": str(i), "given": given,
                       "family": family[:-1] + "x", "dob": dob})
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    for j in range(200):
        people.append({"partner_id": "c", "partner_record_id": f"n{j}",
                       "given": "".join(rng.choice(letters, 6)),
                       "family": "".join(rng.choice(letters, 7)),
                       "dob": f"19{rng.integers(40, 99)}-0{rng.integers(1, 9)}-"
                              f"1{rng.integers(0, 9)}"})
    encoded = encode(people)
    result = link_records(encoded, spec())
    assert isinstance(result, LinkResult)
    assert {"record_key_l", "record_key_r", "match_weight", "match_probability",
            "match_class", "gamma_given_name"} <= set(result.pairs.columns)
    assert len(result.clusters) == len(encoded)
    truth = pd.DataFrame({"record_key": encoded["record_key"],
                          "true_id": [p["partner_record_id"] for p in people]})
    scores = pairwise_scores(result.clusters, truth)
    assert scores["recall"] == 1.0 and scores["precision"] == 1.0
    assert result.stats["candidate_pairs"] == len(result.pairs)


def test_v1_spec_loads_and_is_validated(tmp_path):
    spec_v1 = load_link_spec(1)
    assert spec_v1.version == "pathlink-linkage/1"
    assert LinkSpec.load() == spec_v1
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "pathlink-linkage/1"}')
    with pytest.raises(Exception, match="required"):
        load_link_spec(bad)


def test_pairwise_scores_hand_worked():
    # predicted {1,2,3} {4,5} {6}; truth {1,2} {3,4,5,6}
    clusters = pd.DataFrame({"record_key": list("123456"), "cluster_id": [0, 0, 0, 1, 1, 2]})
    truth = pd.DataFrame({"record_key": list("123456"), "true_id": list("xxyyyy")})
    s = pairwise_scores(clusters, truth)
    # predicted pairs: 3 + 1 = 4; true pairs: 1 + 6 = 7; TP: (1,2) and (4,5) = 2
    assert (s["predicted_pairs"], s["true_pairs"], s["true_positive_pairs"]) == (4, 7, 2)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(2 / 7)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 7) / (0.5 + 2 / 7))
    pairs = pd.MultiIndex.from_tuples([("1", "2"), ("3", "4"), ("1", "6")])
    assert pairs_completeness(pairs, truth) == pytest.approx(2 / 7)
