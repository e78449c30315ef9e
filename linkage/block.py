"""Blocking: candidate record pairs from token equality and Bloom-filter LSH.

Three kinds of blocking keys are unioned:

* token equality on each ``tok_<name>`` column named in the spec (``None`` never blocks), and
  on any shared token of each ``ts_<name>`` token set;
* exact keys: joint equality of the values of a few encoded columns (e.g. the ``bf_dob``
  bytes, which are equal exactly when the dates of birth are); a record missing any of them
  takes no part;
* Hamming (bit-sampling) LSH over the concatenation of some ``bf_<field>`` Bloom filters:
  each band samples ``bits_per_band`` bit positions chosen by a seeded RNG, the sampled bits
  form the band key, and records sharing a key in any band become candidate pairs.

A block (records sharing one key) larger than ``max_block_size`` is skipped and counted, so a
placeholder token or a very common name cannot explode the pair count. Grouping is done with
``numpy.argsort``; pairs are generated without Python loops and deduplicated as ``int64``
codes. The engine only depends on the column formats, not on who made the encodings.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from linkage.spec import BlockingSpec, LinkSpec, LshSpec

__all__ = [
    "BlockingStats",
    "CandidatePositions",
    "bloom_matrix",
    "candidate_index",
    "candidate_positions",
    "lsh_band_positions",
    "rule_positions",
]

_DEDUPE_EVERY = 20_000_000
#: Most candidate pairs one key rule may make. A rule over more lowers its own block-size cap
#: until its pairs fit (its largest blocks are skipped, as `max_block_size` skips blocks, and
#: counted the same way). The rules of the current spec make at most 35 M at a million records
#: of realistic names (`benchmarks/link_scale.py`); on a month of few distinct names the
#: name-edit token set made 515 M, which exhausted 24 GB before any comparison.
MAX_RULE_PAIRS = 50_000_000
#: Pairs a rule makes at a time (its blocks in groups): the transient arrays of a group cost
#: about 60 bytes a pair (at 8 M a group, 0.5 GB over the records at 100k), so a large rule
#: never needs them all at once.
_PAIRS_PER_CHUNK = 2_000_000
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # accumulated pair codes before an intermediate np.unique


@dataclass
class BlockingStats:
    """What blocking did.

    Attributes:
        records: Records in the encoded frame.
        pair_count: Distinct candidate pairs returned.
        pairs_by_rule: Distinct pairs each rule produced on its own (before the union).
        skipped_blocks: Blocks larger than ``max_block_size`` that were skipped, per rule.
        skipped_block_records: Records in those skipped blocks, per rule.
        largest_block: Largest block that was kept, per rule.
    """

    records: int = 0
    pair_count: int = 0
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    skipped_block_records: dict[str, int] = field(default_factory=dict)
    largest_block: dict[str, int] = field(default_factory=dict)

    @property
    def total_skipped_blocks(self) -> int:
        """Skipped blocks summed over all rules."""
        return int(sum(self.skipped_blocks.values()))


# --------------------------------------------------------------------------------------------
# column helpers


def bloom_matrix(values: Iterable[bytes | None],
                 n_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pack a column of Bloom filters into a byte matrix.

    Args:
        values: ``bytes`` (equal lengths) or ``None`` per record.
        n_bytes: Filter length in bytes; inferred from the first non-null value when omitted.

    Returns:
        ``(matrix, present)``: a C-contiguous ``uint8`` array of shape ``(n, n_bytes_padded)``
        where rows of missing filters are zero and the width is padded to a multiple of 8 (so it
        can be viewed as ``uint64``), and a boolean mask of present filters.
    """
    values = list(values)
    present = np.fromiter((isinstance(v, (bytes, bytearray, memoryview)) for v in values),
                          dtype=bool, count=len(values))
    if n_bytes is None:
        first = next((v for v, p in zip(values, present, strict=True) if p), None)
        n_bytes = len(first) if first is not None else 8
    padded = -(-n_bytes // 8) * 8
    zero = bytes(padded)
    pad = bytes(padded - n_bytes)
    chunks = []
    for v, p in zip(values, present, strict=True):
        if p:
            if len(v) != n_bytes:
                raise ValueError(f"Bloom filters must have equal lengths ({len(v)} != {n_bytes})")
            chunks.append(bytes(v) + pad if pad else bytes(v))
        else:
            chunks.append(zero)
    buf = b"".join(chunks)
    matrix = np.frombuffer(buf, dtype=np.uint8).reshape(len(values), padded).copy()
    return matrix, present


def _factorize_tokens(column: pd.Series) -> np.ndarray:
    """Integer codes for a token column; missing (None/NaN/empty) -> -1."""
    values = column.to_numpy(dtype=object)
    codes, _ = pd.factorize(values, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    empty = np.fromiter((isinstance(v, str) and not v for v in values), dtype=bool,
                        count=len(values))
    codes[empty] = -1
    return codes


def _token_set_keys(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(keys, members)``: every token of every present token set and its record, so that
    records sharing any token share a block (a token set is a record's set of keys)."""
    from linkage.encode import token_set_values

    tokens, present = token_set_values(column)
    rows = np.flatnonzero(present)
    width = tokens.shape[1]
    keys = pd.factorize(tokens[rows].ravel())[0].astype(np.int64)
    members = np.repeat(rows, width)
    # a set's padding tokens are its own (equal only for equal fields): they add no pair a
    # real token does not, and each record appears once per distinct token
    return keys, members


def _factorize_key(encoded: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Integer codes for the joint value of ``columns`` (tokens, filter bytes or plain values);
    -1 where any of them is missing."""
    combined = None
    for column in columns:
        codes = _factorize_tokens(encoded[column])
        if combined is None:
            combined = codes
            continue
        valid = (combined >= 0) & (codes >= 0)
        joint = np.full(len(codes), -1, dtype=np.int64)
        if valid.any():
            pair = combined[valid] * (int(codes.max()) + 1) + codes[valid]
            joint[valid] = pd.factorize(pair)[0]
        combined = joint
    return combined


# --------------------------------------------------------------------------------------------
# grouping and pair generation


def _group_pairs(
    keys: np.ndarray, members: np.ndarray, max_block_size: int
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """All pairs of ``members`` that share a key, skipping oversize blocks.

    Args:
        keys: One integer key per member.
        members: Record positions (same length as ``keys``).
        max_block_size: Largest block whose pairs are generated.

    Returns:
        ``(left, right, skipped_blocks, skipped_records, largest_kept_block)`` where
        ``left``/``right`` are record positions (unordered within a pair).
    """
    empty = np.empty(0, dtype=np.int64)
    if len(keys) < 2:
        return empty, empty, 0, 0, 0
    order = np.argsort(keys)  # order within a block does not matter
    sorted_keys = keys[order]
    boundary = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate(([0], boundary))
    sizes = np.diff(np.concatenate((starts, [len(keys)])))
    oversize = sizes > max_block_size
    skipped_blocks = int(oversize.sum())
    skipped_records = int(sizes[oversize].sum())
    keep = (sizes >= 2) & ~oversize
    starts, sizes = starts[keep], sizes[keep]
    if len(sizes) == 0:
        return empty, empty, skipped_blocks, skipped_records, 0
    largest = int(sizes.max())
    # each element at offset o of a block of size s pairs with the s - 1 - o elements after it
    n_elem = int(sizes.sum())
    block_first = np.cumsum(sizes) - sizes
    offsets = np.arange(n_elem, dtype=np.int64) - np.repeat(block_first, sizes)
    elem_sorted_idx = np.repeat(starts, sizes) + offsets
    partners = np.repeat(sizes, sizes) - 1 - offsets
    n_pairs = int(partners.sum())
    left_idx = np.repeat(elem_sorted_idx, partners)
    first_partner = np.cumsum(partners) - partners
    step = np.arange(n_pairs, dtype=np.int64) - np.repeat(first_partner, partners)
    right_idx = left_idx + 1 + step
    sorted_members = members[order]
    return (sorted_members[left_idx], sorted_members[right_idx], skipped_blocks,
            skipped_records, largest)


def _rule_cap(sizes: np.ndarray, max_block_size: int) -> int:
    """The block-size cap for one key rule (``sizes``: records per key): ``max_block_size``,
    lowered until the rule's pairs fit `MAX_RULE_PAIRS` (see there)."""
    kept = sizes[(sizes >= 2) & (sizes <= max_block_size)]
    if int((kept * (kept - 1) // 2).sum()) <= MAX_RULE_PAIRS:
        return max_block_size
    # pairs made by the blocks of each size, summed over sizes up to each cap
    per_size = np.bincount(kept, minlength=max_block_size + 1).astype(np.int64)
    steps = np.arange(max_block_size + 1, dtype=np.int64)
    total = np.cumsum(per_size * (steps * (steps - 1) // 2))
    return int(np.flatnonzero(total <= MAX_RULE_PAIRS).max())


def _block_groups(codes: np.ndarray, members: np.ndarray, sizes: np.ndarray, cap: int
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(codes, members)`` in groups of whole blocks of about `_PAIRS_PER_CHUNK` pairs each
    (one group, the arrays themselves, when the rule makes fewer); ``sizes``: records per
    key."""
    pairs = np.where(sizes > cap, 0, sizes * (sizes - 1) // 2)
    if int(pairs.sum()) <= _PAIRS_PER_CHUNK:
        yield codes, members
        return
    group = np.cumsum(pairs) // _PAIRS_PER_CHUNK  # non-decreasing over the keys
    of_member = group[codes]
    order = np.argsort(of_member, kind="stable")
    bounds = np.searchsorted(of_member[order], np.arange(int(group[-1]) + 2))
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            take = order[start:stop]
            yield codes[take], members[take]


def _sorted_unique(codes: np.ndarray, *, owned: bool = False) -> np.ndarray:
    """``np.unique`` by sorting (faster than numpy 2's hash-based unique on large int64);
    ``owned``: the caller hands the array over, so it is sorted in place (no copy)."""
    if len(codes) == 0:
        return codes
    if owned:
        codes.sort()
    else:
        codes = np.sort(codes)
    keep = np.empty(len(codes), dtype=bool)
    keep[0] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def _encode_pairs(left: np.ndarray, right: np.ndarray, rank: np.ndarray,
                  partner: np.ndarray | None, link_type: str) -> np.ndarray:
    """Order each pair by record_key rank, drop self/excluded pairs, encode as int64."""
    rl, rr = rank[left], rank[right]
    lo, hi = np.minimum(rl, rr), np.maximum(rl, rr)
    keep = lo != hi
    if partner is not None and link_type != "link_and_dedupe":
        same = partner[left] == partner[right]
        keep &= ~same if link_type == "link_only" else same
    n = np.int64(len(rank))
    return lo[keep].astype(np.int64) * n + hi[keep].astype(np.int64)


class _PairAccumulator:
    """Collects int64 pair codes, deduplicating as it grows.

    Pending parts are merged into the sorted distinct codes only once they hold more codes
    than ``_DEDUPE_EVERY`` and than the merged array itself, so each code is re-sorted a
    logarithmic number of times (merging on every part past a fixed size was quadratic: at
    1M records one LSH rule re-sorted tens of millions of codes per band).
    """

    def __init__(self) -> None:
        self._merged = np.empty(0, dtype=np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, codes: np.ndarray) -> None:
        self._pending.append(codes)
        self._pending_size += len(codes)
        if self._pending_size > max(_DEDUPE_EVERY, len(self._merged)):
            self._merge()

    def _merge(self) -> None:
        joined = np.concatenate([self._merged, *self._pending])
        self._pending, self._pending_size = [], 0  # the parts go before the sort, not after
        self._merged = _sorted_unique(joined, owned=True)

    def result(self) -> np.ndarray:
        if self._pending:
            self._merge()
        return self._merged


# --------------------------------------------------------------------------------------------
# LSH


def lsh_band_positions(total_bits: int, bands: int, bits_per_band: int, seed: int) -> np.ndarray:
    """Bit positions sampled by each band: ``int64`` array of shape ``(bands, bits_per_band)``.

    Positions are drawn without replacement within a band from ``numpy.random.default_rng(seed)``
    so the same spec always samples the same bits.
    """
    if bits_per_band > min(64, total_bits):
        raise ValueError("bits_per_band must be <= 64 and <= the concatenated filter length")
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(total_bits, size=bits_per_band, replace=False))
                     for _ in range(bands)]).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _band_keys(matrix: np.ndarray, byte_idx: np.ndarray, bit_idx: np.ndarray,
               shifts: np.ndarray, keys: np.ndarray) -> None:  # pragma: no cover - jitted
    n = matrix.shape[0]
    m = byte_idx.shape[0]
    for i in range(n):
        k = keys[i]
        for j in range(m):
            bit = (np.uint64(matrix[i, byte_idx[j]]) >> np.uint64(bit_idx[j])) & np.uint64(1)
            k |= bit << np.uint64(shifts[j])
        keys[i] = k


def _lsh_pairs(
    matrices: Sequence[tuple[np.ndarray, np.ndarray, int]],
    lsh: LshSpec,
    max_block_size: int,
    emit,
    key_codes: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """Run all bands of one LSH rule; ``emit(left, right)`` receives each band's pairs.

    ``matrices`` holds ``(uint8 matrix, present mask, filter_bits)`` per Bloom column, in the
    order of concatenation. A record takes part in a band only when every column the band
    samples from is present, and (with ``key_codes``, from the rule's ``key_columns``) when
    its key code is not -1; the key code is mixed into every band key.
    """
    col_bits = np.array([bits for _, _, bits in matrices], dtype=np.int64)
    col_start = np.concatenate(([0], np.cumsum(col_bits)))
    positions = lsh_band_positions(int(col_bits.sum()), lsh.bands, lsh.bits_per_band, lsh.seed)
    n = matrices[0][0].shape[0]
    skipped = skipped_records = largest = 0
    for band in positions:
        keys = np.zeros(n, dtype=np.uint64)
        valid = np.ones(n, dtype=bool)
        col_of = np.searchsorted(col_start, band, side="right") - 1
        for c, (matrix, present, _) in enumerate(matrices):
            sel = np.flatnonzero(col_of == c)
            if len(sel) == 0:
                continue
            local = band[sel] - col_start[c]
            _band_keys(matrix, (local // 8).astype(np.int64), (local % 8).astype(np.int64),
                       sel.astype(np.int64), keys)
            valid &= present
        if key_codes is not None:
            valid &= key_codes >= 0
            # mix the exact key into the band key (a 64-bit collision only adds a candidate)
            keys = keys ^ (key_codes.astype(np.uint64) * _GOLDEN)
        members = np.flatnonzero(valid)
        left, right, s, sr, lg = _group_pairs(keys[members], members, max_block_size)
        skipped += s
        skipped_records += sr
        largest = max(largest, lg)
        emit(left, right)
    return skipped, skipped_records, largest


# --------------------------------------------------------------------------------------------
# public API


def _prepare(encoded: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(record_keys, rank, sorted_keys)``: rank of each row's record_key in sorted order."""
    keys = encoded["record_key"].astype(str).to_numpy(dtype=object)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) > 1 and (sorted_keys[1:] == sorted_keys[:-1]).any():
        raise ValueError("record_key must be unique")
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(keys), dtype=np.int64)
    return keys, rank, sorted_keys


@dataclass
class CandidatePositions:
    """Candidate pairs as row positions, the compact form the engine works on.

    Attributes:
        left: Row position (in the encoded frame) of each pair's record with the smaller
            ``record_key``; ``int32`` below 2**31 records.
        right: Row position of the other record.
        stats: What blocking did.
        rule_pairs: For each rule asked for, the indices (into ``left``/``right``) of the
            pairs that rule produced (the training rules of the Fellegi-Sunter fit).

    Pairs are ordered by ``(record_key_l, record_key_r)``, as ``linkage.adapters.candidate_pairs``.
    """

    left: np.ndarray
    right: np.ndarray
    stats: BlockingStats
    rule_pairs: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.left)


def candidate_positions(encoded: pd.DataFrame, spec: LinkSpec,
                        keep_rules: Sequence[str] = ()) -> CandidatePositions:
    """Candidate pairs as row positions plus blocking statistics (no record-key strings per
    pair: 8 bytes a pair instead of a ``MultiIndex``'s 16 plus its lookups); ``keep_rules``
    names rules whose own pairs are wanted too (``CandidatePositions.rule_pairs``)."""
    codes, order, stats, kept = _candidate_codes(encoded, spec, keep_rules)
    n = np.int64(len(order))
    dtype = np.int32 if len(order) < 2 ** 31 else np.int64
    order = order.astype(dtype)
    left = order[codes // n]
    right = order[codes % n]
    rule_pairs = {name: np.searchsorted(codes, rule) for name, rule in kept.items()}
    return CandidatePositions(left=left, right=right, stats=stats, rule_pairs=rule_pairs)


def rule_positions(encoded: pd.DataFrame, spec: LinkSpec, rules: str | Sequence[str],
                   max_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The distinct pairs of one or more key rules on their own, as row positions ``(left,
    right)`` (``record_key`` order), and how many they make; a uniform random ``max_pairs`` of
    them (seeded) when they make more. A rule is one of ``spec``'s blocking rules
    (``token:<column>``, ``exact:<name>``, ``lsh:<name>``) or a ``token:`` column the spec does
    not block on (a training rule: its pairs train m, they are not candidates). ``None`` when
    the encoded records hold none of the rules' token columns."""
    rules = [rules] if isinstance(rules, str) else list(rules)
    blocking = spec.blocking
    tokens, exact, lsh = [], [], []
    for rule in rules:
        kind, _, name = rule.partition(":")
        if kind == "token":
            tokens.append(name)
        elif kind == "exact" and any(r.name == name for r in blocking.exact):
            exact.extend(r for r in blocking.exact if r.name == name)
        elif kind == "lsh" and any(r.name == name for r in blocking.lsh):
            lsh.extend(r for r in blocking.lsh if r.name == name)
        else:
            raise ValueError(f"{rule!r} is not a rule of spec {spec.version}")
    tokens = [c for c in tokens if c in encoded.columns]
    if not (tokens or exact or lsh):
        return None
    only = BlockingSpec(token_columns=tuple(tokens), lsh=tuple(lsh), exact=tuple(exact),
                        max_block_size=blocking.max_block_size)
    found = candidate_positions(encoded, dataclasses.replace(spec, blocking=only))
    left, right = found.left, found.right
    if len(left) > max_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(len(left), max_pairs, replace=False))
        left, right = left[keep], right[keep]
    return left, right, len(found)


def candidate_index(encoded: pd.DataFrame, candidates: CandidatePositions, left: np.ndarray,
                    right: np.ndarray, chunk: int = 8_000_000) -> np.ndarray:
    """Per pair ``(left[i], right[i])`` of row positions (either orientation), its index in
    ``candidates`` (made from the same ``encoded``), or -1 where it is not a candidate. Walks
    the candidates a ``chunk`` at a time, so no array of all their codes is made."""
    _, rank, _ = _prepare(encoded)
    n = np.int64(len(rank))

    def codes(lft: np.ndarray, rgt: np.ndarray) -> np.ndarray:
        a, b = rank[lft], rank[rgt]
        return np.minimum(a, b) * n + np.maximum(a, b)

    wanted = codes(np.asarray(left), np.asarray(right))
    order = np.argsort(wanted, kind="stable")
    wanted = wanted[order]
    found = np.full(len(wanted), -1, dtype=np.int64)
    if len(wanted):
        for lo in range(0, len(candidates), chunk):
            got = codes(candidates.left[lo:lo + chunk], candidates.right[lo:lo + chunk])
            at = np.searchsorted(wanted, got)
            hit = np.flatnonzero(at < len(wanted))
            hit = hit[wanted[at[hit]] == got[hit]]
            found[at[hit]] = lo + hit
    out = np.empty(len(wanted), dtype=np.int64)
    out[order] = found
    return out


def _candidate_codes(encoded: pd.DataFrame, spec: LinkSpec, keep_rules: Sequence[str] = (),
                     ) -> tuple[np.ndarray, np.ndarray, BlockingStats, dict[str, np.ndarray]]:
    """``(codes, order, stats, kept)``: sorted distinct ``rank_l * n + rank_r`` pair codes over
    the records' ``record_key`` ranks (``rank_l < rank_r``), ``order[rank]`` = row position, and
    the codes of each rule named in ``keep_rules`` (e.g. ``token:tok_t14_dob``)."""
    blocking = spec.blocking
    _, rank, _sorted_keys = _prepare(encoded)
    n = len(rank)
    stats = BlockingStats(records=n)
    partner = None
    if spec.link_type != "link_and_dedupe":
        if "partner_id" not in encoded.columns:
            raise KeyError(f"link_type={spec.link_type!r} needs a partner_id column")
        partner = pd.factorize(encoded["partner_id"].to_numpy(dtype=object))[0]
    total = _PairAccumulator()
    kept: dict[str, np.ndarray] = {}

    def key_rule(name: str, codes: np.ndarray, members: np.ndarray | None = None) -> None:
        if members is None:
            members = np.flatnonzero(codes >= 0)
            codes = codes[members]
        sizes = np.bincount(codes).astype(np.int64) if len(codes) else np.zeros(0, np.int64)
        cap = _rule_cap(sizes, blocking.max_block_size)
        parts, s, sr, lg = [], 0, 0, 0
        for chunk_codes, chunk_members in _block_groups(codes, members, sizes, cap):
            left, right, cs, csr, clg = _group_pairs(chunk_codes, chunk_members, cap)
            encoded_pairs = _encode_pairs(left, right, rank, partner, spec.link_type)
            del left, right
            parts.append(_sorted_unique(encoded_pairs, owned=True))
            del encoded_pairs
            s, sr, lg = s + cs, sr + csr, max(lg, clg)
        if len(parts) == 1:
            rule_codes = parts.pop()
        else:
            joined = np.concatenate(parts)
            parts.clear()
            rule_codes = _sorted_unique(joined, owned=True)
            del joined
        stats.pairs_by_rule[name] = len(rule_codes)
        stats.skipped_blocks[name] = s
        stats.skipped_block_records[name] = sr
        stats.largest_block[name] = lg
        if name in keep_rules:
            kept[name] = rule_codes
        total.add(rule_codes)

    for column in blocking.token_columns:
        if column not in encoded.columns:
            continue
        if column.startswith("ts_"):
            key_rule(f"token:{column}", *_token_set_keys(encoded[column]))
        else:
            key_rule(f"token:{column}", _factorize_tokens(encoded[column]))
    for exact in blocking.exact:
        if all(c in encoded.columns for c in exact.columns):
            key_rule(f"exact:{exact.name}", _factorize_key(encoded, exact.columns))

    for lsh in blocking.lsh:
        columns = [c for c in lsh.columns if c in encoded.columns]
        if not columns:
            continue
        matrices = []
        for c in columns:
            matrix, present = bloom_matrix(encoded[c])
            bits = _filter_bits(encoded[c], matrix)
            matrices.append((matrix, present, bits))
        rule = _PairAccumulator()

        def emit(left, right, rule=rule):
            rule.add(_encode_pairs(left, right, rank, partner, spec.link_type))

        key_codes = None
        if lsh.key_columns:
            if not all(c in encoded.columns for c in lsh.key_columns):
                continue
            key_codes = _factorize_key(encoded, lsh.key_columns)
        s, sr, lg = _lsh_pairs(matrices, lsh, blocking.max_block_size, emit, key_codes)
        rule_codes = rule.result()
        name = f"lsh:{lsh.name}"
        if name in keep_rules:
            kept[name] = rule_codes
        stats.pairs_by_rule[name] = len(rule_codes)
        stats.skipped_blocks[name] = s
        stats.skipped_block_records[name] = sr
        stats.largest_block[name] = lg
        total.add(rule_codes)

    codes = total.result()
    stats.pair_count = len(codes)
    order = np.empty(n, dtype=np.int64)
    order[rank] = np.arange(n, dtype=np.int64)
    return codes, order, stats, kept


def _filter_bits(column: pd.Series, matrix: np.ndarray) -> int:
    first = next((v for v in column if isinstance(v, (bytes, bytearray, memoryview))), None)
    return 8 * (len(first) if first is not None else matrix.shape[1])
