"""Keyed Bloom filters (``bf_<field>``) with per-salt keyed transforms.

Unsalted positions: element ``e`` (a padded q-gram, or a date part) is set at ``k`` positions,
the first ``k`` 16-bit big-endian words of ``HMAC-SHA256(subkey("bloom/<field>"),
len(e) || e || block)`` (``block`` = one byte 0, 1, ... per 16 words), mod ``filter_bits``:
random hashing, computed once per distinct element.

Salted filters: for each distinct salt value ``s`` (the salt fields' values joined by ``\\x1f``;
a missing salt is the empty salt), the nonce ``HMAC-SHA256(subkey("bloom/<field>/salt"), s)[:12]``
and the key ``subkey("bloom/<field>/salt/stream")`` give an AES-256-CTR keystream
(``prf.ctr_keystreams``) from which ``k`` rotations and a Fisher-Yates permutation of the
filter's bits are drawn (``_kernels.salt_transform``); hash function ``h`` of an element at
unsalted position ``p`` sets bit ``perm[(p + r_h) mod bits]``. Hardening (``balance``'s
permutation, BLIP's flips) draws from AES-CTR streams keyed the same way (purposes
``bloom/<field>/balance`` and ``bloom/<field>/blip``, the BLIP nonce per distinct (value,
salt) unit). See docs/encoding.md for why this is a PRF construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from linkage.encode import _kernels, prf
from linkage.encode._columns import UNIT_SEPARATOR, Columns, Factorized, factorize_rows
from linkage.encode.schema import BloomField, Hardening

__all__ = ["PAD", "encode_bloom"]

PAD = "\x01"


def bytes_objects(rows: np.ndarray) -> np.ndarray:
    """Object array holding each row of a 2-D uint8 array as ``bytes`` (C speed via Arrow)."""
    buffer = pa.py_buffer(np.ascontiguousarray(rows))  # zero-copy; Arrow keeps rows alive
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(rows.shape[1]), len(rows),
                                                 [None, buffer])
    return array.to_numpy(zero_copy_only=False)


def _qgram_elements(fact: Factorized, q: int) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """Padded byte q-grams of each distinct value as CSR (offsets, element ids) + element bytes."""
    offsets, codes = _kernels.qgram_codes(fact.buffer, fact.offsets, q, ord(PAD))
    if q <= 3:
        seen = np.zeros(1 << (8 * q), dtype=np.int64)
        seen[codes] = 1
        uniques = np.flatnonzero(seen)
        seen[uniques] = np.arange(len(uniques))
        gram_ids = seen[codes]
    else:
        uniques, gram_ids = np.unique(codes, return_inverse=True)
    grams = [int(c).to_bytes(q, "big") for c in uniques]
    return offsets, gram_ids.astype(np.int64).ravel(), grams


def _date_elements(fact: Factorized) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """Elements of ISO dates: ``y:YYYY``, ``m:MM``, ``d:DD`` and ``dob:YYYY-MM-DD``."""
    values = list(fact.uniques)
    parts = [[*v.split("-", 2), "", ""] for v in values]
    elements = np.empty(4 * len(values), dtype=object)
    elements[0::4] = ["y:" + p[0] for p in parts]
    elements[1::4] = ["m:" + p[1] for p in parts]
    elements[2::4] = ["d:" + p[2] for p in parts]
    elements[3::4] = ["dob:" + v for v in values]
    uniques, ids = np.unique(elements.astype(str), return_inverse=True)
    grams = [e.encode("utf-8") for e in uniques]
    offsets = np.arange(0, 4 * len(values) + 1, 4, dtype=np.int64)
    return offsets, ids.astype(np.int64).ravel(), grams


def _positions(key: bytes, grams: Sequence[bytes], k: int, n_bits: int) -> np.ndarray:
    """``(n_elements, k)`` unsalted keyed positions of each distinct element."""
    blocks = (k + 15) // 16
    messages = [len(g).to_bytes(2, "big") + g + bytes([b]) for g in grams for b in range(blocks)]
    digests = prf.hmac_sha256_many(key, messages)
    words = np.frombuffer(b"".join(digests), dtype=">u2").reshape(len(grams), blocks * 16)
    return words[:, :k].astype(np.int64) % n_bits


def _streams(subkey, purpose: str, messages: Sequence[bytes], n_words: int) -> np.ndarray:
    """``uint16[len(messages), n_words]``: a keyed stream per message.

    Stream ``i`` is AES-256-CTR under ``subkey(purpose + "/stream")`` with the nonce
    ``HMAC-SHA256(subkey(purpose), messages[i])[:12]`` (``prf.ctr_keystreams``).
    """
    digests = prf.hmac_sha256_many(subkey(purpose), messages)
    nonces = np.frombuffer(b"".join(d[:12] for d in digests), dtype=np.uint8).reshape(-1, 12)
    return prf.ctr_keystreams(subkey(purpose + "/stream"), nonces, n_words)


def encode_bloom(cols: Columns, spec: BloomField, hardening: Hardening, subkey) -> np.ndarray:
    """``bf_<field>`` values (``bytes`` or None when every source is missing)."""
    if len(spec.sources) == 1:
        fact = cols.factorized(spec.source)
        codes = fact.codes[None, :]
    else:  # one vocabulary for all sources: a q-gram counts the same in either field
        fact, codes = Factorized.stacked([cols.factorized(s) for s in spec.sources])
    present = (codes >= 0).any(axis=0)
    out = np.full(codes.shape[1], None, dtype=object)
    if not present.any():
        return out
    hardened = spec.name in hardening.applies_to
    salt = hardening.salt_for(spec.name)
    unit_columns = [row[present] for row in codes]
    if salt is not None:  # distinct salt values, then the empty salt that stands for a missing one
        salt_fact = cols.joined(salt)
        n_salts = len(salt_fact.uniques)
        salt_codes = salt_fact.codes[present]
        unit_columns.append(np.where(salt_codes >= 0, salt_codes, n_salts))
    unit_codes, first = factorize_rows(unit_columns)
    unit_values = np.ascontiguousarray(np.stack([c[first] for c in unit_columns[: len(codes)]],
                                                axis=1))
    unit_salt = None
    if salt is not None:  # number units in salt order: each salt's transform is drawn once
        unit_salt = unit_columns[-1][first].astype(np.int64)
        by_salt = np.argsort(unit_salt, kind="stable")
        renumber = np.empty_like(by_salt)
        renumber[by_salt] = np.arange(len(by_salt), dtype=np.int64)
        unit_codes = renumber[unit_codes]
        unit_values = np.ascontiguousarray(unit_values[by_salt])
        unit_salt = unit_salt[by_salt]

    if spec.elements == "qgrams":
        offsets, element_ids, elements = _qgram_elements(fact, spec.q)
    else:
        offsets, element_ids, elements = _date_elements(fact)
    unit_offsets, rows = _kernels.gather_elements(unit_values, offsets, element_ids)
    positions = _positions(subkey(f"bloom/{spec.name}"), elements, spec.k, spec.filter_bits)
    n_bytes = spec.filter_bits // 8
    if salt is not None:
        used = np.unique(unit_salt)  # stream only the salts these units use
        words = np.zeros((n_salts + 1, _kernels.transform_words(spec.k, spec.filter_bits)),
                         dtype=np.uint16)
        salts = [*salt_fact.uniques, ""]
        words[used] = _streams(subkey, f"bloom/{spec.name}/salt",
                               [salts[i].encode("utf-8") for i in used], words.shape[1])
        filters = _kernels.build_salted_filters(unit_offsets, rows, positions, unit_salt,
                                                words, n_bytes)
    else:
        filters = _kernels.build_filters(unit_offsets, rows, positions, n_bytes)
    if hardened:
        if hardening.xor_fold:
            filters = _kernels.xor_fold(filters)
        if hardening.balance:
            n = filters.shape[1] * 16
            words = _streams(subkey, f"bloom/{spec.name}/balance", [b""],
                             n + _kernels.spare_words(n))[0]
            permutation = _kernels.permutation_from_words(words, n)
            filters = _kernels.balance(filters, permutation)
        if hardening.blip_probability > 0:
            uniques = fact.uniques
            salts = [*salt_fact.uniques, ""] if salt is not None else []
            messages = [
                (UNIT_SEPARATOR.join("" if c < 0 else uniques[c] for c in values)
                 + UNIT_SEPARATOR + (salts[unit_salt[u]] if salt is not None else ""))
                .encode("utf-8")
                for u, values in enumerate(unit_values)
            ]
            words = _streams(subkey, f"bloom/{spec.name}/blip", messages,
                             filters.shape[1] * 8)  # one 16-bit word per bit
            threshold = round(hardening.blip_probability * 65536)
            filters = _kernels.blip(filters, words, threshold)
    out[present] = bytes_objects(filters)[unit_codes]
    return out
