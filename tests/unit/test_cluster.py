"""Clustering with the anti-chaining guard, the full link_records run, and pairwise scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _linkage_fixtures import encode, spec

from linkage.cluster import cluster_records, constraint_conflicts, greedy_clusters
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


def test_plain_chain_merges_and_different_ssns_never_share_a_cluster():
    encoded = _chain(ssn_c="111223333")
    scored = _scored([("a:A", "b:B", 12.0), ("b:B", "c:C", 10.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec())
    assert clusters.set_index("record_key").loc[["a:A", "b:B", "c:C"], "cluster_id"].nunique() == 1
    assert set(clusters["cluster_reason"]) == {"fs_weight>=0", "singleton"}

    # issue 13: different valid SSNs never end in one cluster, however heavy the pairs (twins,
    # a parent and child at one address); the guard holds over every pair of members
    encoded = _chain()
    scored = _scored([("a:A", "b:B", 50.0), ("b:B", "c:C", 45.0), ("a:A", "c:C", 60.0)])
    clusters = cluster_records(encoded["record_key"], scored, encoded, spec())
    cid = clusters.set_index("record_key")["cluster_id"]
    assert cid["a:A"] != cid["c:C"]
    assert clusters.set_index("record_key").loc["c:C", "cluster_reason"] == "split:ssn_conflict"


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
    # a direct SSN disagreement is refused too, whatever the weight (issue 13)
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


def _people_with_duplicates(n=120, seed=3):
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    people = []
    for i in range(n):
        given = "".join(rng.choice(letters, 5))
        family = "".join(rng.choice(letters, 7))
        dob = f"19{rng.integers(50, 99)}-0{rng.integers(1, 9)}-1{rng.integers(0, 9)}"
        people.append({"partner_id": "a", "partner_record_id": str(i), "given": given,
                       "family": family, "dob": dob})
        if i % 2:
            typo = family[:3] + "q" + family[4:]
            people.append({"partner_id": "b", "partner_record_id": str(i), "given": given,
                           "family": typo, "dob": dob if i % 3 else None})
    return people


def test_batched_pattern_scoring_equals_scoring_each_pair():
    """The engine compares in batches and scores each distinct gamma vector once; that must
    give every pair the gammas and weight that comparing and scoring it alone gives."""
    from linkage.adapters import candidate_pairs, compare_pairs
    from linkage.classify import FellegiSunter
    from linkage.compare import ComparisonColumns, random_pairs

    encoded = encode(_people_with_duplicates())
    link_spec = spec()
    result = link_records(encoded, link_spec, batch_size=37)  # many uneven batches
    pairs = candidate_pairs(encoded, link_spec)
    features = compare_pairs(pairs, encoded, link_spec)
    rng = np.random.default_rng(link_spec.fellegi_sunter.u_seed)
    rand = random_pairs(encoded, link_spec, link_spec.fellegi_sunter.u_sample_size, rng)
    random_features = ComparisonColumns.build(encoded, link_spec).compare(*rand)
    from linkage.engine import comparable_pairs

    model = FellegiSunter(link_spec).fit(features, random_features=random_features,
                                         comparable_pairs=comparable_pairs(encoded, link_spec))
    expected = model.predict(features).reset_index(drop=True)
    got = result.pairs
    assert len(got) == len(pairs) > 100
    assert list(got["record_key_l"]) == list(pairs.get_level_values(0))
    assert list(got["record_key_r"]) == list(pairs.get_level_values(1))
    for column in features.columns:
        assert got[column].tolist() == features[column].tolist(), column
    np.testing.assert_allclose(got["match_weight"], expected["match_weight"], rtol=0, atol=1e-9)
    assert got["match_class"].tolist() == expected["match_class"].tolist()
    assert set(got["match_class"]) >= {"match", "non_match"}
    # candidates hold the same pairs as row positions
    keys = encoded["record_key"].to_numpy()
    assert list(keys[result.candidates.left]) == list(got["record_key_l"])
    assert list(keys[result.candidates.right]) == list(got["record_key_r"])

    scored = link_records(encoded, link_spec, keep_pairs="scored")
    subset = got[got["match_class"] != "non_match"].reset_index(drop=True)
    pd.testing.assert_frame_equal(scored.pairs, subset)
    pd.testing.assert_frame_equal(scored.clusters, result.clusters)
    assert scored.stats["candidate_pairs"] == len(pairs)
    assert scored.stats["match_pairs"] == int((got["match_class"] == "match").sum())
    assert scored.stats["possible_pairs"] == int((got["match_class"] == "possible").sum())
    with pytest.raises(ValueError, match="keep_pairs"):
        link_records(encoded, link_spec, keep_pairs="some")


def test_positions_completeness_matches_the_key_based_measure():
    from linkage.evaluate import positions_completeness

    encoded = encode(_people_with_duplicates(60))
    result = link_records(encoded, spec())
    truth = pd.DataFrame({"record_key": encoded["record_key"],
                          "true_id": encoded["record_key"].str.split(":").str[1]})
    by_keys = pairs_completeness(
        result.pairs.set_index(["record_key_l", "record_key_r"]).index, truth)
    true_id = encoded["record_key"].map(truth.set_index("record_key")["true_id"])
    assert positions_completeness(result.candidates.left, result.candidates.right,
                                  true_id) == by_keys
    # a lost true pair lowers it; no true pairs at all gives 1.0
    assert positions_completeness(result.candidates.left[:0], result.candidates.right[:0],
                                  true_id) == 0.0
    assert positions_completeness(np.array([0]), np.array([1]),
                                  pd.Series(["x", None, None])) == 1.0


def test_v1_spec_loads_and_is_validated(tmp_path):
    spec_v1 = load_link_spec(1)
    assert spec_v1.version == "pathlink-linkage/1"
    for version in (2, 3, 4, 5):  # kept for earlier figures and releases that name them
        assert load_link_spec(version).version == f"pathlink-linkage/{version}"
    current = LinkSpec.load()
    assert current == load_link_spec(6) and current.version == "pathlink-linkage/6"
    # v6 trains m on shared-dob pairs without blocking on the dob alone (decision 0007)
    assert "tok_t14_dob" not in current.blocking.token_columns
    assert [rule for rule, _ in current.fellegi_sunter.training_rules] == [
        "token:tok_t4_ssn", "token:tok_t14_dob"]
    assert [c.name for c in current.comparisons if c.frequency_adjusted] == ["names_other_dob"]
    # the current spec gates each salted filter on its salt (schemas/encoding/v3.json): the dob
    # filter is gone, the dob token is the gate
    gates = {c.name: c.salt_column for c in current.comparisons}
    assert (gates["full_name"], gates["address"], gates["given_name"], gates["household"]) == \
        ("birth_year", "tok_t14_dob", "tok_t14_dob", "tok_t21_household")
    assert {c.name: c.only_if_differs for c in current.comparisons}["names_swapped_dob"] == \
        "tok_t7_canonical_first_last_dob"
    (cap,) = current.fellegi_sunter.weight_caps
    assert (cap.comparisons, cap.max_weight) == (
        ("names_other_dob", "address_other_dob", "household"), 18.0)
    assert [rule for rule, _ in current.fellegi_sunter.training_rules] == [
        "token:tok_t4_ssn", "token:tok_t14_dob"]
    gap = next(c for c in current.comparisons if c.name == "birth_year_gap")
    assert gap.m_prior is not None and gap.prior_strength == 100
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


# -- review decisions as constraints (issue 18) ----------------------------------------------

def _siblings():
    """Two siblings the model would merge (a heavy pair), a third record of the first one, and
    an unrelated record."""
    return encode([
        {"partner_id": "a", "partner_record_id": "A", "given": "ana", "family": "cruz",
         "dob": "2004-05-06"},
        {"partner_id": "b", "partner_record_id": "B", "given": "ana", "family": "cruz",
         "dob": "2004-05-06"},
        {"partner_id": "c", "partner_record_id": "C", "given": "ana", "family": "cruz",
         "dob": None},
        {"partner_id": "c", "partner_record_id": "D", "given": "zoe", "family": "ng",
         "dob": "2000-01-01"},
    ])


def test_a_cannot_link_splits_a_heavy_pair_and_a_chain():
    encoded = _siblings()
    scored = _scored([("a:A", "b:B", 30.0), ("b:B", "c:C", 12.0), ("a:A", "c:C", 10.0)])
    merged = cluster_records(encoded["record_key"], scored, encoded, spec()).set_index(
        "record_key")
    assert merged.loc[["a:A", "b:B", "c:C"], "cluster_id"].nunique() == 1
    split = cluster_records(encoded["record_key"], scored, encoded, spec(),
                            cannot_link=[("a:A", "b:B")]).set_index("record_key")
    assert split.loc["a:A", "cluster_id"] != split.loc["b:B", "cluster_id"]
    # C goes with B (the heavier of its pairs); the A~C pair would put A and B together
    assert split.loc["b:B", "cluster_id"] == split.loc["c:C", "cluster_id"]
    assert split.loc["a:A", "cluster_reason"] == split.loc["b:B", "cluster_reason"] == \
        "review:cannot_link"
    assert split.loc["c:D", "cluster_reason"] == "singleton"


def test_a_must_link_joins_records_the_model_left_apart_even_across_guards():
    encoded = _chain()  # A and C carry different SSN tokens: the guard never merges them
    scored = _scored([("a:A", "b:B", 12.0)])
    joined = cluster_records(encoded["record_key"], scored, encoded, spec(),
                             must_link=pd.DataFrame({"record_key_l": ["a:A"],
                                                     "record_key_r": ["c:C"]}))
    joined = joined.set_index("record_key")
    assert joined.loc[["a:A", "b:B", "c:C"], "cluster_id"].nunique() == 1
    assert joined.loc["a:A", "cluster_reason"] == "review:must_link"
    assert joined.loc["c:D", "cluster_id"] != joined.loc["a:A", "cluster_id"]
    # a decision on a record that is not being clustered (e.g. known only under an earlier
    # key) is left out
    again = cluster_records(encoded["record_key"], scored, encoded, spec(),
                            must_link=[("a:A", "x:GONE")], cannot_link=[("x:GONE", "b:B")])
    assert again.set_index("record_key").loc["a:A", "cluster_id"] == \
        again.set_index("record_key").loc["b:B", "cluster_id"]


def test_contradicting_decisions_are_found_and_the_cannot_link_wins():
    encoded = _siblings()
    must = [("a:A", "c:C"), ("c:C", "b:B")]
    cannot = [("a:A", "b:B"), ("a:A", "c:D")]
    assert constraint_conflicts(must, cannot) == [("a:A", "b:B")]
    assert constraint_conflicts(must[:1], cannot) == []
    clusters = cluster_records(encoded["record_key"], _scored([]), encoded, spec(),
                               must_link=must, cannot_link=cannot).set_index("record_key")
    assert clusters.loc["a:A", "cluster_id"] == clusters.loc["c:C", "cluster_id"]
    assert clusters.loc["b:B", "cluster_id"] != clusters.loc["a:A", "cluster_id"]


def test_greedy_clusters_constraints_on_positions():
    left, right, weight = np.array([0, 1]), np.array([1, 2]), np.array([9.0, 8.0])
    labels, _ = greedy_clusters(4, left, right, weight,
                                cannot_link=(np.array([0]), np.array([2])),
                                must_link=(np.array([3]), np.array([2])))
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    with pytest.raises(IndexError):
        greedy_clusters(2, left[:0], right[:0], weight[:0], must_link=([0], [5]))
