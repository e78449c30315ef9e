"""Compare: one ``gamma_<feature>`` (int8, -1 = null) per comparison in the spec.

* ``dice``: Dice similarity ``2|A & B| / (|A| + |B|)`` of two Bloom filters, computed by a numba
  kernel over a ``uint64`` matrix with a hardware popcount; gamma = number of the (descending)
  thresholds met, e.g. ``[0.95, 0.85, 0.7]``: >= 0.95 -> 3, >= 0.85 -> 2, >= 0.7 -> 1, else 0.
* ``exact``: token (or plain value) equality: equal -> 1, different -> 0. An SSN token is its
  own ``exact`` comparison, so SSN disagreement gets its own (strongly negative) weight.
* ``year_diff``: integer difference (e.g. ``birth_year``): gamma = number of the (ascending)
  maximum differences met, e.g. ``[0, 1]``: equal -> 2, off by one -> 1, else 0.

Either side missing gives -1 for every kind. :class:`DiceFeature` wraps the kernel for
``recordlinkage.Compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd
from numba import types
from numba.extending import intrinsic
from recordlinkage.base import BaseCompareFeature

from linkage.block import bloom_matrix, pair_positions

if TYPE_CHECKING:
    from linkage.engine import ComparisonSpec, LinkSpec

__all__ = [
    "ComparisonColumns",
    "DiceFeature",
    "bloom_words",
    "compare_pairs",
    "dice_levels",
    "dice_similarity",
    "random_pairs",
]


@intrinsic
def _popcount64(typingctx, x):
    """LLVM ``ctpop`` on a uint64 (compiles to the POPCNT instruction where available)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _row_popcounts(words: np.ndarray) -> np.ndarray:  # pragma: no cover - jitted
    n, w = words.shape
    out = np.empty(n, dtype=np.int32)
    for i in range(n):
        c = 0
        for k in range(w):
            c += _popcount64(words[i, k])
        out[i] = c
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dice_kernel(words: np.ndarray, counts: np.ndarray, left: np.ndarray,
                 right: np.ndarray) -> np.ndarray:  # pragma: no cover - jitted
    n = left.shape[0]
    w = words.shape[1]
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        a = left[i]
        b = right[i]
        c = np.uint64(0)
        for k in range(w):
            c += _popcount64(words[a, k] & words[b, k])
        denom = counts[a] + counts[b]
        out[i] = np.float32(2.0 * c / denom) if denom > 0 else np.float32(0.0)
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dice_level_kernel(words: np.ndarray, counts: np.ndarray, present: np.ndarray,
                       left: np.ndarray, right: np.ndarray,
                       thresholds: np.ndarray) -> np.ndarray:  # pragma: no cover - jitted
    n = left.shape[0]
    w = words.shape[1]
    t = thresholds.shape[0]
    out = np.empty(n, dtype=np.int8)
    for i in range(n):
        a = left[i]
        b = right[i]
        if not (present[a] and present[b]):
            out[i] = -1
            continue
        c = np.uint64(0)
        for k in range(w):
            c += _popcount64(words[a, k] & words[b, k])
        denom = counts[a] + counts[b]
        level = 0
        if denom > 0:
            twice = 2.0 * c
            for j in range(t):
                if twice >= thresholds[j] * denom:
                    level = t - j
                    break
        out[i] = level
    return out


def bloom_words(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(words uint64[n, w], popcounts int32[n], present bool[n])`` for a Bloom-filter column."""
    matrix, present = bloom_matrix(values)
    words = np.ascontiguousarray(matrix).view(np.uint64)
    return words, _row_popcounts(words), present


def dice_similarity(words: np.ndarray, counts: np.ndarray, left: np.ndarray,
                    right: np.ndarray) -> np.ndarray:
    """Dice similarity (float32) of rows ``left[i]`` and ``right[i]`` of ``words``."""
    return _dice_kernel(words, counts, np.asarray(left, dtype=np.int64),
                        np.asarray(right, dtype=np.int64))


def dice_levels(words: np.ndarray, counts: np.ndarray, present: np.ndarray, left: np.ndarray,
                right: np.ndarray, thresholds) -> np.ndarray:
    """Gamma levels (int8, -1 when either filter is missing) for descending ``thresholds``."""
    return _dice_level_kernel(words, counts, present, np.asarray(left, dtype=np.int64),
                              np.asarray(right, dtype=np.int64),
                              np.asarray(thresholds, dtype=np.float64))


def _exact_levels(codes: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a, b = codes[left], codes[right]
    out = (a == b).astype(np.int8)
    out[(a < 0) | (b < 0)] = -1
    return out


def _year_levels(values: np.ndarray, present: np.ndarray, left: np.ndarray, right: np.ndarray,
                 thresholds: tuple[float, ...]) -> np.ndarray:
    diff = np.abs(values[left] - values[right])
    out = np.zeros(len(left), dtype=np.int8)
    for t in thresholds:
        out += (diff <= t).astype(np.int8)
    out[~(present[left] & present[right])] = -1
    return out


def _exact_codes(column: pd.Series) -> np.ndarray:
    values = column.to_numpy(dtype=object)
    codes = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)
    codes[np.fromiter((v == "" for v in values), dtype=bool, count=len(values))] = -1
    return codes


@dataclass
class ComparisonColumns:
    """Per-record arrays prepared once, so many pair batches can be compared cheaply."""

    comparisons: tuple[ComparisonSpec, ...]
    arrays: dict[str, tuple] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    n_records: int = 0

    @classmethod
    def build(cls, encoded: pd.DataFrame, spec: LinkSpec) -> ComparisonColumns:
        """Prepare the columns the spec's comparisons need (absent columns give gamma -1)."""
        out = cls(comparisons=tuple(spec.comparisons), n_records=len(encoded))
        cache: dict[tuple[str, str], tuple] = {}
        for comp in spec.comparisons:
            if comp.column not in encoded.columns:
                out.missing_columns.append(comp.column)
                continue
            key = (comp.kind, comp.column)
            if key not in cache:
                column = encoded[comp.column]
                if comp.kind == "dice":
                    cache[key] = bloom_words(column)
                elif comp.kind == "exact":
                    cache[key] = (_exact_codes(column),)
                else:
                    numeric = pd.to_numeric(column, errors="coerce")
                    present = numeric.notna().to_numpy()
                    cache[key] = (numeric.fillna(0).to_numpy(dtype=np.int64), present)
            out.arrays[comp.name] = cache[key]
        return out

    def compare(self, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
        """Gamma columns for row positions ``left[i]``, ``right[i]`` (RangeIndex)."""
        left = np.asarray(left, dtype=np.int64)
        right = np.asarray(right, dtype=np.int64)
        data = {}
        for comp in self.comparisons:
            arrays = self.arrays.get(comp.name)
            if arrays is None:
                gamma = np.full(len(left), -1, dtype=np.int8)
            elif comp.kind == "dice":
                words, counts, present = arrays
                gamma = dice_levels(words, counts, present, left, right, comp.thresholds)
            elif comp.kind == "exact":
                gamma = _exact_levels(arrays[0], left, right)
            else:
                gamma = _year_levels(arrays[0], arrays[1], left, right, comp.thresholds)
            data[comp.gamma_column] = gamma
        return pd.DataFrame(data)


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


def random_pairs(encoded: pd.DataFrame, spec: LinkSpec, size: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of ``size`` random record pairs (for u probabilities).

    Pairs respect ``spec.link_type``: across partners for ``link_only``, within a partner for
    ``dedupe_only``, any two distinct records otherwise.
    """
    n = len(encoded)
    if n < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    partner = None
    if spec.link_type != "link_and_dedupe" and "partner_id" in encoded.columns:
        partner = pd.factorize(encoded["partner_id"].to_numpy(dtype=object))[0]
    lefts, rights, got = [], [], 0
    for _ in range(50):
        a = rng.integers(0, n, size=2 * size)
        b = rng.integers(0, n, size=2 * size)
        keep = a != b
        if partner is not None:
            same = partner[a] == partner[b]
            keep &= ~same if spec.link_type == "link_only" else same
        lefts.append(a[keep])
        rights.append(b[keep])
        got += int(keep.sum())
        if got >= size:
            break
    left = np.concatenate(lefts)[:size].astype(np.int64)
    right = np.concatenate(rights)[:size].astype(np.int64)
    return left, right


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
