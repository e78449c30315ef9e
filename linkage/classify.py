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

from dataclasses import dataclass

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
#: A training rule informs a comparison's m only where it holds at least this many expected
#: matches with that comparison not null (a rule that forces the comparison, or leaves it
#: null, says nothing about it); rules are averaged weighted by that count.
MIN_RULE_MATCHES = 10.0


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


@dataclass(frozen=True)
class _EmFit:
    """One EM run: m, u, match share, iterations, convergence, expected non-match counts per
    level and expected matches with each feature not null."""

    m: dict[str, np.ndarray]
    u: dict[str, np.ndarray]
    lam: float
    iterations: int
    converged: bool
    non_counts: dict[str, np.ndarray]
    match_mass: dict[str, float]


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
        self.m_priors = {c.gamma_column: _normalize(np.asarray(c.m_prior, dtype=float))
                         for c in spec.comparisons if c.m_prior is not None}
        self.prior_strengths = {c.gamma_column: float(c.prior_strength)
                                for c in spec.comparisons if c.prior_strength is not None}
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
        self.fit_report_: dict = {}

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

    def prior_m(self, feature: str) -> np.ndarray:
        """The prior m of a feature: the spec's fixed m, or its ``m_prior``, else one favouring
        agreement."""
        if feature in self.fixed_m:
            return self.fixed_m[feature].copy()
        if feature in self.m_priors:
            return self.m_priors[feature].copy()
        return _initial_m(self.levels[feature])

    def _em(self, patterns: np.ndarray, counts: np.ndarray, u: dict[str, np.ndarray],
            free_u: bool, excluded: frozenset[str] = frozenset()) -> _EmFit:
        """EM over distinct gamma patterns; u re-estimated when ``free_u``, else fixed.

        m starts at the prior and is smoothed towards it by ``m_prior_strength`` pseudo-pairs
        (a comparison's ``prior_strength`` overrides it): a Dirichlet prior, so a fit on few
        pairs stays near the prior instead of collapsing. ``excluded`` features are ignored (a
        training rule's own comparisons).
        """
        settings = self.settings
        features = [f for f in self.features if f not in excluded]
        index = {f: k for k, f in enumerate(self.features)}
        m = {f: self.prior_m(f) for f in features}
        u = {f: u[f].copy() for f in features}
        lam = float(settings.initial_match_prior)
        non_counts: dict[str, np.ndarray] = {}
        match_mass: dict[str, float] = {}
        for it in range(1, settings.em_max_iterations + 1):
            bayes = {f: np.log2(m[f] / u[f]) for f in features}
            logit = (np.log(lam) - np.log1p(-lam)
                     + self.evidence_bits(patterns, bayes, features) * np.log(2.0))
            post = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
            w_match = counts * post
            w_non = counts * (1.0 - post)
            new_lam = float(np.clip(w_match.sum() / counts.sum(), _EPS, 1 - _EPS))
            change = abs(new_lam - lam)
            for f in features:
                levels = self.levels[f]
                g = patterns[:, index[f]]
                match_counts = self._level_counts(g, levels, w_match)
                non_counts[f] = self._level_counts(g, levels, w_non)
                match_mass[f] = float(match_counts.sum())
                if f not in self.fixed_m:
                    pseudo = self.prior_strengths.get(f, settings.m_prior_strength)
                    new_m = _normalize(match_counts + pseudo * self.prior_m(f) + _EPS)
                    change = max(change, float(np.abs(new_m - m[f]).max()))
                    m[f] = new_m
                if free_u:
                    new_u = _normalize(non_counts[f] + _EPS)
                    change = max(change, float(np.abs(new_u - u[f]).max()))
                    u[f] = new_u
            lam = new_lam
            if change < settings.em_tolerance:
                return _EmFit(m, u, lam, it, True, non_counts, match_mass)
        return _EmFit(m, u, lam, settings.em_max_iterations, False, non_counts, match_mass)

    @staticmethod
    def _monotone(m: np.ndarray, u: np.ndarray) -> bool:
        """A better agreement level must not weigh less than a worse one (gamma 0 first)."""
        return bool((np.diff(np.log2(m / u)) >= -1e-9).all())

    @staticmethod
    def _ordered_m(m: np.ndarray, u: np.ndarray) -> np.ndarray:
        """m with the Bayes factors made non-decreasing over the levels by pooling adjacent
        violators (isotonic regression of m/u weighted by u): levels pooled together share
        the pooled ratio ``sum(m) / sum(u)``; m stays a distribution."""
        merged: list[list] = []
        for i, (mi, ui) in enumerate(zip(m, u, strict=True)):
            merged.append([float(mi), float(ui), [i]])
            while len(merged) > 1 and (merged[-2][0] / merged[-2][1]
                                       > merged[-1][0] / merged[-1][1]):
                last = merged.pop()
                merged[-1][0] += last[0]
                merged[-1][1] += last[1]
                merged[-1][2] += last[2]
        out = np.empty(len(m))
        for m_sum, u_sum, levels in merged:
            for i in levels:
                out[i] = u[i] * m_sum / u_sum
        return _normalize(out)

    def fit_patterns(self, patterns: np.ndarray, counts: np.ndarray,
                     random_features: pd.DataFrame | None = None,
                     comparable_pairs: int | None = None,
                     random_ungated: pd.DataFrame | None = None,
                     training: tuple[tuple[str, np.ndarray, tuple[str, ...]], ...] = ()
                     ) -> FellegiSunter:
        """:meth:`fit` from the distinct gamma vectors of the candidate pairs and their counts.

        Args:
            patterns: ``int[p, features]`` distinct gamma vectors (``self.features`` order).
            counts: How many candidate pairs have each vector.
            random_features: As in :meth:`fit`.
            comparable_pairs: As in :meth:`fit`.
            random_ungated: The random pairs' gammas without salt gates (filters under
                different salts compared as unrelated records).
            training: Training blocking rules, as Splink trains m: ``(name, counts_r,
                excluded)`` with ``counts_r`` the rule's pairs per pattern and ``excluded`` the
                features the rule forces (left out of that rule's EM).

        The fit (docs/linkage.md, "Estimating the model"):

        1. u from random pairs (add-one smoothed). A gated comparison (salted filters: only
           same-salt pairs are compared) rarely has ``MIN_RANDOM_GAMMAS`` random pairs; its u
           comes from EM over the candidates (which hold every same-salt pair), add-one
           smoothed over EM's expected non-matches, or, with too few candidate pairs for EM,
           from ``random_ungated`` (chance agreement).
        2. The share of matches among the candidates, and a first m, by EM over all candidate
           pairs started from the random-pair u (the candidates' own non-match u is
           re-estimated: they agree on some blocking key, unlike random pairs), with m started
           at the prior and smoothed towards it.
        3. m again by EM with the scoring u fixed on each training rule's pairs, the rule's
           own comparisons left out; for each comparison, the rules holding at least
           ``MIN_RULE_MATCHES`` expected matches where it is not null are averaged, weighted by
           that count (a rule of pairs that share an SSN shows how often one person's records
           differ in birth year; a rule that forces or hides a comparison says nothing of it).
        4. Checks: an EM that did not converge is dropped (the union EM not converging, with no
           training rule to replace its m, falls back to the prior m); a match share that
           collapsed to 0 or 1 falls back to the prior m and ``initial_match_prior``; a
           comparison whose weights are out of order (a better level weighing less than a worse
           one) gets them ordered by pooling the violating levels. ``fit_report_`` says what
           happened; the run summary shows it.

        Returns:
            self
        """
        patterns = np.asarray(patterns, dtype=np.int64)
        counts = np.asarray(counts, dtype=float)
        n_pairs = float(counts.sum())
        report: dict = {"em": "skipped", "fallbacks": {}, "training_rules": {}, "ordered": []}
        self.u_random_ = None
        gated: set[str] = set()
        if random_features is not None and len(random_features):
            self.u_random_ = self.estimate_u(random_features)
            gated = {f for f in self.features if self.random_gammas_[f] < MIN_RANDOM_GAMMAS}
            u_start = {f: self.u_random_[f].copy() for f in self.features}
        else:
            u_start = {f: _normalize(self._level_counts(patterns[:, k], self.levels[f], counts)
                                     + 1.0) for k, f in enumerate(self.features)}
        self.m_ = {f: self.prior_m(f) for f in self.features}
        lam = float(self.settings.initial_match_prior)
        u_em = u_start
        non_counts: dict[str, np.ndarray] = {}
        self.n_iter_, self.converged_ = 0, False
        # EM is not identifiable on a handful of pairs (it may put them all in either class):
        # there the prior m (or the spec's fixed m) and the random-pair u are the model
        run_em = n_pairs >= MIN_EM_PAIRS or self.u_random_ is None
        if run_em:
            union = self._em(patterns, counts, u_start, free_u=True)
            self.n_iter_, self.converged_ = union.iterations, union.converged
            u_em, non_counts, lam = union.u, union.non_counts, union.lam
            report["em"] = "converged" if union.converged else "not_converged"
            if union.converged:
                self.m_ = union.m
        if not (1e-6 < lam < 1 - 1e-6):
            report["fallbacks"]["*"] = f"match share collapsed to {lam:.2g}: prior m"
            self.m_ = {f: self.prior_m(f) for f in self.features}
            lam = float(self.settings.initial_match_prior)
        self.lambda_ = lam
        self.u_em_ = u_em
        self.u_em_smoothed_ = {f: _add_one(c, self.levels[f]) for f, c in non_counts.items()}
        self.u_ = {f: u_em[f].copy() for f in self.features}
        self.prior_ = lam
        rule_m: dict[str, list[tuple[float, np.ndarray]]] = {f: [] for f in self.features}
        if self.u_random_ is not None and comparable_pairs:
            fallback = self.u_em_smoothed_ if non_counts else self.u_em_
            if not self.n_iter_ and random_ungated is not None and len(random_ungated):
                fallback = self._smoothed_u(random_ungated)[0]
            self.u_ = {f: (self.u_random_[f] if f not in gated else fallback[f])
                       for f in self.features}
            self.prior_ = float(np.clip(lam * n_pairs / comparable_pairs, 1e-300, 1 - _EPS))
            for name, rule_counts, excluded in (training if run_em else ()):
                rule_counts = np.asarray(rule_counts, dtype=float)
                if rule_counts.sum() < MIN_EM_PAIRS:
                    report["training_rules"][name] = "too few pairs"
                    continue
                fit = self._em(patterns, rule_counts, self.u_, free_u=False,
                               excluded=frozenset(excluded))
                if not fit.converged or fit.lam < 1e-3:  # a rule of (almost) only matches is fine
                    report["training_rules"][name] = "dropped: no convergence or no matches"
                    continue
                report["training_rules"][name] = "used"
                for f, values in fit.m.items():
                    if fit.match_mass.get(f, 0.0) >= MIN_RULE_MATCHES:
                        rule_m[f].append((fit.match_mass[f], values))
        if not report["fallbacks"]:
            for f, found in rule_m.items():
                if found and f not in self.fixed_m:
                    weights = np.array([w for w, _ in found])
                    values = np.stack([v for _, v in found])
                    self.m_[f] = _normalize((weights[:, None] * values).sum(axis=0)
                                            / weights.sum())
        if run_em and not self.converged_ and not any(rule_m.values()):
            report["fallbacks"]["*"] = "EM did not converge: prior m"
        for f in self.features:
            if not self._monotone(self.m_[f], self.u_[f]):
                self.m_[f] = self._ordered_m(self.m_[f], self.u_[f])
                report["ordered"].append(f)
        self.fit_report_ = report
        return self

    # ----------------------------------------------------------------------------- scoring

    def bayes_factors(self) -> dict[str, np.ndarray]:
        """log2(m/u) per feature and level (gamma 0 first)."""
        return {f: np.log2(self.m_[f] / self.u_[f]) for f in self.features}

    def evidence_bits(self, gamma: np.ndarray, bayes_factors: dict[str, np.ndarray],
                      features: list[str] | None = None) -> np.ndarray:
        """Summed log2 Bayes factors of each row of an ``int[n, features]`` gamma matrix
        (``self.features`` order), with the spec's ``weight_caps`` applied: a cap group adds at
        most its ``max_weight``. Features outside ``features`` (when given) count nothing."""
        gamma = np.asarray(gamma, dtype=np.int64)
        index = {f: k for k, f in enumerate(self.features)}
        use = set(self.features if features is None else features)

        def bits(f: str) -> np.ndarray:
            if f not in use or f not in bayes_factors:
                return np.zeros(len(gamma))
            lookup = np.concatenate(([0.0], bayes_factors[f]))  # gamma -1 -> 0
            return lookup[gamma[:, index[f]] + 1]

        total = np.zeros(len(gamma))
        grouped: set[str] = set()
        for cap in self.settings.weight_caps:
            members = [f"gamma_{name}" for name in cap.comparisons]
            grouped.update(members)
            total += np.minimum(sum((bits(f) for f in members), np.zeros(len(gamma))),
                                cap.max_weight)
        for f in self.features:
            if f not in grouped:
                total += bits(f)
        return total

    def match_weight(self, features: pd.DataFrame) -> np.ndarray:
        """Total match weight (prior + capped sum of log2 Bayes factors) per pair."""
        if not self.m_:
            raise RuntimeError("fit the model first")
        gamma = np.stack([features[f].to_numpy(dtype=np.int64) for f in self.features], axis=1)
        return (np.log2(self.prior_ / (1.0 - self.prior_))
                + self.evidence_bits(gamma, self.bayes_factors()))

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

    def snapshot(self) -> dict:
        """What any pair's weight is made of, as plain JSON-able data (no record data): the
        prior's log2 odds, each comparison's log2 Bayes factor per level, the weight caps and
        the thresholds. ``linkage.review.waterfall`` rebuilds a pair's weight from it and its
        gammas, so a stored run can explain its pairs without the model object."""
        if not self.m_:
            raise RuntimeError("fit the model first")
        factors = self.bayes_factors()
        comparisons = []
        for comp in self.spec.comparisons:
            if comp.gamma_column not in factors:
                continue
            comparisons.append({
                "name": comp.name, "feature": comp.gamma_column, "kind": comp.kind,
                "levels": int(comp.levels), "bits": [float(b) for b in factors[comp.gamma_column]],
                "thresholds": [float(t) for t in comp.thresholds],
                "columns": [comp.column, *comp.weaker_columns],
                "frequency_adjusted": bool(comp.frequency_adjusted)})
        return {
            "prior_log2_odds": float(np.log2(self.prior_ / (1.0 - self.prior_))),
            "comparisons": comparisons,
            "caps": [{"comparisons": list(cap.comparisons), "max_weight": float(cap.max_weight)}
                     for cap in self.settings.weight_caps],
            "match_weight_threshold": float(self.settings.match_weight_threshold),
            "possible_weight_threshold": float(self.settings.possible_weight_threshold),
        }

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
