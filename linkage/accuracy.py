"""Linkage accuracy from clerical-review labels: strata of match weight, a stratified random
sample, and precision and recall with intervals (docs/review.md, "Accuracy").

The population is the run's **candidate pairs** (every pair blocking compared; a true pair that
blocking never compares is not counted, so recall here is recall among compared pairs). It is
cut into strata by match weight (``strata_edges``: finer near the thresholds). The engine counts
every candidate pair per stratum and keeps a uniform random pool of the non-match candidates
(``CensusPlan``, ``linkage.engine.link_records``); ``allocate`` spreads a review sample over
the strata and ``estimate`` turns the labels into figures:

* Within a stratum the labelled pairs are a simple random sample, so the stratum's share of
  true matches (and, for the linked clusters, of each combination of "linked" and "true") is
  estimated by the sample share; each stratum counts in proportion to its number of pairs
  (stratified estimation). A stratum whose every pair is labelled is known exactly.
* Below the lowest edge (the **tail**: pairs the model puts far below the possible-match
  threshold) no pair is drawn; its true matches are taken to be the model's own expected
  number (the sum of the pairs' match probabilities), and the figures say so.
* The intervals are 95% equal-tailed intervals of a Bayesian bootstrap over the strata: each
  stratum's shares are drawn from a Dirichlet posterior with Jeffreys' prior (0.5 per cell;
  for two cells, the Jeffreys interval for a binomial proportion, Brown, Cai and DasGupta
  2001), and precision and recall are computed per draw. A stratum with no match in its sample
  still leaves room for some, in proportion to its size: the interval says how much 200 labels
  can tell. The interval is widened to hold the point estimate where the two disagree (a
  stratum of all-match or no-match labels).

Only counts, weights and labels enter here: no record, token or filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "CensusPlan",
    "WeightCensus",
    "allocate",
    "census_frames",
    "estimate",
    "strata_edges",
    "stratum_of",
    "threshold_table",
]

#: Histogram bins of the weight chart are this wide (bits) and clipped to this range.
HISTOGRAM_WIDTH = 1.0
HISTOGRAM_RANGE = (-60.0, 60.0)
#: Draws of the Bayesian bootstrap behind each interval.
DRAWS = 20_000
LEVEL = 0.95


def strata_edges(possible_threshold: float, match_threshold: float) -> tuple[float, ...]:
    """Stratum edges (ascending; strata are ``[edge_i, edge_i+1)``, the last open above, and
    the tail below the first edge): 8, 4 and 2 bits below the possible-match threshold, 2-bit
    steps through the review band, then 2, 4, 8 and 16 bits above the match threshold."""
    low, high = float(possible_threshold), float(match_threshold)
    if high < low:
        raise ValueError("the match threshold must not be below the possible-match threshold")
    band = list(np.arange(low, high, 2.0)) if high > low else []
    edges = [low - 8, low - 4, low - 2, *band, high, high + 2, high + 4, high + 8, high + 16]
    return tuple(sorted({round(float(e), 6) for e in edges}))


def stratum_of(weights: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Stratum index per weight: 0 is the tail (below the first edge), ``i`` is
    ``[edges[i-1], edges[i])``, ``len(edges)`` is open above."""
    return np.searchsorted(np.asarray(edges, dtype=float), np.asarray(weights, dtype=float),
                           side="right")


@dataclass(frozen=True)
class CensusPlan:
    """What ``link_records`` counts and samples for review.

    Attributes:
        edges: Stratum edges (``strata_edges``).
        pool_size: At most this many non-match candidate pairs with a weight from the first
            edge up to the possible-match threshold are kept, uniformly at random.
        seed: Seed of the pool's draw.
    """

    edges: tuple[float, ...]
    pool_size: int = 20_000
    seed: int = 0


@dataclass
class WeightCensus:
    """Every candidate pair counted by weight, and a pool of non-match candidates.

    Attributes:
        strata: ``stratum, lo, hi, pairs, expected_matches`` (the sum of the model's match
            probabilities) for the tail, every stratum and the top.
        histogram: ``bin_lo, pairs, expected_matches`` in 1-bit bins (the weight chart).
        pool: Uniformly drawn non-match candidate pairs from the first edge up to the
            possible-match threshold: the engine's pair columns (keys, gammas, weight, class).
        pool_population: How many pairs the pool was drawn from.
    """

    strata: pd.DataFrame
    histogram: pd.DataFrame
    pool: pd.DataFrame = field(default_factory=pd.DataFrame)
    pool_population: int = 0


def census_frames(weights: np.ndarray, counts: np.ndarray,
                  edges: tuple[float, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(strata, histogram)`` from weights and how many pairs hold each (pattern counts)."""
    weights = np.asarray(weights, dtype=float)
    counts = np.asarray(counts, dtype=float)
    prob = 1.0 / (1.0 + np.exp2(-weights))
    which = stratum_of(weights, edges)
    k = len(edges) + 1
    lo = np.concatenate(([-np.inf], edges))
    hi = np.concatenate((edges, [np.inf]))
    strata = pd.DataFrame({
        "stratum": np.arange(k), "lo": lo, "hi": hi,
        "pairs": np.bincount(which, weights=counts, minlength=k).round().astype(np.int64),
        "expected_matches": np.bincount(which, weights=counts * prob, minlength=k)})
    low, high = HISTOGRAM_RANGE
    bins = np.floor(np.clip(weights, low, high) / HISTOGRAM_WIDTH) * HISTOGRAM_WIDTH
    hist = (pd.DataFrame({"bin_lo": bins, "pairs": counts, "expected_matches": counts * prob})
            .groupby("bin_lo", as_index=False).sum())
    hist = hist[hist["pairs"] > 0].reset_index(drop=True)
    hist["pairs"] = hist["pairs"].round().astype(np.int64)
    return strata, hist


def allocate(pairs: np.ndarray, size: int, capacity: np.ndarray | None = None) -> np.ndarray:
    """Sample size per stratum: half spread evenly over the strata, half in proportion to
    their pairs (even shares serve the thresholds' neighbourhood, proportional shares the large
    strata that decide the totals); never more than a stratum holds, or than ``capacity``
    (the pairs at hand: below the possible-match threshold only the pool), the rest passed on
    to the strata with room."""
    pairs = np.asarray(pairs, dtype=np.int64)
    cap = pairs if capacity is None else np.minimum(pairs, np.asarray(capacity, dtype=np.int64))
    out = np.zeros(len(pairs), dtype=np.int64)
    remaining = int(min(size, cap.sum()))
    while remaining > 0:
        room = cap - out
        open_ = room > 0
        even = remaining / 2 / open_.sum()
        share = np.where(open_, even + remaining / 2 * pairs / pairs[open_].sum(), 0.0)
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:  # hand out the last few one at a time, largest strata first
            for i in np.argsort(-pairs, kind="stable"):
                if remaining and room[i] > 0:
                    add[i] += 1
                    remaining -= 1
            out += add
            continue
        out += add
        remaining -= int(add.sum())
    return out


def _posterior_draws(counts: np.ndarray, rng: np.random.Generator, draws: int) -> np.ndarray:
    """Dirichlet(counts + 0.5) draws, ``[draws, cells]``."""
    return rng.dirichlet(np.asarray(counts, dtype=float) + 0.5, size=draws)


def estimate(strata: pd.DataFrame, labels: pd.DataFrame, *, match_threshold: float,
             possible_threshold: float, seed: int = 0, draws: int = DRAWS) -> dict:
    """Precision and recall at the thresholds, and of the linked clusters, with intervals.

    Args:
        strata: The census strata of the sampled run (``stratum, lo, hi, pairs,
            expected_matches``).
        labels: One row per labelled sample pair: ``stratum``, ``is_match`` (the decision:
            True for match, False for distinct) and ``linked`` (whether the run put the two
            records in one person).
        match_threshold, possible_threshold: The run's thresholds (stratum edges).

    Returns:
        ``{"figures": [...], "labelled": n, "strata": [...], "tail": {...}}``; each figure is
        ``{"measure", "what", "estimate", "low", "high"}``.
    """
    rng = np.random.default_rng(seed)
    strata = strata.sort_values("stratum").reset_index(drop=True)
    labels = labels.astype({"is_match": bool, "linked": bool})
    tail = strata[strata["lo"] == -np.inf]
    sampled = strata[strata["lo"] > -np.inf]
    tail_pairs = int(tail["pairs"].sum())
    tail_matches = float(tail["expected_matches"].sum())
    per_stratum, point, draw = [], [], []
    for row in sampled.itertuples(index=False):
        mine = labels[labels["stratum"] == row.stratum]
        counts = np.array([
            int((mine["linked"] & mine["is_match"]).sum()),
            int((mine["linked"] & ~mine["is_match"]).sum()),
            int((~mine["linked"] & mine["is_match"]).sum()),
            int((~mine["linked"] & ~mine["is_match"]).sum())])
        n = int(counts.sum())
        census = n >= row.pairs  # every pair of the stratum is labelled
        per_stratum.append({"stratum": int(row.stratum), "lo": float(row.lo),
                            "hi": float(row.hi), "pairs": int(row.pairs), "labelled": n,
                            "matches": int(counts[0] + counts[2]), "census": bool(census)})
        if row.pairs == 0:
            share = np.zeros(4)
            draws_ = np.zeros((draws, 4))
        elif census:
            share = counts / max(n, 1)
            draws_ = np.tile(share, (draws, 1))
        elif n == 0:  # nothing labelled: no estimate for this stratum
            share = np.full(4, np.nan)
            draws_ = np.full((draws, 4), np.nan)
        else:
            share = counts / n
            draws_ = _posterior_draws(counts, rng, draws)
        point.append(share * row.pairs)
        draw.append(draws_ * row.pairs)
    point_arr = np.array(point) if point else np.zeros((0, 4))  # [strata, cells]
    draw_arr = np.stack(draw, axis=1) if draw else np.zeros((draws, 0, 4))  # [d, strata, c]
    lo_edges = sampled["lo"].to_numpy()

    def figure(measure: str, what: str, numerator, denominator) -> dict:
        est = _ratio(numerator(point_arr[None]), denominator(point_arr[None]))[0]
        values = _ratio(numerator(draw_arr), denominator(draw_arr))
        values = values[np.isfinite(values)]
        if not np.isfinite(est) or not len(values):
            return {"measure": measure, "what": what, "estimate": None, "low": None,
                    "high": None}
        tail_q = (1 - LEVEL) / 2
        low, high = np.quantile(values, [tail_q, 1 - tail_q])
        return {"measure": measure, "what": what, "estimate": float(est),
                "low": float(min(low, est)), "high": float(max(high, est))}

    def matches(arr):
        return arr[..., 0].sum(-1) + arr[..., 2].sum(-1) + tail_matches

    figures = []
    for name, t in (("match threshold", match_threshold),
                    ("possible-match threshold", possible_threshold)):
        above = lo_edges >= t - 1e-9
        figures.append(figure("precision", f"pairs at or above the {name} ({t:g})",
                              lambda a, m=above: _true_above(a, m),
                              lambda a, m=above: _pairs_above(a, m)))
        figures.append(figure("recall", f"pairs at or above the {name} ({t:g})",
                              lambda a, m=above: _true_above(a, m), matches))
    figures.append(figure("precision", "records linked into one person",
                          lambda a: a[..., 0].sum(-1),
                          lambda a: a[..., 0].sum(-1) + a[..., 1].sum(-1)))
    figures.append(figure("recall", "records linked into one person",
                          lambda a: a[..., 0].sum(-1), matches))
    return {"figures": figures, "labelled": len(labels), "strata": per_stratum,
            "tail": {"below": float(lo_edges[0]) if len(lo_edges) else None,
                     "pairs": tail_pairs, "expected_matches": tail_matches}}


def _true_above(arr: np.ndarray, above: np.ndarray) -> np.ndarray:
    return (arr[..., 0] + arr[..., 2])[..., above].sum(-1)


def _pairs_above(arr: np.ndarray, above: np.ndarray) -> np.ndarray:
    return arr[..., above, :].sum(-1).sum(-1)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def threshold_table(strata: pd.DataFrame, labels: pd.DataFrame, *, seed: int = 0,
                    draws: int = DRAWS) -> pd.DataFrame:
    """Expected precision and recall if the match threshold were at each stratum edge (the
    threshold-selection chart): ``threshold, pairs_above, precision, precision_low,
    precision_high, recall, recall_low, recall_high``."""
    strata = strata.sort_values("stratum").reset_index(drop=True)
    edges = strata.loc[strata["lo"] > -np.inf, "lo"].to_numpy()
    rows = []
    for t in edges:
        result = estimate(strata, labels, match_threshold=float(t),
                          possible_threshold=float(t), seed=seed, draws=draws)
        precision, recall = result["figures"][0], result["figures"][1]
        pairs = int(strata.loc[strata["lo"] >= t - 1e-9, "pairs"].sum())
        rows.append({"threshold": float(t), "pairs_above": pairs,
                     **{f"precision{s}": precision[k] for s, k in
                        (("", "estimate"), ("_low", "low"), ("_high", "high"))},
                     **{f"recall{s}": recall[k] for s, k in
                        (("", "estimate"), ("_low", "low"), ("_high", "high"))}})
    return pd.DataFrame(rows)
