"""``link_records``: block -> compare -> classify -> cluster, as one linkage spec says.

The spec itself lives in :mod:`linkage.spec` (re-exported here, so ``linkage.engine.LinkSpec``
keeps working); each stage is its own module and this one only runs them in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from linkage import accuracy, block, classify, cluster, compare, frequency
from linkage.spec import (
    CURRENT_SPEC,
    LINK_SPEC_JSON_SCHEMA,
    SPEC_VERSION,
    SPEC_VERSIONS,
    BlockingSpec,
    ClusteringSpec,
    ComparisonSpec,
    ExactKeySpec,
    FellegiSunterSpec,
    LinkSpec,
    LshSpec,
    load_link_spec,
)


@dataclass
class LinkResult:
    """Output of :func:`link_records`.

    Attributes:
        pairs: One row per candidate pair (``keep_pairs="all"``) or per pair at or above the
            possible-match weight (``keep_pairs="scored"``): ``record_key_l``,
            ``record_key_r``, ``gamma_*``, ``match_weight``, ``match_probability``,
            ``match_class``, ``frequency_adjustment`` (log2 bits already in the weight; 0
            unless the spec has ``frequency_adjusted`` comparisons).
        clusters: ``record_key``, ``cluster_id``, ``cluster_reason`` for every record.
        stats: Counts and timings (no record values).
        model: The fitted :class:`linkage.classify.FellegiSunter`.
        candidates: Every candidate pair as row positions of the encoded frame
            (``block.CandidatePositions``, for pairs completeness without a frame of all
            pairs).
        census: With a ``census`` plan: every candidate pair counted by final weight, and a
            uniform random pool of non-match candidates (``linkage.accuracy.WeightCensus``),
            for clerical review and accuracy estimates.
    """

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: classify.FellegiSunter | None = None
    candidates: block.CandidatePositions | None = None
    census: accuracy.WeightCensus | None = None


def comparable_pairs(encoded: pd.DataFrame, spec: LinkSpec) -> int:
    """Number of record pairs blocking chooses from, given ``spec.link_type``."""
    n = len(encoded)
    if spec.link_type == "link_and_dedupe" or "partner_id" not in encoded.columns:
        return n * (n - 1) // 2
    sizes = encoded["partner_id"].value_counts().to_numpy().astype(np.int64)
    within = int((sizes * (sizes - 1) // 2).sum())
    return n * (n - 1) // 2 - within if spec.link_type == "link_only" else within


def usable_spec(encoded: pd.DataFrame, spec: LinkSpec) -> tuple[LinkSpec, list[str]]:
    """The spec without comparisons whose column ``encoded`` lacks, and a note for each.

    Old encodings (made before a column such as ``bf_full_name`` existed) still link: the
    comparison is skipped rather than scored as always-missing.
    """
    kept = [c for c in spec.comparisons if c.column in encoded.columns]
    notes = [f"comparison {c.name!r} skipped: column {c.column!r} not in the encoded frame"
             for c in spec.comparisons if c.column not in encoded.columns]
    if not kept:
        raise ValueError("none of the spec's comparison columns is in the encoded frame")
    return (spec if not notes else spec.replace(comparisons=tuple(kept))), notes


#: Candidate pairs compared per batch: bounds the int8 gamma matrix and the kernels' scratch.
COMPARE_BATCH = 2_000_000


def _rescore(scored: pd.DataFrame, adjustment: np.ndarray, spec: LinkSpec) -> pd.DataFrame:
    """``scored`` with ``adjustment`` added to each pair's weight, re-classified."""
    weight = scored["match_weight"].to_numpy() + adjustment
    return scored.assign(
        match_weight=weight, match_probability=1.0 / (1.0 + np.exp2(-weight)),
        match_class=classify.match_classes(weight, spec.fellegi_sunter),
        frequency_adjustment=scored["frequency_adjustment"].to_numpy() + adjustment)


def _frequency_pass(scored: pd.DataFrame, left: np.ndarray, right: np.ndarray,
                    encoded: pd.DataFrame, spec: LinkSpec,
                    model: classify.FellegiSunter,
                    constraints: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The scored pairs with ``linkage.frequency`` adjustments applied, and their counts.

    Persons per token value come from a first clustering of the pairs "scored" keeps (so that
    both ``keep_pairs`` modes agree) on their weights without the adjusted comparisons, with
    the review decisions (``constraints``). ``left`` and ``right`` are the row positions of
    ``scored``'s pairs. Pairs the adjustment demotes below the possible-match weight are still
    in the result (the caller drops them for ``keep_pairs="scored"``).
    """
    adjusted = [c for c in spec.comparisons if c.frequency_adjusted]
    first_pairs = scored[scored["match_class"] != "non_match"]
    without = first_pairs[model.features].copy()
    without[[c.gamma_column for c in adjusted if c.gamma_column in without]] = -1
    weight = model.match_weight(without)
    first = cluster.cluster_records(
        encoded["record_key"],
        first_pairs.assign(match_weight=weight,
                           match_class=classify.match_classes(weight, spec.fellegi_sunter)),
        encoded, spec, **constraints)
    adjustment = frequency.frequency_adjustments(
        encoded, first["cluster_id"].to_numpy(), left, right, scored, model.u_, adjusted)
    stats = {"frequency_adjusted_pairs": int((adjustment < 0).sum()),
             "frequency_demoted_matches": 0}
    if not stats["frequency_adjusted_pairs"]:
        return scored, stats
    was_match = (scored["match_class"] == "match").to_numpy()
    scored = _rescore(scored, adjustment, spec)
    stats["frequency_demoted_matches"] = int(
        (was_match & (scored["match_class"] != "match").to_numpy()).sum())
    return scored, stats


def _pool_positions(which: np.ndarray, eligible: np.ndarray, counts: np.ndarray, size: int,
                    rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, int]:
    """A uniform random sample (without replacement) of at most ``size`` candidate pairs
    whose pattern is ``eligible``: ``(positions, population)``. The sampled ranks are found in
    one pass over ``which`` in batches, so no array of every eligible pair is built."""
    population = int(counts[eligible].sum())
    take = min(size, population)
    if take <= 0:
        return np.zeros(0, dtype=np.int64), population
    ranks = np.sort(rng.choice(population, size=take, replace=False))
    found: list[np.ndarray] = []
    seen = 0
    for lo in range(0, len(which), batch_size):
        hits = lo + np.flatnonzero(eligible[which[lo:lo + batch_size]])
        if not len(hits):
            continue
        first, last = np.searchsorted(ranks, [seen, seen + len(hits)])
        found.append(hits[ranks[first:last] - seen])
        seen += len(hits)
    return np.concatenate(found).astype(np.int64), population


def _weight_census(plan: accuracy.CensusPlan, spec: LinkSpec, pattern_weight: np.ndarray,
                   unkept_counts: np.ndarray, scored: pd.DataFrame, pool1: pd.DataFrame,
                   population1: int, rng: np.random.Generator) -> accuracy.WeightCensus:
    """Every candidate pair by final weight: the pairs ``scored`` holds (their weights after
    the frequency pass) and the others by their pattern's weight; the pool joins the sample of
    the unkept pairs (``pool1`` of ``population1``) with the kept pairs that ended in the
    pool's range, so that together they are one uniform sample of the range."""
    weights = np.concatenate((pattern_weight, scored["match_weight"].to_numpy(dtype=float)))
    counts = np.concatenate((unkept_counts, np.ones(len(scored))))
    strata, histogram = accuracy.census_frames(weights[counts > 0], counts[counts > 0],
                                               plan.edges)
    low, high = plan.edges[0], spec.fellegi_sunter.possible_weight_threshold
    w = scored["match_weight"].to_numpy(dtype=float)
    in_range = np.flatnonzero((w >= low) & (w < high))
    population = population1 + len(in_range)
    take = min(plan.pool_size, population)
    from_first = int(rng.hypergeometric(population1, len(in_range), take)) if take else 0
    first = pool1.iloc[np.sort(rng.choice(len(pool1), size=from_first, replace=False))] \
        if from_first else pool1.iloc[:0]
    second = scored.iloc[np.sort(rng.choice(in_range, size=take - from_first, replace=False))]
    pool = pd.concat([first, second], ignore_index=True) if len(first) else \
        second.reset_index(drop=True)
    return accuracy.WeightCensus(strata=strata, histogram=histogram, pool=pool,
                                 pool_population=population)


def link_records(encoded: pd.DataFrame, spec: LinkSpec, *, keep_pairs: str = "all",
                 batch_size: int = COMPARE_BATCH,
                 must_link: pd.DataFrame | list | None = None,
                 cannot_link: pd.DataFrame | list | None = None,
                 census: accuracy.CensusPlan | None = None) -> LinkResult:
    """Run blocking, comparison, Fellegi-Sunter scoring and clustering.

    Candidate pairs are held as row positions; they are compared in batches, and each pair
    keeps only its gamma pattern code (one integer), so memory per candidate pair stays at a
    few bytes. EM runs once per distinct gamma vector, and so does scoring. A spec with
    ``frequency_adjusted`` comparisons adds a second pass over the scored pairs
    (``linkage.frequency``): persons per token value are counted in a clustering without that
    evidence, agreements on values other persons hold lose weight, and the pairs are
    re-classified before the final clustering.

    Args:
        encoded: Encoded records with ``record_key`` (unique), ``partner_id``, ``tok_*``,
            ``bf_*`` and optionally ``birth_year``, ``sex``.
        spec: The linkage spec.
        keep_pairs: ``"all"`` returns every candidate pair in ``pairs``; ``"scored"`` only
            those at or above ``possible_weight_threshold`` (the matches and the
            clerical-review list), which is what clustering and review need at scale.
        batch_size: Candidate pairs compared per batch.
        must_link, cannot_link: Clerical-review decisions (``record_key_l``,
            ``record_key_r``): clustering honours them (``linkage.cluster``). They never
            change a pair's weight: the model stays unsupervised.
        census: Count every candidate pair by weight and keep a random pool of non-match
            candidates (``LinkResult.census``).

    Returns:
        A :class:`LinkResult`.
    """
    if keep_pairs not in ("all", "scored"):
        raise ValueError("keep_pairs must be 'all' or 'scored'")
    spec, notes = usable_spec(encoded, spec)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    training_rules = spec.fellegi_sunter.training_rules
    candidates = block.candidate_positions(encoded, spec, [r for r, _ in training_rules])
    block_stats = candidates.stats
    timings["block_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = classify.FellegiSunter(spec)
    columns = compare.ComparisonColumns.build(encoded, spec)
    n_pairs = len(candidates)
    pattern = np.empty(n_pairs, dtype=model.pattern_dtype())
    for lo in range(0, n_pairs, batch_size):
        hi = min(lo + batch_size, n_pairs)
        gamma = columns.gamma_matrix(candidates.left[lo:hi], candidates.right[lo:hi])
        pattern[lo:hi] = model.pattern_codes(gamma)
    # training and fit rules the spec does not block on: their pairs (one sample of their union)
    # train m (training rules) and, where they are not candidates, join the population the
    # model is fitted on, weighted up when sampled; they are never scored (docs/linkage.md,
    # "Model")
    off_rules = [rule for rule in dict.fromkeys(
        [r for r, _ in training_rules] + list(spec.fellegi_sunter.fit_rules))
        if rule not in candidates.rule_pairs]
    off = (block.rule_positions(encoded, spec, off_rules, spec.fellegi_sunter.training_max_pairs,
                                seed=spec.fellegi_sunter.u_seed) if off_rules else None)
    off_pattern = off_outside = off_member = None
    training_pairs: dict[str, Any] = {}
    if off is not None:
        off_left, off_right, off_total = off
        # a pair that is also a candidate has its pattern already; the others are compared
        at = block.candidate_index(encoded, candidates, off_left, off_right)
        off_outside = at < 0
        off_pattern = np.empty(len(at), dtype=model.pattern_dtype())
        off_pattern[~off_outside] = pattern[at[~off_outside]]
        outside_at = np.flatnonzero(off_outside)
        for lo in range(0, len(outside_at), batch_size):
            rows = outside_at[lo:lo + batch_size]
            off_pattern[rows] = model.pattern_codes(
                columns.gamma_matrix(off_left[rows], off_right[rows]))
        del at, outside_at
        # a pair belongs to a token rule where both records hold the same token
        off_member = {}
        for rule in (r for r, _ in training_rules if r in off_rules):
            column = rule.partition(":")[2]
            if column in encoded.columns:
                codes_c = pd.factorize(encoded[column].to_numpy(dtype=object),
                                       use_na_sentinel=True)[0]
                off_member[rule] = (codes_c[off_left] >= 0) & (
                    codes_c[off_left] == codes_c[off_right])
        training_pairs = {"rules": off_rules, "made": int(off_total),
                          "compared": len(off_left), "not_candidates": int(off_outside.sum()),
                          "scale": off_total / max(len(off_left), 1)}
    rng = np.random.default_rng(spec.fellegi_sunter.u_seed)
    rand_left, rand_right = compare.random_pairs(encoded, spec, spec.fellegi_sunter.u_sample_size,
                                                 rng)
    random_features = columns.compare(rand_left, rand_right)
    # only a workspace too small for EM needs the ungated chance agreement (classify)
    random_ungated = (columns.compare(rand_left, rand_right, gated=False)
                      if n_pairs < classify.MIN_EM_PAIRS else None)
    timings["compare_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    codes, counts = np.unique(pattern, return_counts=True)
    if off_pattern is not None:  # the training pairs' own patterns join the list
        codes = np.union1d(codes, off_pattern)
    patterns = model.decode_patterns(codes)
    # per pair: its pattern's row (pairs are scored by pattern, never one by one)
    which = np.empty(n_pairs, dtype=np.int32 if len(codes) < 2 ** 31 else np.int64)
    for lo in range(0, n_pairs, batch_size):
        hi = min(lo + batch_size, n_pairs)
        which[lo:hi] = np.searchsorted(codes, pattern[lo:hi])
    del pattern
    fit_counts = counts
    off_rows = None
    if off_pattern is not None:
        off_rows = np.searchsorted(codes, off_pattern)
        counts = np.bincount(which, minlength=len(codes))
        fit_counts = counts + training_pairs["scale"] * np.bincount(off_rows[off_outside],
                                                                    minlength=len(codes))
    training = tuple(
        (rule, np.bincount(which[candidates.rule_pairs[rule]] if rule in candidates.rule_pairs
                           else off_rows[off_member[rule]], minlength=len(codes)),
         tuple(f"gamma_{name}" for name in excludes))
        for rule, excludes in training_rules
        if rule in candidates.rule_pairs or (off_member is not None and rule in off_member))
    model.fit_patterns(patterns, fit_counts, random_features=random_features,
                       comparable_pairs=comparable_pairs(encoded, spec),
                       random_ungated=random_ungated, training=training)
    pattern_scores = model.predict(pd.DataFrame(patterns, columns=model.features))
    pair_class = pattern_scores["match_class"].cat.codes.to_numpy()[which]
    kept = (np.arange(n_pairs) if keep_pairs == "all"
            else np.flatnonzero(pair_class < classify.MATCH_CLASSES.index("non_match")))
    del pair_class
    record_keys = encoded["record_key"].astype(str).to_numpy(dtype=object)
    census_rng = np.random.default_rng(census.seed) if census is not None else None
    if census is not None:
        # the pairs "scored" leaves out are counted (and pooled) by their pattern's weight
        pattern_weight = pattern_scores["match_weight"].to_numpy(dtype=float)
        unkept = (np.zeros(len(codes), dtype=bool) if keep_pairs == "all" else
                  (pattern_scores["match_class"] == "non_match").to_numpy())
        unkept_counts = np.where(unkept, counts, 0)
        eligible = unkept & (pattern_weight >= census.edges[0]) & (
            pattern_weight < spec.fellegi_sunter.possible_weight_threshold)
        positions, population1 = _pool_positions(which, eligible, counts, census.pool_size,
                                                 census_rng, batch_size)
        pool1 = pd.concat(
            [pd.DataFrame({"record_key_l": record_keys[candidates.left[positions]],
                           "record_key_r": record_keys[candidates.right[positions]]}),
             pd.DataFrame(patterns[which[positions]], columns=model.features),
             pattern_scores.iloc[which[positions]].reset_index(drop=True)], axis=1)
        pool1["frequency_adjustment"] = 0.0
    rows = which[kept]
    scored_left = candidates.left[kept]
    scored_right = candidates.right[kept]
    scored = pd.concat(
        [pd.DataFrame({"record_key_l": record_keys[scored_left],
                       "record_key_r": record_keys[scored_right]}),
         pd.DataFrame(patterns[rows], columns=model.features),
         pattern_scores.iloc[rows].reset_index(drop=True)], axis=1)
    scored["frequency_adjustment"] = 0.0
    del which, rows, kept
    timings["classify_s"] = time.perf_counter() - t0

    constraints = {"must_link": must_link, "cannot_link": cannot_link}
    frequency_stats = {"frequency_adjusted_pairs": 0, "frequency_demoted_matches": 0}
    if any(c.frequency_adjusted for c in spec.comparisons) and len(scored):
        t0 = time.perf_counter()
        scored, frequency_stats = _frequency_pass(scored, scored_left, scored_right, encoded,
                                                  spec, model, constraints)
        timings["frequency_s"] = time.perf_counter() - t0
    weight_census = None
    if census is not None:
        weight_census = _weight_census(census, spec, pattern_weight, unkept_counts, scored,
                                       pool1, population1, census_rng)
    if keep_pairs == "scored" and (scored["match_class"] == "non_match").any():
        scored = scored[scored["match_class"] != "non_match"].reset_index(drop=True)

    t0 = time.perf_counter()
    clusters = cluster.cluster_records(encoded["record_key"], scored, encoded, spec,
                                       **constraints)
    timings["cluster_s"] = time.perf_counter() - t0
    del scored_left, scored_right
    final_class = scored["match_class"].to_numpy()

    stats: dict[str, Any] = {
        "records": len(encoded),
        "candidate_pairs": block_stats.pair_count,
        "pairs_by_rule": dict(block_stats.pairs_by_rule),
        "skipped_blocks": dict(block_stats.skipped_blocks),
        "skipped_block_records": dict(block_stats.skipped_block_records),
        "match_pairs": int((final_class == "match").sum()),
        "possible_pairs": int((final_class == "possible").sum()),
        **frequency_stats,
        "training_pairs": training_pairs,
        "gamma_patterns": len(codes),
        "clusters": int(clusters["cluster_id"].nunique()),
        "split_clusters": int(clusters["cluster_reason"].str.startswith("split:").sum()),
        "candidate_match_share": float(model.lambda_),
        "match_prior": float(model.prior_),
        "em_iterations": int(model.n_iter_),
        "fit": model.fit_report_,
        "notes": notes,
        **timings,
    }
    return LinkResult(pairs=scored, clusters=clusters, stats=stats, model=model,
                      candidates=candidates, census=weight_census)


__all__ = [
    "COMPARE_BATCH",
    "CURRENT_SPEC",
    "LINK_SPEC_JSON_SCHEMA",
    "SPEC_VERSION",
    "SPEC_VERSIONS",
    "BlockingSpec",
    "ClusteringSpec",
    "ComparisonSpec",
    "ExactKeySpec",
    "FellegiSunterSpec",
    "LinkResult",
    "LinkSpec",
    "LshSpec",
    "comparable_pairs",
    "link_records",
    "load_link_spec",
    "usable_spec",
]
