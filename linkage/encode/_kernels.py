"""Numba kernels for Bloom filters: q-grams, building, per-salt transforms, hardening, Dice.

Filters are packed bit rows (``uint8``, most significant bit first, as ``numpy.packbits``).
Nothing here is keyed: callers pass position tables computed with HMAC and random words read
from an AES-CTR keystream (``linkage.encode.prf``); the kernels only do the arithmetic of
placing bits, drawing exactly uniform integers from those words and permuting.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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


# --------------------------------------------------------------------------- uniform integers


@njit(cache=True, inline="always")
def _uniform_below(words: np.ndarray, at: int, n: int) -> tuple[int, int]:
    """An exactly uniform integer in ``[0, n)`` (``n <= 2**16``) from the 16-bit keystream
    words ``words[at:]``.

    Lemire (2019), "Fast random integer generation in an interval", with rejection: ``x * n``
    as a 32-bit product, its high half is the result unless its low half falls in the biased
    zone (probability below ``n / 2**16``), in which case the next word is drawn. Returns
    ``(value, next_at)``.
    """
    nn = np.uint32(n)
    m = np.uint32(words[at]) * nn
    at += 1
    low = m & np.uint32(0xFFFF)
    if low < nn:
        threshold = (np.uint32(0x10000) - nn) % nn
        while low < threshold:
            if at >= words.shape[0]:
                raise ValueError("keystream exhausted")
            m = np.uint32(words[at]) * nn
            at += 1
            low = m & np.uint32(0xFFFF)
    return np.int64(m >> np.uint32(16)), at


def spare_words(n: int) -> int:
    """Spare 16-bit words for Lemire's rejections in a shuffle of ``n`` (at most 4096): about
    ``n**2 / 2**17`` rejections are expected (8 for 1,024 bits, 128 for 4,096), and
    ``n // 16 + 64`` is over 20 standard deviations above that. Running out raises rather than
    drawing a biased value."""
    return n // 16 + 64


def transform_words(k: int, n_bits: int) -> int:
    """16-bit keystream words one salt transform (k rotations + a permutation) reads at most."""
    return k + n_bits + spare_words(n_bits)


@njit(cache=True)
def salt_transform(words: np.ndarray, k: int, n_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-salt rotations and bit permutation drawn from one salt's keystream words.

    Draw order (fixed; part of the encoding): ``k`` rotations ``uniform_below(n_bits)``, then a
    Fisher-Yates shuffle of ``0..n_bits-1`` swapping ``i`` with ``uniform_below(i + 1)`` for
    ``i = n_bits-1 .. 1``.

    Returns:
        ``(rotations (k,), permutation (n_bits,))``; bit ``p`` of hash function ``h`` goes to
        ``permutation[(p + rotations[h]) % n_bits]``.
    """
    at = 0
    rotations = np.empty(k, dtype=np.int64)
    for h in range(k):
        rotations[h], at = _uniform_below(words, at, n_bits)
    permutation = np.arange(n_bits).astype(np.int64)
    for i in range(n_bits - 1, 0, -1):
        j, at = _uniform_below(words, at, i + 1)
        tmp = permutation[i]
        permutation[i] = permutation[j]
        permutation[j] = tmp
    return rotations, permutation


@njit(cache=True)
def permutation_from_words(words: np.ndarray, n: int) -> np.ndarray:
    """A uniform permutation of ``0..n-1`` (Fisher-Yates) from keystream words."""
    at = 0
    permutation = np.arange(n).astype(np.int64)
    for i in range(n - 1, 0, -1):
        j, at = _uniform_below(words, at, i + 1)
        tmp = permutation[i]
        permutation[i] = permutation[j]
        permutation[j] = tmp
    return permutation


@njit(cache=True)
def build_salted_filters(
    unit_offsets: np.ndarray,
    rows: np.ndarray,
    positions: np.ndarray,
    unit_salt: np.ndarray,
    salt_words: np.ndarray,
    n_bytes: int,
) -> np.ndarray:
    """Like ``build_filters``, with each unit's salt transform applied to every position.

    Args:
        unit_offsets, rows, positions: as ``build_filters`` (unsalted keyed positions).
        unit_salt: salt code of each unit (row of ``salt_words``). Units sorted by salt are
            fastest (each salt's transform is drawn once per run of equal salts); any order
            gives the same filters.
        salt_words: ``uint16[n_salts, transform_words(k, n_bits)]`` keystream words per salt.
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
        rotations, permutation = salt_transform(salt_words[salt], k, n_bits)
        for u in range(start, end):
            for j in range(unit_offsets[u], unit_offsets[u + 1]):
                row = rows[j]
                for h in range(k):
                    p = permutation[(positions[row, h] + rotations[h]) & mask]
                    out[u, p >> 3] |= np.uint8(0x80 >> (p & 7))
        start = end
    return out


# --------------------------------------------------------------------------- hardening


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
def blip(filters: np.ndarray, words: np.ndarray, threshold: int) -> np.ndarray:
    """Flip bit ``i`` of unit ``u`` where the 16-bit ``words[u, i] < threshold``.

    ``words`` are each unit's keystream words (one per bit) and ``threshold`` is
    ``round(probability * 65536)``; the same unit (key, value, salt) always flips the same bits.
    """
    n_units, n_bytes = filters.shape
    out = filters.copy()
    for u in range(n_units):
        for i in range(n_bytes * 8):
            if words[u, i] < threshold:
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


# --------------------------------------------------------------------------- messages


@njit(cache=True)
def join_rows(codes: np.ndarray, buffer: np.ndarray, offsets: np.ndarray,
              separator: int) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 messages of rows of value codes: the fields' bytes joined by ``separator``.

    Args:
        codes: ``int64[n_fields, n_rows]`` codes (all >= 0) into each field's distinct values.
        buffer: every field's distinct values' bytes, concatenated.
        offsets: ``int64[n_fields, max_values + 1]``: field ``f``'s value ``c`` is
            ``buffer[offsets[f, c]:offsets[f, c + 1]]``.
        separator: the byte between fields.

    Returns:
        ``(messages, row_offsets)``: all messages concatenated, and CSR offsets.
    """
    n_fields, n_rows = codes.shape
    row_offsets = np.zeros(n_rows + 1, dtype=np.int64)
    for r in range(n_rows):
        total = n_fields - 1
        for f in range(n_fields):
            c = codes[f, r]
            total += offsets[f, c + 1] - offsets[f, c]
        row_offsets[r + 1] = row_offsets[r] + total
    out = np.empty(row_offsets[n_rows], dtype=np.uint8)
    for r in range(n_rows):
        at = row_offsets[r]
        for f in range(n_fields):
            if f:
                out[at] = separator
                at += 1
            c = codes[f, r]
            for i in range(offsets[f, c], offsets[f, c + 1]):
                out[at] = buffer[i]
                at += 1
    return out, row_offsets
