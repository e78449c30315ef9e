"""recordlinkage-shaped adapters over the production stages (tests, docs and notebooks).

The pipeline links through ``linkage.engine.link_records``, which holds candidate pairs as row
positions (``block.candidate_positions``), compares them in batches
(``compare.ComparisonColumns``) and scores each gamma pattern once
(``classify.FellegiSunter.fit_patterns``). The functions and classes here give the same
results in the shapes recordlinkage users know, as recordlinkage keeps its framework adapters
in ``recordlinkage/adapters.py``:

* ``candidate_pairs`` / ``candidate_pairs_with_stats``: a ``MultiIndex`` of
  ``(record_key_l, record_key_r)`` instead of positions;
* ``compare_pairs``: a gamma frame indexed by such pairs;
* ``BloomLSHIndex`` and ``DiceFeature``: a ``recordlinkage.Index`` algorithm and a
  ``recordlinkage.Compare`` feature over Bloom-filter columns.

They hold pair frames in memory, so they suit thousands of records, not millions.
``classify.FellegiSunter.fit`` (the frame form of the fit) stays a method of the one model
class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from recordlinkage.base import BaseCompareFeature, BaseIndexAlgorithm

from linkage.block import (
    BlockingStats,
    _candidate_codes,
    _filter_bits,
    _lsh_pairs,
    _PairAccumulator,
    bloom_matrix,
)
from linkage.compare import ComparisonColumns, bloom_words, dice_levels, dice_similarity
from linkage.spec import LinkSpec, LshSpec

__all__ = [
    "BloomLSHIndex",
    "DiceFeature",
    "candidate_pairs",
    "candidate_pairs_with_stats",
    "compare_pairs",
    "pair_positions",
]


def pair_positions(pairs: pd.MultiIndex, encoded: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in ``encoded`` of the left and right record of each pair."""
    keys = pd.Index(encoded["record_key"].astype(str))
    left_lookup = keys.get_indexer(pairs.levels[0].astype(str))
    right_lookup = (left_lookup if pairs.levels[1].equals(pairs.levels[0])
                    else keys.get_indexer(pairs.levels[1].astype(str)))
    left = left_lookup[pairs.codes[0]]
    right = right_lookup[pairs.codes[1]]
    if (left < 0).any() or (right < 0).any():
        raise KeyError("pairs refer to record_keys that are not in the encoded frame")
    return left.astype(np.int64), right.astype(np.int64)


def candidate_pairs_with_stats(encoded: pd.DataFrame,
                               spec: LinkSpec) -> tuple[pd.MultiIndex, BlockingStats]:
    """Candidate pairs and blocking statistics.

    Args:
        encoded: Frame with ``record_key`` (unique), ``partner_id``, ``tok_*`` and ``bf_*``.
        spec: Linkage spec; uses ``spec.link_type`` and ``spec.blocking``.

    Returns:
        ``(pairs, stats)`` where ``pairs`` is a ``MultiIndex`` named
        ``(record_key_l, record_key_r)`` with ``record_key_l < record_key_r``, sorted.
    """
    codes, order, stats, _ = _candidate_codes(encoded, spec)
    n = len(order)
    sorted_keys = encoded["record_key"].astype(str).to_numpy(dtype=object)[order]
    level = pd.Index(sorted_keys, dtype=object)
    pairs = pd.MultiIndex(levels=[level, level], codes=[codes // n, codes % n],
                          names=["record_key_l", "record_key_r"], verify_integrity=False)
    return pairs, stats


def candidate_pairs(encoded: pd.DataFrame, spec: LinkSpec) -> pd.MultiIndex:
    """Candidate pairs ``(record_key_l, record_key_r)`` with ``l < r`` (see module docstring)."""
    return candidate_pairs_with_stats(encoded, spec)[0]


def compare_pairs(pairs: pd.MultiIndex, encoded: pd.DataFrame, spec: LinkSpec) -> pd.DataFrame:
    """Gamma features for candidate pairs.

    Args:
        pairs: ``MultiIndex`` of ``(record_key_l, record_key_r)`` (as from blocking).
        encoded: The encoded frame with ``record_key``.
        spec: Linkage spec; uses ``spec.comparisons``.

    Returns:
        DataFrame indexed by ``pairs`` with one int8 ``gamma_<name>`` column per comparison.
    """
    left, right = pair_positions(pairs, encoded)
    features = ComparisonColumns.build(encoded, spec).compare(left, right)
    features.index = pairs
    return features


class BloomLSHIndex(BaseIndexAlgorithm):
    """Hamming LSH over Bloom-filter columns, usable in ``recordlinkage.Index().add(...)``.

    Args:
        columns: ``bf_*`` columns to concatenate (bytes or None).
        bands: Number of bands.
        bits_per_band: Bits sampled per band (<= 64).
        seed: RNG seed for the sampled positions.
        max_block_size: Blocks larger than this are skipped.

    Example:
        >>> indexer = recordlinkage.Index()
        >>> indexer.add(BloomLSHIndex(["bf_given_name", "bf_family_name"]))
        >>> pairs = indexer.index(df_a, df_b)
    """

    def __init__(self, columns: Sequence[str], bands: int = 20, bits_per_band: int = 24,
                 seed: int = 1, max_block_size: int = 500, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lsh = LshSpec(name="index", columns=tuple(columns), bands=bands,
                           bits_per_band=bits_per_band, seed=seed)
        self.max_block_size = max_block_size

    def _pairs(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        matrices = []
        for c in self.lsh.columns:
            matrix, present = bloom_matrix(frame[c])
            matrices.append((matrix, present, _filter_bits(frame[c], matrix)))
        acc = _PairAccumulator()
        n = np.int64(len(frame))

        def emit(left, right):
            lo, hi = np.minimum(left, right), np.maximum(left, right)
            keep = lo != hi
            acc.add(lo[keep] * n + hi[keep])

        _lsh_pairs(matrices, self.lsh, self.max_block_size, emit)
        codes = acc.result()
        return codes // n, codes % n

    def _link_index(self, df_a: pd.DataFrame, df_b: pd.DataFrame) -> pd.MultiIndex:
        frame = pd.concat([df_a[list(self.lsh.columns)], df_b[list(self.lsh.columns)]],
                          ignore_index=True)
        lo, hi = self._pairs(frame)
        na = len(df_a)
        cross = (lo < na) & (hi >= na)
        return pd.MultiIndex(levels=[df_a.index, df_b.index],
                             codes=[lo[cross], hi[cross] - na], verify_integrity=False)

    def _dedup_index(self, df_a: pd.DataFrame) -> pd.MultiIndex:
        lo, hi = self._pairs(df_a)
        # recordlinkage keeps the lower triangle for deduplication: first code > second code
        return pd.MultiIndex(levels=[df_a.index, df_a.index], codes=[hi, lo],
                             verify_integrity=False)


class DiceFeature(BaseCompareFeature):
    """Bloom-filter Dice similarity for ``recordlinkage.Compare``.

    Args:
        left_on: Left ``bf_*`` column (bytes or None).
        right_on: Right ``bf_*`` column.
        thresholds: Descending thresholds; when given, the feature is the gamma level (int8, -1
            for missing) instead of the similarity (float, NaN for missing).
        label: Output column label.

    Example:
        >>> comparer = recordlinkage.Compare()
        >>> comparer.add(DiceFeature("bf_family_name", "bf_family_name", label="family_name"))
        >>> features = comparer.compute(pairs, df_a, df_b)
    """

    name = "dice"
    description = "Dice similarity of Bloom-filter encodings"

    def __init__(self, left_on: str, right_on: str, thresholds=None, label=None) -> None:
        super().__init__(left_on, right_on, label=label)
        self.thresholds = None if thresholds is None else tuple(thresholds)

    def _compute_vectorized(self, s_left: pd.Series, s_right: pd.Series):
        n = len(s_left)
        words, counts, present = bloom_words(list(s_left) + list(s_right))
        left = np.arange(n, dtype=np.int64)
        right = left + n
        if self.thresholds is not None:
            return dice_levels(words, counts, present, left, right, self.thresholds)
        sim = dice_similarity(words, counts, left, right).astype(np.float64)
        sim[~(present[:n] & present[n:])] = np.nan
        return sim
