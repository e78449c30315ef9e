"""Fellegi-Sunter: EM recovers m > u on a synthetic mixture; weights, classes, review list."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from _linkage_fixtures import SPEC_DICT, spec

from linkage.classify import FellegiSunter, clerical_review
from linkage.engine import LinkSpec

M = {"gamma_given_name": [0.05, 0.05, 0.1, 0.8], "gamma_family_name": [0.05, 0.05, 0.1, 0.8],
     "gamma_dob": [0.05, 0.1, 0.85], "gamma_ssn": [0.05, 0.95],
     "gamma_birth_year": [0.05, 0.1, 0.85]}
U = {"gamma_given_name": [0.9, 0.05, 0.03, 0.02], "gamma_family_name": [0.9, 0.05, 0.03, 0.02],
     "gamma_dob": [0.9, 0.08, 0.02], "gamma_ssn": [0.995, 0.005],
     "gamma_birth_year": [0.9, 0.07, 0.03]}


def _sample(n: int, table: dict, rng: np.random.Generator, missing: float = 0.1) -> pd.DataFrame:
    data = {}
    for f, probs in table.items():
        g = rng.choice(len(probs), size=n, p=probs).astype(np.int8)
        g[rng.random(n) < missing] = -1
        data[f] = g
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(5)
    matches = _sample(3000, M, rng)
    non_matches = _sample(7000, U, rng)
    features = pd.concat([matches, non_matches], ignore_index=True)
    truth = np.r_[np.ones(3000, bool), np.zeros(7000, bool)]
    random_pairs = _sample(20000, U, rng)
    return features, truth, random_pairs


def test_em_recovers_m_greater_than_u_and_the_prior(mixture):
    features, _, random_pairs = mixture
    model = FellegiSunter(spec(fellegi_sunter={"fix_u": True})).fit(
        features, random_features=random_pairs)
    assert model.lambda_ == pytest.approx(0.3, abs=0.03)
    for f, m_true in M.items():
        assert model.m_[f][-1] > model.u_[f][-1] * 5  # agreement far likelier among matches
        assert model.m_[f][0] < model.u_[f][0]
        np.testing.assert_allclose(model.m_[f], m_true, atol=0.05)


def test_em_without_random_pairs_and_with_free_u(mixture):
    features, truth, random_pairs = mixture
    for kwargs in ({}, {"random_features": random_pairs}):
        model = FellegiSunter(spec()).fit(features, **kwargs)
        scored = model.predict(features)
        predicted = (scored["match_class"] == "match").to_numpy()
        accuracy = (predicted == truth).mean()
        assert accuracy > 0.95
        assert model.converged_


def test_predict_columns_weights_and_classes(mixture):
    features, _, random_pairs = mixture
    s = spec(fellegi_sunter={"match_weight_threshold": 4.0, "possible_weight_threshold": -1.0})
    model = FellegiSunter(s).fit(features, random_features=random_pairs,
                                 comparable_pairs=len(features))
    scored = model.predict(features)
    assert list(scored.columns) == ["match_weight", "match_probability", "match_class"]
    w = scored["match_weight"].to_numpy()
    np.testing.assert_allclose(scored["match_probability"], 1 / (1 + 2.0 ** -w))
    cls = scored["match_class"].astype(str).to_numpy()
    assert set(cls) == {"match", "possible", "non_match"}
    assert (w[cls == "match"] >= 4).all() and (w[cls == "non_match"] < -1).all()
    # all-missing gammas give the prior only
    empty = pd.DataFrame({f: np.array([-1], dtype=np.int8) for f in M})
    assert model.match_weight(empty)[0] == pytest.approx(np.log2(model.prior_ / (1 - model.prior_)))
    params = model.parameters()
    assert {"feature", "gamma", "m", "u", "bayes_factor_log2"} <= set(params.columns)


def test_fixed_m_probabilities_are_kept(mixture):
    features, _, random_pairs = mixture
    comparisons = [dict(c) for c in SPEC_DICT["comparisons"]]
    for c in comparisons:
        if c["name"] == "ssn":
            c["m_probabilities"] = [0.02, 0.98]
    model = FellegiSunter(spec(comparisons=comparisons)).fit(features,
                                                             random_features=random_pairs)
    np.testing.assert_allclose(model.m_["gamma_ssn"], [0.02, 0.98])


def test_clerical_review_has_no_tokens_or_filters():
    scored = pd.DataFrame({
        "record_key_l": ["a:1", "a:2"], "record_key_r": ["b:1", "b:2"],
        "gamma_given_name": [2, 3], "match_weight": [1.0, 9.0],
        "match_probability": [0.6, 0.99], "match_class": ["possible", "match"],
        "tok_ssn_l": ["deadbeef", "cafe"],
    })
    review = clerical_review(scored)
    assert len(review) == 1
    assert list(review.columns) == ["record_key_l", "record_key_r", "gamma_given_name",
                                    "match_weight", "match_probability"]


def test_weight_cap_bounds_a_group_of_comparisons(mixture):
    features, _, random_pairs = mixture
    capped = spec(fellegi_sunter={"weight_caps": [{"comparisons": ["given_name", "family_name"],
                                                   "max_weight": 1.0}]})
    model = FellegiSunter(capped).fit(features, random_pairs, comparable_pairs=10**6)
    bf = model.bayes_factors()
    per_feature = {f: np.concatenate(([0.0], bf[f]))[features[f].to_numpy() + 1]
                   for f in model.features}
    names = per_feature["gamma_given_name"] + per_feature["gamma_family_name"]
    uncapped = np.log2(model.prior_ / (1 - model.prior_)) + sum(per_feature.values())
    np.testing.assert_allclose(model.match_weight(features),
                               uncapped - names + np.minimum(names, 1.0))
    assert (model.match_weight(features) < uncapped).any()


def test_sparse_random_gammas_take_u_from_em_and_few_pairs_skip_em(mixture):
    """A salt-gated comparison is rarely non-null among random pairs: its u then comes from EM
    over the candidates; with too few candidate pairs for EM, from the ungated random pairs."""
    from linkage.classify import MIN_EM_PAIRS, MIN_RANDOM_GAMMAS

    features, _, random_pairs = mixture
    sparse = random_pairs.copy()
    sparse.loc[MIN_RANDOM_GAMMAS // 2:, "gamma_given_name"] = -1  # like a dob-gated filter
    model = FellegiSunter(spec()).fit(features, random_features=sparse,
                                      comparable_pairs=10 * len(features))
    assert model.random_gammas_["gamma_given_name"] < MIN_RANDOM_GAMMAS
    assert model.n_iter_ > 0
    np.testing.assert_allclose(model.u_["gamma_given_name"],
                               model.u_em_smoothed_["gamma_given_name"])
    np.testing.assert_allclose(model.u_["gamma_dob"], model.u_random_["gamma_dob"])

    few = features.iloc[: MIN_EM_PAIRS - 1]
    ungated = random_pairs.assign(gamma_given_name=0)  # unrelated filters: no agreement
    model = FellegiSunter(spec()).fit_patterns(
        model.decode_patterns(model.pattern_codes(few[model.features].to_numpy(np.int8))),
        np.ones(len(few)), random_features=sparse, comparable_pairs=1000,
        random_ungated=ungated)
    assert model.n_iter_ == 0  # no EM on a handful of pairs
    assert model.u_["gamma_given_name"][0] > 0.99  # chance agreement of unrelated filters
    np.testing.assert_allclose(model.u_["gamma_dob"], model.u_random_["gamma_dob"])
    assert model.m_["gamma_given_name"].argmax() == 3  # the starting m favours agreement


def test_em_u_of_a_sparse_comparison_is_smoothed_where_no_non_match_fell(mixture):
    """Where a gated comparison's u comes from EM, a level that no candidate non-match shows
    gets add-one u (as a random-pair u would), not EM's 1e-6 floor: that floor made a near-exact
    FEBRL4 given name worth +15.6 bits, far above the exact name's +5."""
    features, truth, random_pairs = mixture
    features = features.copy()
    given = features["gamma_given_name"].to_numpy().copy()
    given[~truth & (given == 2)] = 1  # no non-match at level 2
    features["gamma_given_name"] = given
    sparse = random_pairs.copy()
    sparse["gamma_given_name"] = -1  # like a dob-gated filter: no random pair shares the salt
    model = FellegiSunter(spec(fellegi_sunter={"fix_u": False})).fit(  # as specs v2 and v3
        features, random_features=sparse, comparable_pairs=10 * len(features))
    non_matches = int(((~truth) & (given >= 0)).sum())
    assert model.u_em_["gamma_given_name"][2] < 1e-4  # what EM alone gives
    u = model.u_["gamma_given_name"]
    assert u[2] >= 0.9 / (non_matches + 4)  # add-one over the expected non-match count


def test_ordering_check_pools_levels_that_weigh_out_of_order():
    m = np.array([0.1, 0.3, 0.05, 0.55])  # level 2 weighs less than level 1
    u = np.array([0.7, 0.1, 0.1, 0.1])
    assert not FellegiSunter._monotone(m, u)
    ordered = FellegiSunter._ordered_m(m, u)
    assert FellegiSunter._monotone(ordered, u)
    assert ordered.sum() == pytest.approx(1.0)
    assert ordered[0] == pytest.approx(m[0], rel=1e-3)
    assert ordered[1] / u[1] == pytest.approx(ordered[2] / u[2])  # pooled: one ratio
    assert ordered[1] + ordered[2] == pytest.approx(m[1] + m[2], rel=1e-3)


def test_training_rule_of_sure_matches_sets_m_and_the_report_says_so(mixture):
    """A rule whose pairs are (almost) all matches, such as pairs sharing an SSN, gives m for
    the comparisons it leaves free; the rule's own comparison is left out of its EM."""
    features, truth, random_pairs = mixture
    model = FellegiSunter(spec())
    gamma = features[model.features].to_numpy(np.int8)
    codes, inverse, counts = np.unique(model.pattern_codes(gamma), return_inverse=True,
                                       return_counts=True)
    patterns = model.decode_patterns(codes)
    sure = np.bincount(inverse.ravel()[truth], minlength=len(codes))  # the true matches
    model.fit_patterns(patterns, counts, random_features=random_pairs,
                       comparable_pairs=10 * len(features),
                       training=(("token:ssn", sure, ("gamma_ssn",)),))
    assert model.fit_report_["training_rules"] == {"token:ssn": "used"}
    matched = features[truth]
    for f in ("gamma_given_name", "gamma_dob"):
        observed = np.bincount(matched[f][matched[f] >= 0], minlength=model.levels[f])
        np.testing.assert_allclose(model.m_[f], observed / observed.sum(), atol=0.02)
    # too few pairs: the rule is skipped, and says why
    model.fit_patterns(patterns, counts, random_features=random_pairs,
                       comparable_pairs=10 * len(features),
                       training=(("token:rare", np.minimum(sure, 0), ()),))
    assert model.fit_report_["training_rules"] == {"token:rare": "too few pairs"}


def test_m_prior_holds_a_comparison_that_em_cannot_learn():
    """A comparison's own prior and strength (e.g. the birth-year gap) keep m near the prior
    where the data would pull it elsewhere."""
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"][-1].update(m_prior=[0.02, 0.08, 0.9], prior_strength=1e6)
    model = FellegiSunter(LinkSpec.from_dict(data))
    rng = np.random.default_rng(1)
    mix = pd.concat([_sample(500, {**M, "gamma_birth_year": [0.6, 0.2, 0.2]}, rng),
                     _sample(1500, U, rng)], ignore_index=True)
    model.fit(mix, random_features=_sample(5000, U, rng), comparable_pairs=10**6)
    np.testing.assert_allclose(model.m_["gamma_birth_year"], [0.02, 0.08, 0.9], atol=0.01)
    assert model.fit_report_["em"] == "converged"
