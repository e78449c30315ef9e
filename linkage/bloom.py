"""Numba kernels for keyed Bloom filters: build, harden, compare.

Filters are packed bit rows (``uint8``, most significant bit first, as ``numpy.packbits``).
Nothing here knows about keys: callers pass position tables and per-unit seeds that they
derived with HMAC.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
def build_filters(
    unit_offsets: np.ndarray, rows: np.ndarray, positions: np.ndarray, n_bytes: int
) -> np.ndarray:
    """Set the k keyed positions of every element of every unit.

    Args:
        unit_offsets: CSR offsets (len n_units + 1) into ``rows``; a unit is a distinct
            (value, salt) pair.
        rows: for each element of each unit, its row in ``positions``.
        positions: ``(n_rows, k)`` bit positions.
        n_bytes: filter length in bytes.

    Returns:
        ``(n_units, n_bytes)`` packed filters.
    """
    n_units = unit_offsets.shape[0] - 1
    k = positions.shape[1]
    out = np.zeros((n_units, n_bytes), dtype=np.uint8)
    for u in range(n_units):
        for j in range(unit_offsets[u], unit_offsets[u + 1]):
            row = rows[j]
            for h in range(k):
                p = positions[row, h]
                out[u, p >> 3] |= np.uint8(0x80 >> (p & 7))
    return out


@njit(cache=True)
def qgram_codes(
    buffer: np.ndarray, offsets: np.ndarray, q: int, pad: int
) -> tuple[np.ndarray, np.ndarray]:
    """Byte q-grams of each value padded with ``q-1`` ``pad`` bytes on both sides.

    Args:
        buffer, offsets: UTF-8 bytes of the values (CSR).
        q: q-gram length (at most 7).
        pad: the padding byte.

    Returns:
        ``(gram_offsets, codes)``: CSR of each value's q-grams, each as the big-endian integer
        of its ``q`` bytes, in order of occurrence.
    """
    n = offsets.shape[0] - 1
    gram_offsets = np.zeros(n + 1, dtype=np.int64)
    for v in range(n):
        gram_offsets[v + 1] = gram_offsets[v] + (offsets[v + 1] - offsets[v]) + q - 1
    codes = np.empty(gram_offsets[n], dtype=np.int64)
    mask = (np.int64(1) << np.int64(8 * q)) - 1
    for v in range(n):
        start = offsets[v]
        length = offsets[v + 1] - start
        code = np.int64(0)
        for _ in range(q - 1):
            code = (code << np.int64(8)) | np.int64(pad)
        at = gram_offsets[v]
        for i in range(length + q - 1):
            byte = np.int64(buffer[start + i]) if i < length else np.int64(pad)
            code = ((code << np.int64(8)) | byte) & mask
            codes[at] = code
            at += 1
    return gram_offsets, codes


@njit(cache=True)
def gather_elements(
    unit_codes: np.ndarray, offsets: np.ndarray, element_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the elements of each unit's values (one value per source, -1 = missing).

    Args:
        unit_codes: ``(n_units, n_sources)`` codes into the distinct values.
        offsets: CSR offsets (len n_values + 1) of each distinct value's elements.
        element_ids: element ids of all distinct values.

    Returns:
        ``(unit_offsets, rows)``: CSR of each unit's element ids (duplicates kept: setting a
        bit twice is harmless).
    """
    n_units, n_sources = unit_codes.shape
    unit_offsets = np.zeros(n_units + 1, dtype=np.int64)
    for u in range(n_units):
        total = 0
        for j in range(n_sources):
            c = unit_codes[u, j]
            if c >= 0:
                total += offsets[c + 1] - offsets[c]
        unit_offsets[u + 1] = unit_offsets[u] + total
    rows = np.empty(unit_offsets[n_units], dtype=np.int64)
    for u in range(n_units):
        at = unit_offsets[u]
        for j in range(n_sources):
            c = unit_codes[u, j]
            if c >= 0:
                for i in range(offsets[c], offsets[c + 1]):
                    rows[at] = element_ids[i]
                    at += 1
    return unit_offsets, rows


# --------------------------------------------------------------------------- per-salt transform
# A salted filter is the unsalted keyed filter with each of its k hash functions rotated by a
# per-salt offset and the result put through a per-salt bit permutation. Both come from a
# xoshiro256** stream whose 256-bit state is ONE keyed HMAC of the salt value (computed by the
# caller), so the salt costs one HMAC per distinct salt value, not one per (element, salt).


@njit(cache=True, inline="always")
def _rotl64(x: np.uint64, n: int) -> np.uint64:
    return (x << np.uint64(n)) | (x >> np.uint64(64 - n))


@njit(cache=True)
def _xoshiro_next(s: np.ndarray) -> np.uint64:
    """xoshiro256** (Blackman and Vigna 2018): next output; advances the 4-word state ``s``."""
    result = _rotl64(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl64(s[3], 45)
    return result


@njit(cache=True, inline="always")
def _bounded(x: np.uint64, n: int) -> int:
    return np.int64(((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@njit(cache=True)
def salt_transform(state: np.ndarray, k: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-salt rotations and bit permutation drawn from a seeded xoshiro256** stream.

    Draw order (fixed; part of the encoding), with ``bounded(n) = ((next() >> 32) * n) >> 32``
    (multiply-shift; bias below ``n / 2**32``): ``k`` rotations ``bounded(n_bits)``, then a
    Fisher-Yates shuffle of ``0..n_bits-1`` swapping ``i`` with ``bounded(i + 1)`` for
    ``i = n_bits-1 .. 1``.

    Args:
        state: 4 uint64 words (copied, not modified).
        k: hash functions per element.
        n_bits: filter length (a power of two).

    Returns:
        ``(rotations (k,), permutation (n_bits,))``; bit ``p`` of hash function ``h`` goes to
        ``permutation[(p + rotations[h]) % n_bits]``.
    """
    s = state.copy()
    rotations = np.empty(k, dtype=np.int64)
    for h in range(k):
        rotations[h] = _bounded(_xoshiro_next(s), n_bits)
    permutation = np.arange(n_bits).astype(np.int64)
    for i in range(n_bits - 1, 0, -1):
        j = _bounded(_xoshiro_next(s), i + 1)
        tmp = permutation[i]
        permutation[i] = permutation[j]
        permutation[j] = tmp
    return rotations, permutation


@njit(cache=True)
def build_salted_filters(
    unit_offsets: np.ndarray,
    rows: np.ndarray,
    positions: np.ndarray,
    unit_salt: np.ndarray,
    salt_states: np.ndarray,
    n_bytes: int,
) -> np.ndarray:
    """Like ``build_filters``, with each unit's salt transform applied to every position.

    Args:
        unit_offsets, rows, positions: as ``build_filters`` (unsalted keyed positions).
        unit_salt: salt code of each unit (row of ``salt_states``). Units sorted by salt are
            fastest (each salt's transform is drawn once per run of equal salts); any order
            gives the same filters.
        salt_states: ``(n_salts, 4)`` uint64 xoshiro256** states, one keyed HMAC per salt.
        n_bytes: filter length in bytes.

    Returns:
        ``(n_units, n_bytes)`` packed filters.
    """
    n_units = unit_offsets.shape[0] - 1
    k = positions.shape[1]
    n_bits = n_bytes * 8
    mask = n_bits - 1  # n_bits is a power of two
    out = np.zeros((n_units, n_bytes), dtype=np.uint8)
    start = 0
    while start < n_units:
        salt = unit_salt[start]
        end = start
        while end < n_units and unit_salt[end] == salt:
            end += 1
        rotations, permutation = salt_transform(salt_states[salt], k, n_bits)
        for u in range(start, end):
            for j in range(unit_offsets[u], unit_offsets[u + 1]):
                row = rows[j]
                for h in range(k):
                    p = permutation[(positions[row, h] + rotations[h]) & mask]
                    out[u, p >> 3] |= np.uint8(0x80 >> (p & 7))
        start = end
    return out


@njit(cache=True)
def xor_fold(filters: np.ndarray) -> np.ndarray:
    """XOR the first half of each filter with its second half (halves the length)."""
    half = filters.shape[1] // 2
    return filters[:, :half] ^ filters[:, half:]


@njit(cache=True)
def balance(filters: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """Append the complement, then apply a keyed bit permutation (doubles the length).

    ``permutation[i]`` is the source bit of output bit ``i`` in the 2n-bit concatenation.
    """
    n_units, n_bytes = filters.shape
    n_bits = n_bytes * 8
    out = np.zeros((n_units, 2 * n_bytes), dtype=np.uint8)
    for u in range(n_units):
        for i in range(2 * n_bits):
            src = permutation[i]
            if src < n_bits:
                bit = (filters[u, src >> 3] >> (7 - (src & 7))) & 1
            else:
                src -= n_bits
                bit = 1 - ((filters[u, src >> 3] >> (7 - (src & 7))) & 1)
            if bit:
                out[u, i >> 3] |= np.uint8(0x80 >> (i & 7))
    return out


@njit(cache=True)
def _splitmix64(x: np.uint64) -> np.uint64:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def blip(filters: np.ndarray, seeds: np.ndarray, probability: float) -> np.ndarray:
    """Flip each bit with ``probability``, driven by a per-unit keyed seed.

    The same seed (same key, value and salt) always flips the same bits, so equal values
    still encode equally.
    """
    n_units, n_bytes = filters.shape
    out = filters.copy()
    threshold = np.uint64(probability * 9007199254740992.0)  # 2**53
    for u in range(n_units):
        seed = seeds[u]
        for i in range(n_bytes * 8):
            x = _splitmix64(seed ^ (np.uint64(i) * _GOLDEN))
            if (x >> np.uint64(11)) < threshold:
                out[u, i >> 3] ^= np.uint8(0x80 >> (i & 7))
    return out


def dice(a: bytes | None, b: bytes | None) -> float:
    """Dice coefficient of two packed filters (NaN when either is missing)."""
    if a is None or b is None:
        return float("nan")
    x = np.unpackbits(np.frombuffer(a, dtype=np.uint8))
    y = np.unpackbits(np.frombuffer(b, dtype=np.uint8))
    total = int(x.sum()) + int(y.sum())
    if total == 0:
        return float("nan")
    return 2.0 * int((x & y).sum()) / total


# --------------------------------------------------------------------------- keyed tokens
# HMAC-SHA256 (RFC 2104 / FIPS 180-4) over many short messages at once. Tokens are hashed per
# record in compiled code because a Python loop over hmac costs ~1 µs per token.

_K256 = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.uint64,
)
SHA256_IV = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB,
     0x5BE0CD19],
    dtype=np.uint64,
)
_MASK = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _rotr(x: np.uint64, n: int) -> np.uint64:
    return ((x >> np.uint64(n)) | (x << np.uint64(32 - n))) & _MASK


@njit(cache=True)
def _compress(state: np.ndarray, block: np.ndarray, w: np.ndarray) -> None:
    """One SHA-256 compression of a 64-byte ``block`` into ``state`` (8 words, in place)."""
    for t in range(16):
        w[t] = (
            (np.uint64(block[4 * t]) << np.uint64(24))
            | (np.uint64(block[4 * t + 1]) << np.uint64(16))
            | (np.uint64(block[4 * t + 2]) << np.uint64(8))
            | np.uint64(block[4 * t + 3])
        )
    for t in range(16, 64):
        x = w[t - 15]
        y = w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> np.uint64(3))
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> np.uint64(10))
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) & _MASK
    a, b, c, d, e, f, g, h = (state[0], state[1], state[2], state[3], state[4], state[5],
                              state[6], state[7])
    for t in range(64):
        s1 = _rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)
        ch = (e & f) ^ ((~e & _MASK) & g)
        t1 = (h + s1 + ch + _K256[t] + w[t]) & _MASK
        s0 = _rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)
        maj = (a & b) ^ (a & c) ^ (b & c)
        t2 = (s0 + maj) & _MASK
        h = g
        g = f
        f = e
        e = (d + t1) & _MASK
        d = c
        c = b
        b = a
        a = (t1 + t2) & _MASK
    state[0] = (state[0] + a) & _MASK
    state[1] = (state[1] + b) & _MASK
    state[2] = (state[2] + c) & _MASK
    state[3] = (state[3] + d) & _MASK
    state[4] = (state[4] + e) & _MASK
    state[5] = (state[5] + f) & _MASK
    state[6] = (state[6] + g) & _MASK
    state[7] = (state[7] + h) & _MASK


def hmac_pads(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """SHA-256 states after the HMAC inner and outer key blocks (computed once per key)."""
    import hashlib

    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    block = key.ljust(64, b"\0")
    w = np.zeros(64, dtype=np.uint64)
    states = []
    for pad in (0x36, 0x5C):
        state = SHA256_IV.copy()
        _compress(state, np.frombuffer(bytes(b ^ pad for b in block), dtype=np.uint8), w)
        states.append(state)
    return states[0], states[1]


_K32 = _K256.astype(np.uint32)
_LANES = 64


_u32 = np.uint32


@njit(cache=True, inline="always")
def _r32(x: np.uint32, n: int) -> np.uint32:
    # numba widens uint32 arithmetic to 64 bits; truncating every step lets LLVM keep 32-bit
    # lanes (8 per AVX2 register) and keeps each rotation exact
    return _u32((x >> _u32(n)) | (x << _u32(32 - n)))


@njit(cache=True)
def _compress_lanes(state: np.ndarray, w: np.ndarray, n: int) -> None:
    """SHA-256 compression of lanes ``0..n-1`` in place.

    ``state`` is ``(8, _LANES)`` and ``w`` ``(64, _LANES)`` uint32; rows 0..15 of ``w`` hold each
    lane's block as big-endian words. Each step loops over lanes, which LLVM vectorizes.
    """
    for t in range(16, 64):
        for lane in range(n):
            x = w[t - 15, lane]
            y = w[t - 2, lane]
            s0 = _u32(_r32(x, 7) ^ _r32(x, 18) ^ _u32(x >> _u32(3)))
            s1 = _u32(_r32(y, 17) ^ _r32(y, 19) ^ _u32(y >> _u32(10)))
            w[t, lane] = _u32(_u32(w[t - 16, lane] + s0) + _u32(w[t - 7, lane] + s1))
    a, b, c, d = state[0].copy(), state[1].copy(), state[2].copy(), state[3].copy()
    e, f, g, h = state[4].copy(), state[5].copy(), state[6].copy(), state[7].copy()
    for t in range(64):
        kt = _K32[t]
        for lane in range(n):
            aa, bb, cc = a[lane], b[lane], c[lane]
            ee, ff, gg = e[lane], f[lane], g[lane]
            s1 = _u32(_r32(ee, 6) ^ _r32(ee, 11) ^ _r32(ee, 25))
            ch = _u32(gg ^ _u32(ee & _u32(ff ^ gg)))
            t1 = _u32(_u32(h[lane] + s1) + _u32(_u32(ch + kt) + w[t, lane]))
            s0 = _u32(_r32(aa, 2) ^ _r32(aa, 13) ^ _r32(aa, 22))
            maj = _u32(_u32(aa & bb) | _u32(cc & _u32(aa | bb)))
            h[lane] = _u32(d[lane] + t1)  # new e, kept in h's array
            d[lane] = _u32(t1 + _u32(s0 + maj))  # new a, kept in d's array
        a, b, c, d, e, f, g, h = d, a, b, c, h, e, f, g
    for lane in range(n):
        state[0, lane] = _u32(state[0, lane] + a[lane])
        state[1, lane] = _u32(state[1, lane] + b[lane])
        state[2, lane] = _u32(state[2, lane] + c[lane])
        state[3, lane] = _u32(state[3, lane] + d[lane])
        state[4, lane] = _u32(state[4, lane] + e[lane])
        state[5, lane] = _u32(state[5, lane] + f[lane])
        state[6, lane] = _u32(state[6, lane] + g[lane])
        state[7, lane] = _u32(state[7, lane] + h[lane])


@njit(cache=True)
def hmac_sha256_rows(
    inner: np.ndarray,
    outer: np.ndarray,
    prefix_buf: np.ndarray,
    prefix_offsets: np.ndarray,
    value_buf: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
    """HMAC-SHA256 of each row's message ``prefix_0 value_0 prefix_1 value_1 ...``.

    Rows are sorted by block count and hashed ``__LANES`` at a time (multi-buffer SHA-256), so
    independent messages fill the CPU's pipelines and SIMD units (several times the throughput
    of hashing one message after another).

    Args:
        inner, outer: states from ``hmac_pads``.
        prefix_buf, prefix_offsets: the constant part before each field (CSR, n_fields).
        value_buf: bytes of all values.
        starts, lengths: ``(n_fields, n_rows)`` slice of each row's value in ``value_buf``.

    Returns:
        ``(n_rows, 32)`` digests.
    """
    n_fields, n_rows = starts.shape
    total = np.zeros(n_rows, dtype=np.int64)
    for r in range(n_rows):
        s = 0
        for fi in range(n_fields):
            s += prefix_offsets[fi + 1] - prefix_offsets[fi] + lengths[fi, r]
        total[r] = s
    nblocks = (total + 9 + 63) // 64
    max_blocks = nblocks.max() if n_rows else 0
    # rows grouped by block count (counting sort, stable)
    first = np.zeros(max_blocks + 2, dtype=np.int64)
    for r in range(n_rows):
        first[nblocks[r] + 1] += 1
    for b in range(1, max_blocks + 2):
        first[b] += first[b - 1]
    order = np.empty(n_rows, dtype=np.int64)
    for r in range(n_rows):
        order[first[nblocks[r]]] = r
        first[nblocks[r]] += 1
    out = np.zeros((n_rows, 32), dtype=np.uint8)
    state = np.zeros((8, _LANES), dtype=np.uint32)
    w = np.zeros((64, _LANES), dtype=np.uint32)
    words = np.zeros((max_blocks * 16, _LANES), dtype=np.uint32)
    msg = np.zeros(max_blocks * 64, dtype=np.uint8)
    start = 0
    while start < n_rows:
        nb = nblocks[order[start]]
        end = start
        while end < n_rows and end - start < _LANES and nblocks[order[end]] == nb:
            end += 1
        n = end - start
        for lane in range(n):
            r = order[start + lane]
            msg[: nb * 64] = 0
            used = 0
            for fi in range(n_fields):
                for i in range(prefix_offsets[fi], prefix_offsets[fi + 1]):
                    msg[used] = prefix_buf[i]
                    used += 1
                s0 = starts[fi, r]
                for i in range(s0, s0 + lengths[fi, r]):
                    msg[used] = value_buf[i]
                    used += 1
            msg[used] = 0x80
            bits = np.uint64(used + 64) * np.uint64(8)  # + the 64-byte inner key block
            for i in range(8):
                byte = (bits >> np.uint64(8 * i)) & np.uint64(0xFF)
                msg[nb * 64 - 1 - i] = np.uint8(byte)
            for t in range(nb * 16):
                words[t, lane] = (
                    (np.uint32(msg[4 * t]) << np.uint32(24))
                    | (np.uint32(msg[4 * t + 1]) << np.uint32(16))
                    | (np.uint32(msg[4 * t + 2]) << np.uint32(8))
                    | np.uint32(msg[4 * t + 3])
                )
            for j in range(8):
                state[j, lane] = np.uint32(inner[j])
        for blk in range(nb):
            for t in range(16):
                for lane in range(n):
                    w[t, lane] = words[blk * 16 + t, lane]
            _compress_lanes(state, w, n)
        # outer hash: one block = inner digest (8 words), 0x80, zeros, length 96 bytes
        for lane in range(n):
            for j in range(8):
                w[j, lane] = state[j, lane]
                state[j, lane] = np.uint32(outer[j])
            w[8, lane] = np.uint32(0x80000000)
            for j in range(9, 15):
                w[j, lane] = 0
            w[15, lane] = np.uint32(96 * 8)
        _compress_lanes(state, w, n)
        for lane in range(n):
            r = order[start + lane]
            for j in range(8):
                x = state[j, lane]
                out[r, 4 * j] = np.uint8(x >> np.uint32(24))
                out[r, 4 * j + 1] = np.uint8((x >> np.uint32(16)) & np.uint32(0xFF))
                out[r, 4 * j + 2] = np.uint8((x >> np.uint32(8)) & np.uint32(0xFF))
                out[r, 4 * j + 3] = np.uint8(x & np.uint32(0xFF))
        start = end
    return out
