"""Fellegi-Sunter classification: u from random pairs, m by EM, Splink-style weights.

Model: gamma vectors are conditionally independent given match status; gamma -1 (missing)
contributes nothing.

* ``u`` is estimated from gamma vectors of random record pairs (almost all non-matches), with
  add-one smoothing.
* ``m`` and the share of matches among the candidate pairs (``lambda_``) are estimated by EM over
  the candidate pairs. Candidate non-matches are not like random pairs (blocking made them share
  a name, say), so by default EM also re-estimates a candidate-set u while it runs
  (``fix_u: false``); that u only serves EM.
* Scoring uses the random-pair u and the prior for a random pair,
  ``prior = lambda_ * candidate_pairs / comparable_pairs`` (Splink's
  ``probability_two_random_records_match``):
  ``match_weight = log2(prior / (1 - prior)) + sum_k log2(m_k[gamma_k] / u_k[gamma_k])``,
  ``match_probability = 1 / (1 + 2 ** -match_weight)``. Without random pairs (or without the
  comparable pair count) the EM u and ``lambda_`` are used instead.

``match_class`` is ``match`` when the weight reaches ``match_weight_threshold``, ``possible``
when it reaches ``possible_weight_threshold`` (the clerical-review list), else ``non_match``.
A comparison with ``m_probabilities`` in the spec keeps those m values. ``weight_caps`` bound
the summed weight of correlated comparisons (e.g. street, zip3, phone and email, which
household members share): the group adds at most ``max_weight``, so shared contact details
alone cannot outweigh missing or disagreeing identity evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.spec import LinkSpec

__all__ = ["MATCH_CLASSES", "FellegiSunter", "clerical_review", "match_classes"]

MATCH_CLASSES = ("match", "possible", "non_match")
_EPS = 1e-6
#: Fewer candidate pairs than this: no EM (see ``fit_patterns``).
MIN_EM_PAIRS = 100
#: A comparison needs this many non-null gammas among the random pairs for its random-pair u;
#: with fewer (salt-gated comparisons: two random records rarely share a dob) its u comes from
#: EM over the candidate pairs, where every same-salt pair is (blocking keeps them all),
#: add-one smoothed over EM's expected non-match counts like the random u: a level that no
#: non-match of a few hundred happened to show must not get u = 1e-6 (on FEBRL4 that made a
#: given name at Dice 0.8-0.95 worth +15.6 bits, above the exact name's +5.1).
MIN_RANDOM_GAMMAS = 500


def _normalize(p: np.ndarray) -> np.ndarray:
    """Probabilities from non-negative weights, kept away from 0 and 1."""
    p = np.asarray(p, dtype=float)
    p = np.clip(p / p.sum(), _EPS, 1.0 - _EPS)
    return p / p.sum()


def _add_one(counts: np.ndarray, levels: int) -> np.ndarray:
    """Add-one (Laplace) smoothed level shares of per-level counts."""
    return _normalize((counts + 1.0) / (counts.sum() + levels))


def _initial_m(levels: int) -> np.ndarray:
    """A starting m that favours the top level (agreement)."""
    if levels == 2:
        return np.array([0.1, 0.9])
    tail = 0.3 * (0.5 ** np.arange(levels - 1, 0, -1))
    start = np.concatenate((tail, [0.0]))
    start[-1] = 1.0 - start.sum()
    return _normalize(start)


class FellegiSunter:
    """Unsupervised Fellegi-Sunter model in the recordlinkage ``fit``/``predict`` shape.

    Args:
        spec: Linkage spec (comparisons and ``fellegi_sunter`` settings).

    Attributes (after ``fit``):
        m_: dict feature -> m probabilities per level (gamma 0 first).
        u_: dict feature -> u probabilities per level.
        lambda_: Estimated share of matches among the candidate pairs.
        prior_: Prior match probability used in the weights (see module docstring).
        n_iter_: EM iterations run.
        converged_: Whether EM met the tolerance.
    """

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self.settings = spec.fellegi_sunter
        self.features = [c.gamma_column for c in spec.comparisons]
        self.levels = {c.gamma_column: c.levels for c in spec.comparisons}
        self.fixed_m = {c.gamma_column: np.asarray(c.m_probabilities, dtype=float)
                        for c in spec.comparisons if c.m_probabilities is not None}
        self.m_: dict[str, np.ndarray] = {}
        self.u_: dict[str, np.ndarray] = {}
        self.lambda_ = float(self.settings.initial_match_prior)
        self.prior_ = self.lambda_
        self.u_random_: dict[str, np.ndarray] | None = None
        self.random_gammas_: dict[str, int] = {}
        self.u_em_: dict[str, np.ndarray] = {}
        self.u_em_smoothed_: dict[str, np.ndarray] = {}
        self.n_iter_ = 0
        self.converged_ = False

    # ----------------------------------------------------------------------------- estimation

    def _level_counts(self, gammas: np.ndarray, levels: int,
                      weights: np.ndarray | None = None) -> np.ndarray:
        valid = gammas >= 0
        return np.bincount(gammas[valid].astype(np.int64), minlength=levels,
                           weights=None if weights is None else weights[valid])[:levels]

    def _smoothed_u(self, frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Add-one smoothed level shares per feature, and how many non-null gammas each had."""
        u, seen = {}, {}
        for f in self.features:
            counts = self._level_counts(frame[f].to_numpy(), self.levels[f])
            u[f] = _add_one(counts, self.levels[f])
            seen[f] = int(counts.sum())
        return u, seen

    def estimate_u(self, random_features: pd.DataFrame) -> dict[str, np.ndarray]:
        """u probabilities from gamma vectors of random pairs (add-one smoothing)."""
        u, self.random_gammas_ = self._smoothed_u(random_features)
        return u

    def fit(self, features: pd.DataFrame, random_features: pd.DataFrame | None = None,
            comparable_pairs: int | None = None) -> FellegiSunter:
        """Estimate u (random pairs) and m, lambda (EM over the candidate pairs).

        Args:
            features: Gamma columns of the candidate pairs.
            random_features: Gamma columns of random pairs; when omitted u is estimated by EM.
            comparable_pairs: Number of record pairs blocking chose from (e.g. n(n-1)/2); with
                ``random_features`` it turns ``lambda_`` into the random-pair prior.

        Returns:
            self
        """
        gamma = np.stack([features[f].to_numpy(dtype=np.int8) for f in self.features], axis=1)
        uniq, counts = np.unique(self.pattern_codes(gamma), return_counts=True)
        return self.fit_patterns(self.decode_patterns(uniq), counts,
                                 random_features=random_features,
                                 comparable_pairs=comparable_pairs)

    # gamma vectors <-> integer pattern codes (so EM and scoring run once per distinct vector)

    @property
    def pattern_base(self) -> int:
        """Radix of a pattern code: gamma + 1 ranges over 0 .. max levels."""
        return max(self.levels.values()) + 1

    def pattern_dtype(self) -> type:
        """``int32`` when every pattern code fits in it, else ``int64``."""
        return np.int32 if self.pattern_base ** len(self.features) < 2 ** 31 else np.int64

    def pattern_codes(self, gamma: np.ndarray) -> np.ndarray:
        """One integer per row of an ``int8[n, features]`` gamma matrix (features in
        ``self.features`` order): ``sum((gamma_j + 1) * base**j)``."""
        dtype = self.pattern_dtype()
        codes = np.zeros(len(gamma), dtype=dtype)
        scale = 1
        for j in range(gamma.shape[1]):
            codes += (gamma[:, j].astype(dtype) + 1) * dtype(scale)
            scale *= self.pattern_base
        return codes

    def decode_patterns(self, codes: np.ndarray) -> np.ndarray:
        """The ``int8[n, features]`` gamma matrix of pattern codes (inverse of
        :meth:`pattern_codes`)."""
        codes = np.asarray(codes, dtype=np.int64)
        out = np.empty((len(codes), len(self.features)), dtype=np.int8)
        for j in range(len(self.features)):
            out[:, j] = codes % self.pattern_base - 1
            codes = codes // self.pattern_base
        return out

    def fit_patterns(self, patterns: np.ndarray, counts: np.ndarray,
                     random_features: pd.DataFrame | None = None,
                     comparable_pairs: int | None = None,
                     random_ungated: pd.DataFrame | None = None) -> FellegiSunter:
        """:meth:`fit` from the distinct gamma vectors of the candidate pairs and their counts.

        Args:
            patterns: ``int[p, features]`` distinct gamma vectors (``self.features`` order).
            counts: How many candidate pairs have each vector.
            random_features: As in :meth:`fit`.
            comparable_pairs: As in :meth:`fit`.
            random_ungated: The random pairs' gammas without salt gates (filters under
                different salts compared as unrelated records).

        A gated comparison (salted filters: only same-salt pairs are compared) rarely has
        ``MIN_RANDOM_GAMMAS`` random pairs to estimate u from. Its u then comes from EM over
        the candidate pairs (which hold every same-salt pair), or, when there are too few
        candidate pairs for EM, from ``random_ungated`` (chance agreement).

        Returns:
            self
        """
        patterns = np.asarray(patterns, dtype=np.int64)
        counts = np.asarray(counts, dtype=float)
        n_pairs = float(counts.sum())
        self.u_random_ = None
        if random_features is not None and len(random_features):
            self.u_random_ = self.estimate_u(random_features)
            self.u_ = {f: u.copy() for f, u in self.u_random_.items()}
            fix_u = self.settings.fix_u
        else:
            self.u_ = {f: _normalize(self._level_counts(patterns[:, k], self.levels[f], counts)
                                     + 1.0) for k, f in enumerate(self.features)}
            fix_u = False
        self.m_ = {f: self.fixed_m.get(f, _initial_m(self.levels[f])).copy()
                   for f in self.features}
        lam = float(self.settings.initial_match_prior)

        self.converged_ = False
        # EM is not identifiable on a handful of pairs (it may put them all in either class):
        # there the starting m (or the spec's fixed m) and the random-pair u are the model
        iterations = self.settings.em_max_iterations
        if n_pairs < MIN_EM_PAIRS and self.u_random_ is not None:
            iterations = 0
        non_counts: dict[str, np.ndarray] = {}  # expected non-match pairs per level (last E step)
        for it in range(1, iterations + 1):
            log_m = np.zeros(len(patterns))
            log_u = np.zeros(len(patterns))
            for k, f in enumerate(self.features):
                g = patterns[:, k]
                ok = g >= 0
                log_m[ok] += np.log(self.m_[f][g[ok]])
                log_u[ok] += np.log(self.u_[f][g[ok]])
            logit = np.log(lam) - np.log1p(-lam) + log_m - log_u
            post = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
            w_match = counts * post
            w_non = counts * (1.0 - post)
            new_lam = float(np.clip(w_match.sum() / counts.sum(), _EPS, 1 - _EPS))
            change = abs(new_lam - lam)
            for k, f in enumerate(self.features):
                levels = self.levels[f]
                match_counts = self._level_counts(patterns[:, k], levels, w_match)
                non_counts[f] = self._level_counts(patterns[:, k], levels, w_non)
                if f not in self.fixed_m:
                    new_m = _normalize(match_counts + _EPS)
                    change = max(change, float(np.abs(new_m - self.m_[f]).max()))
                    self.m_[f] = new_m
                if not fix_u:
                    new_u = _normalize(non_counts[f] + _EPS)
                    change = max(change, float(np.abs(new_u - self.u_[f]).max()))
                    self.u_[f] = new_u
            lam = new_lam
            self.n_iter_ = it
            if change < self.settings.em_tolerance:
                self.converged_ = True
                break
        self.lambda_ = lam
        self.u_em_ = self.u_
        self.u_em_smoothed_ = {f: _add_one(c, self.levels[f]) for f, c in non_counts.items()}
        self.prior_ = lam
        if self.u_random_ is not None and comparable_pairs:
            fallback = self.u_em_smoothed_ if non_counts else self.u_em_
            if not iterations and random_ungated is not None and len(random_ungated):
                fallback = self._smoothed_u(random_ungated)[0]
            self.u_ = {f: (u if self.random_gammas_[f] >= MIN_RANDOM_GAMMAS else fallback[f])
                       for f, u in self.u_random_.items()}
            self.prior_ = float(np.clip(lam * n_pairs / comparable_pairs, 1e-300, 1 - _EPS))
        return self

    # ----------------------------------------------------------------------------- scoring

    def bayes_factors(self) -> dict[str, np.ndarray]:
        """log2(m/u) per feature and level (gamma 0 first)."""
        return {f: np.log2(self.m_[f] / self.u_[f]) for f in self.features}

    def match_weight(self, features: pd.DataFrame) -> np.ndarray:
        """Total match weight (prior + sum of log2 Bayes factors) per pair."""
        if not self.m_:
            raise RuntimeError("fit the model first")
        weight = np.full(len(features), np.log2(self.prior_ / (1.0 - self.prior_)))
        capped = {f"gamma_{name}" for names, _ in self.settings.weight_caps for name in names}
        for f, table in self.bayes_factors().items():
            if f not in capped:
                weight += self._feature_weight(features, f, table)
        for names, max_weight in self.settings.weight_caps:
            group = np.zeros(len(features))
            for name in names:
                f = f"gamma_{name}"
                if f in self.m_:
                    group += self._feature_weight(features, f, self.bayes_factors()[f])
            weight += np.minimum(group, max_weight)
        return weight

    @staticmethod
    def _feature_weight(features: pd.DataFrame, f: str, table: np.ndarray) -> np.ndarray:
        lookup = np.concatenate(([0.0], table))  # gamma -1 -> 0
        return lookup[features[f].to_numpy(dtype=np.int64) + 1]

    def prob(self, features: pd.DataFrame) -> pd.Series:
        """Match probability per pair (recordlinkage-style)."""
        w = self.match_weight(features)
        return pd.Series(1.0 / (1.0 + np.exp2(-w)), index=features.index,
                         name="match_probability")

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """``match_weight``, ``match_probability``, ``match_class`` per pair."""
        w = self.match_weight(features)
        return pd.DataFrame({"match_weight": w, "match_probability": 1.0 / (1.0 + np.exp2(-w)),
                             "match_class": match_classes(w, self.settings)},
                            index=features.index)

    def parameters(self) -> pd.DataFrame:
        """The fitted m, u and log2 Bayes factor per feature and level (no record data)."""
        rows = []
        for f in self.features:
            for level, (m, u) in enumerate(zip(self.m_[f], self.u_[f], strict=True)):
                rows.append({"feature": f, "gamma": level, "m": m, "u": u,
                             "bayes_factor_log2": float(np.log2(m / u)),
                             "m_fixed": f in self.fixed_m})
        return pd.DataFrame(rows)


def match_classes(weight: np.ndarray, settings) -> pd.Categorical:
    """``match`` / ``possible`` / ``non_match`` of each weight under the spec's thresholds."""
    cls = np.full(len(weight), 2, dtype=np.int8)
    cls[weight >= settings.possible_weight_threshold] = 1
    cls[weight >= settings.match_weight_threshold] = 0
    return pd.Categorical.from_codes(cls, categories=list(MATCH_CLASSES))


def clerical_review(scored_pairs: pd.DataFrame) -> pd.DataFrame:
    """The ``possible`` pairs as a similarity profile for clerical review.

    Only pair keys, gamma levels, the frequency adjustment (when scored) and the weight: never
    names, dates or tokens.
    """
    cols = ["record_key_l", "record_key_r"] + [c for c in scored_pairs.columns
                                               if c.startswith("gamma_")]
    cols += [c for c in ("frequency_adjustment",) if c in scored_pairs.columns]
    cols += ["match_weight", "match_probability"]
    review = scored_pairs.loc[scored_pairs["match_class"] == "possible", cols]
    return review.sort_values("match_weight", ascending=False).reset_index(drop=True)
