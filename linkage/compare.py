"""Compare: one ``gamma_<feature>`` (int8, -1 = null) per comparison in the spec.

* ``dice``: Dice similarity ``2|A & B| / (|A| + |B|)`` of two Bloom filters, computed by a numba
  kernel over a ``uint64`` matrix with a hardware popcount; gamma = number of the (descending)
  thresholds met, e.g. ``[0.95, 0.85, 0.7]``: >= 0.95 -> 3, >= 0.85 -> 2, >= 0.7 -> 1, else 0.
* ``exact``: token (or plain value) equality: equal -> 1, different -> 0. An SSN token is its
  own ``exact`` comparison, so SSN disagreement gets its own (strongly negative) weight.
* ``year_diff``: integer difference (e.g. ``birth_year``): gamma = number of the (ascending)
  maximum differences met, e.g. ``[0, 1]``: equal -> 2, off by one -> 1, else 0.
* ``token_set``: keyed token sets (``ts_*``, ``linkage.encode.tokens``): 1 when the two sets
  share a token, else 0. ``exact_levels`` ladders may hold token sets as weaker columns.

Either side missing gives -1 for every kind. ``linkage.adapters.DiceFeature`` wraps the kernel
for ``recordlinkage.Compare``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd
from numba import types
from numba.extending import intrinsic

from linkage.block import bloom_matrix
from linkage.spec import ComparisonSpec, LinkSpec

__all__ = [
    "ComparisonColumns",
    "DiceTable",
    "bloom_words",
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


_FAST = {"cache": True, "nogil": True, "boundscheck": False, "error_model": "numpy"}


@numba.njit(**_FAST)
def _dice_kernel(words: np.ndarray, counts: np.ndarray, left: np.ndarray, right: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover - jitted
    # per pair only the AND-popcount: the row popcounts are precomputed once per record
    w = words.shape[1]
    for i in range(left.shape[0]):
        a = left[i]
        b = right[i]
        c = 0
        for k in range(w):
            c += np.int64(_popcount64(words[a, k] & words[b, k]))
        denom = counts[a] + counts[b]
        out[i] = np.float32(2 * c) / np.float32(denom) if denom > 0 else np.float32(0.0)


@numba.njit(**_FAST)
def _dice_levels_kernel(words: np.ndarray, offsets: np.ndarray, counts: np.ndarray,
                        present: np.ndarray, thresholds: np.ndarray, n_thresholds: np.ndarray,
                        left: np.ndarray, right: np.ndarray,
                        out: np.ndarray) -> None:  # pragma: no cover - jitted
    # every Dice field of a pair in one pass: words holds the fields side by side,
    # field f in words[:, offsets[f]:offsets[f + 1]]
    n_fields = offsets.shape[0] - 1
    for i in range(left.shape[0]):
        a = left[i]
        b = right[i]
        for f in range(n_fields):
            if not (present[a, f] and present[b, f]):
                out[i, f] = -1
                continue
            c = 0
            for k in range(offsets[f], offsets[f + 1]):
                c += np.int64(_popcount64(words[a, k] & words[b, k]))
            denom = np.float64(counts[a, f] + counts[b, f])
            twice = np.float64(2 * c)
            t = n_thresholds[f]
            level = 0
            for j in range(t):
                if twice >= thresholds[f, j] * denom:
                    level = t - j
                    break
            out[i, f] = level


def bloom_words(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(words uint64[n, w], popcounts int32[n], present bool[n])`` for a Bloom-filter column."""
    matrix, present = bloom_matrix(values)
    words = np.ascontiguousarray(matrix).view(np.uint64)
    return words, _row_popcounts(words), present


def _positions(index) -> np.ndarray:
    index = np.asarray(index)
    return index if index.dtype in (np.int32, np.int64) else index.astype(np.int64)


def dice_similarity(words: np.ndarray, counts: np.ndarray, left: np.ndarray,
                    right: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Dice similarity (float32) of rows ``left[i]`` and ``right[i]`` of ``words``.

    ``left``/``right`` may be int32 or int64; ``out`` (float32, ``len(left)``) is reused when
    given. Pairs sorted by ``left`` (blocking order) keep the left filter in cache.
    """
    left, right = _positions(left), _positions(right)
    if out is None:
        out = np.empty(len(left), dtype=np.float32)
    _dice_kernel(words, counts, left, right, out)
    return out


def dice_levels(words: np.ndarray, counts: np.ndarray, present: np.ndarray, left: np.ndarray,
                right: np.ndarray, thresholds) -> np.ndarray:
    """Gamma levels (int8, -1 when either filter is missing) for descending ``thresholds``."""
    table = DiceTable(words, np.array([0, words.shape[1]], dtype=np.int64),
                      counts.reshape(-1, 1).astype(np.int32), present.reshape(-1, 1),
                      [tuple(thresholds)])
    return table.levels(left, right)[:, 0]


class DiceTable:
    """Several Bloom-filter columns side by side, compared in one kernel pass per pair.

    Args:
        words: ``uint64[n, total_words]``, field ``f`` in columns ``offsets[f]:offsets[f+1]``.
        offsets: ``int64[n_fields + 1]`` word offsets.
        counts: ``int32[n, n_fields]`` popcount of each record's filter (computed once).
        present: ``bool[n, n_fields]``.
        thresholds: Descending thresholds per field.
    """

    def __init__(self, words, offsets, counts, present, thresholds) -> None:
        self.words = words
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.counts = np.ascontiguousarray(counts, dtype=np.int32)
        self.present = np.ascontiguousarray(present, dtype=np.bool_)
        width = max([len(t) for t in thresholds] + [1])
        self.thresholds = np.zeros((len(thresholds), width), dtype=np.float64)
        for f, t in enumerate(thresholds):
            self.thresholds[f, :len(t)] = t
        self.n_thresholds = np.array([len(t) for t in thresholds], dtype=np.int64)

    @classmethod
    def from_columns(cls, columns: list[pd.Series], thresholds) -> DiceTable:
        """Pack ``bf_*`` columns (bytes or None) into one word matrix."""
        n = len(columns[0]) if columns else 0
        parts = [bloom_matrix(c) for c in columns]
        widths = [m.shape[1] // 8 for m, _ in parts]
        offsets = np.concatenate(([0], np.cumsum(widths))).astype(np.int64)
        words = np.empty((n, int(offsets[-1])), dtype=np.uint64)
        counts = np.empty((n, len(parts)), dtype=np.int32)
        present = np.empty((n, len(parts)), dtype=np.bool_)
        for f in range(len(parts)):
            matrix, mask = parts[f]
            parts[f] = None  # free each byte matrix once copied
            block = np.ascontiguousarray(matrix).view(np.uint64)
            words[:, offsets[f]:offsets[f + 1]] = block
            counts[:, f] = _row_popcounts(block)
            present[:, f] = mask
        return cls(words, offsets, counts, present, thresholds)

    def levels(self, left, right) -> np.ndarray:
        """``int8[len(left), n_fields]`` gamma levels (-1 when either filter is missing)."""
        left, right = _positions(left), _positions(right)
        out = np.empty((len(left), len(self.n_thresholds)), dtype=np.int8)
        if len(left) and len(self.n_thresholds):
            _dice_levels_kernel(self.words, self.offsets, self.counts, self.present,
                                self.thresholds, self.n_thresholds, left, right, out)
        return out


@numba.njit(**_FAST)
def _shared_tokens_kernel(tokens: np.ndarray, present: np.ndarray, left: np.ndarray,
                          right: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    # rows of ``tokens`` are sorted: a merge counts the tokens two records share
    w = tokens.shape[1]
    for i in range(left.shape[0]):
        a = left[i]
        b = right[i]
        if not (present[a] and present[b]):
            out[i] = -1
            continue
        x = 0
        y = 0
        shared = 0
        while x < w and y < w:
            ta = tokens[a, x]
            tb = tokens[b, y]
            if ta == tb:
                shared += 1
                x += 1
                y += 1
            elif ta < tb:
                x += 1
            else:
                y += 1
        out[i] = shared


def shared_tokens(tokens: np.ndarray, present: np.ndarray, left: np.ndarray,
                  right: np.ndarray) -> np.ndarray:
    """Tokens two records' token sets share (int32, -1 when either set is missing)."""
    out = np.empty(len(left), dtype=np.int32)
    if len(left):
        _shared_tokens_kernel(tokens, present, _positions(left), _positions(right), out)
    return out


@dataclass(frozen=True)
class _TokenSetColumn:
    """A ``ts_*`` column as sorted ``uint64`` rows and a presence mask."""

    tokens: np.ndarray
    present: np.ndarray

    @classmethod
    def of(cls, column: pd.Series) -> _TokenSetColumn:
        from linkage.encode import token_set_values

        return cls(*token_set_values(column))

    def agree(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shared = shared_tokens(self.tokens, self.present, left, right)
        return shared >= 0, shared > 0


def _agreement(column, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(both present, agree)`` of a prepared column: token codes or a token set."""
    if isinstance(column, _TokenSetColumn):
        return column.agree(left, right)
    a, b = column[left], column[right]
    return (a >= 0) & (b >= 0), a == b


def _exact_ladder(columns: tuple, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``exact`` (one column: 1 equal, 0 different), ``token_set`` (1 a shared token, 0 none)
    and ``exact_levels``: the strongest agreeing column (strongest first) gives level
    ``len(columns)``, the next ``len(columns) - 1``, ...; none agreeing 0; -1 when no column is
    present on both sides. A column is token codes (agree = equal) or a token set (agree = a
    shared token)."""
    out = np.full(len(left), -1, dtype=np.int8)
    for i in range(len(columns) - 1, -1, -1):  # weakest first: stronger agreement overwrites
        both, agree = _agreement(columns[i], left, right)
        out[both & (out < 0)] = 0
        out[both & agree] = len(columns) - i
    return out


def _ladder_column(encoded: pd.DataFrame, name: str):
    if name not in encoded.columns:
        return np.full(len(encoded), -1, dtype=np.int64)
    if name.startswith("ts_"):
        return _TokenSetColumn.of(encoded[name])
    return _exact_codes(encoded[name])


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


def _salt_codes(column: pd.Series) -> np.ndarray:
    """Equality codes of a salt column; every missing value shares one code (empty salt)."""
    values = column.to_numpy(dtype=object)
    codes = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)
    return codes


@dataclass
class ComparisonColumns:
    """Per-record arrays prepared once, so many pair batches can be compared cheaply.

    All ``dice`` comparisons share one :class:`DiceTable`, so a pair's filters are all compared
    in one kernel pass. A comparison whose column is absent gives gamma -1 and is listed in
    ``missing_columns``.
    """

    comparisons: tuple[ComparisonSpec, ...]
    arrays: dict[str, tuple] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    n_records: int = 0
    dice: DiceTable | None = None
    dice_field: dict[str, int] = field(default_factory=dict)
    salts: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, encoded: pd.DataFrame, spec: LinkSpec) -> ComparisonColumns:
        """Prepare the columns the spec's comparisons need (absent columns give gamma -1)."""
        out = cls(comparisons=tuple(spec.comparisons), n_records=len(encoded))
        cache: dict[tuple[str, str], tuple] = {}
        dice_columns: list[str] = []
        dice_thresholds: list[tuple[float, ...]] = []
        for comp in spec.comparisons:
            if comp.column not in encoded.columns:
                out.missing_columns.append(comp.column)
                continue
            for salt in (comp.salt_column, *comp.differs_columns):
                if salt and salt in encoded.columns and salt not in out.salts:
                    out.salts[salt] = _salt_codes(encoded[salt])
            if comp.kind == "dice":
                # one table field per (column, thresholds)
                key = (comp.column, tuple(comp.thresholds))
                if key not in cache:
                    cache[key] = (len(dice_columns),)
                    dice_columns.append(comp.column)
                    dice_thresholds.append(tuple(comp.thresholds))
                out.dice_field[comp.name] = cache[key][0]
                continue
            key = (comp.kind, comp.column)
            if key not in cache:
                column = encoded[comp.column]
                if comp.kind in ("exact", "token_set"):
                    cache[key] = (_ladder_column(encoded, comp.column),)
                elif comp.kind == "exact_levels":
                    cache[key] = tuple(_ladder_column(encoded, c)
                                       for c in (comp.column, *comp.weaker_columns))
                else:
                    numeric = pd.to_numeric(column, errors="coerce")
                    present = numeric.notna().to_numpy()
                    cache[key] = (numeric.fillna(0).to_numpy(dtype=np.int64), present)
            out.arrays[comp.name] = cache[key]
        if dice_columns:
            out.dice = DiceTable.from_columns([encoded[c] for c in dice_columns],
                                              dice_thresholds)
        return out

    def compare(self, left: np.ndarray, right: np.ndarray, *, gated: bool = True) -> pd.DataFrame:
        """Gamma columns for row positions ``left[i]``, ``right[i]`` (RangeIndex); see
        :meth:`gamma_matrix` for ``gated``."""
        gamma = self.gamma_matrix(left, right, gated=gated)
        return pd.DataFrame({comp.gamma_column: gamma[:, j]
                             for j, comp in enumerate(self.comparisons)})

    def gamma_matrix(self, left: np.ndarray, right: np.ndarray, *,
                     gated: bool = True) -> np.ndarray:
        """``int8[len(left), comparisons]`` gamma levels, comparisons in spec order.

        ``gated=False`` skips the ``salt_column`` / ``only_if_differs`` gates: filters under
        different salts are then compared as they are, i.e. as unrelated records (the chance
        agreement a small workspace's u falls back to, see ``classify.FellegiSunter``).
        """
        left = _positions(left)
        right = _positions(right)
        dice = self.dice.levels(left, right) if self.dice is not None else None
        out = np.empty((len(left), len(self.comparisons)), dtype=np.int8)
        for j, comp in enumerate(self.comparisons):
            if comp.name in self.dice_field:
                gamma = dice[:, self.dice_field[comp.name]]
            elif comp.name in self.arrays:
                arrays = self.arrays[comp.name]
                if comp.kind in ("exact", "exact_levels", "token_set"):
                    gamma = _exact_ladder(arrays, left, right)
                else:
                    gamma = _year_levels(arrays[0], arrays[1], left, right, comp.thresholds)
            else:
                gamma = -1
            out[:, j] = gamma
            if not gated:
                continue
            salt = self.salts.get(comp.salt_column or "")
            if salt is not None:
                # filters salted by different values are unrelated: no evidence either way
                out[salt[left] != salt[right], j] = -1
            for column in comp.differs_columns:
                differs = self.salts.get(column)
                if differs is not None:
                    # the fallback of a salted comparison: silent where that one speaks
                    out[differs[left] == differs[right], j] = -1
        return out


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
    # distinct pairs: a small workspace has fewer pairs than the sample size, and drawing the
    # same pair many times would not tell u anything more (it would hide how little there is)
    lo, hi = np.minimum(left, right), np.maximum(left, right)
    _, first = np.unique(lo * n + hi, return_index=True)
    first.sort()
    return left[first], right[first]
