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


@njit(cache=True)
def _finish(state: np.ndarray, buf: np.ndarray, used: int, total: int, w: np.ndarray) -> None:
    """Pad the ``used`` trailing bytes in ``buf`` (message of ``total`` bytes) and compress."""
    buf[used] = 0x80
    for i in range(used + 1, 128):
        buf[i] = 0
    end = 64 if used < 56 else 128
    bits = np.uint64(total) * np.uint64(8)
    for i in range(8):
        buf[end - 1 - i] = np.uint8((bits >> np.uint64(8 * i)) & np.uint64(0xFF))
    _compress(state, buf[:64], w)
    if end == 128:
        _compress(state, buf[64:128], w)


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

    Args:
        inner, outer: states from ``hmac_pads``.
        prefix_buf, prefix_offsets: the constant part before each field (CSR, n_fields).
        value_buf: bytes of all values.
        starts, lengths: ``(n_fields, n_rows)`` slice of each row's value in ``value_buf``.

    Returns:
        ``(n_rows, 32)`` digests.
    """
    n_fields, n_rows = starts.shape
    out = np.zeros((n_rows, 32), dtype=np.uint8)
    state = np.zeros(8, dtype=np.uint64)
    buf = np.zeros(128, dtype=np.uint8)
    w = np.zeros(64, dtype=np.uint64)
    for r in range(n_rows):
        state[:] = inner
        used = 0
        total = 64
        for f in range(n_fields):
            for part in range(2):
                if part == 0:
                    src_start = prefix_offsets[f]
                    src_end = prefix_offsets[f + 1]
                    src = prefix_buf
                else:
                    src_start = starts[f, r]
                    src_end = src_start + lengths[f, r]
                    src = value_buf
                for i in range(src_start, src_end):
                    buf[used] = src[i]
                    used += 1
                    total += 1
                    if used == 64:
                        _compress(state, buf[:64], w)
                        used = 0
        _finish(state, buf, used, total, w)
        for i in range(8):
            for j in range(4):
                buf[4 * i + j] = np.uint8((state[i] >> np.uint64(24 - 8 * j)) & np.uint64(0xFF))
        state[:] = outer
        _finish(state, buf, 32, 96, w)
        for i in range(8):
            for j in range(4):
                out[r, 4 * i + j] = np.uint8((state[i] >> np.uint64(24 - 8 * j)) & np.uint64(0xFF))
    return out
