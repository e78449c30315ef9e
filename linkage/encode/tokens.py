"""Keyed tokens: exact-match HMAC tokens and keyed edit-neighbourhood token sets.

``tok_<name>`` is the hex HMAC-SHA256 under ``secret.subkey("token/<name>/v<version>")`` of the
token's field values in schema order, joined by ``\\x1f`` (UTF-8); None when any field is
missing. Each distinct message is hashed once (``prf.hmac_sha256_many``) and mapped back.

``ts_<name>`` (a token set, ``schema.TokenSet``) gives similarity without bits to mine: the
sorted 64-bit tokens of the variants of each varying field, the other fields unchanged, padded
to ``width`` tokens. With ``deletions`` (the value and its one-character deletions) a record's
set is, in plaintext, ``{(g', f) : g' in D(g)} | {(g, f') : f' in D(f)}`` with ``D(x)`` the
value and its deletions: two records share a token when one field is equal and the other within
one edit (substitution, insertion, deletion, or an adjacent transposition), or when each field
is one insertion away from the other record's in opposite directions; with ``date_pairs``
(year-month, year-day, month-day of a date) when two of the three date parts agree and the
other fields are equal. Construction, for fields ``(a, b)`` (a single field has ``b`` empty),
with HKDF subkeys of the shared secret:

* ``h_a(v) = HMAC-SHA256(subkey("tokenset/<name>/<a>"), v)[:8]`` for each distinct value or
  deletion variant ``v`` of ``a`` (likewise ``h_b``): one HMAC per distinct variant;
* ``token(v, w) = AES-256(subkey("tokenset/<name>/prp"), h_a(v) || h_b(w))[:8]``: a keyed
  pseudorandom permutation of the pair of PRF outputs, so a token reveals nothing of either
  field and tokens of different pairs are unrelated (no linear or other structure to exploit);
* padding: ``AES-256(subkey("tokenset/<name>/pad"), token(a, b) || i)[:8]`` for the empty
  slots ``i = n, ..., width - 1`` after the set's ``n`` real tokens, so a set's size does not
  tell the names' lengths.

The column holds the ``width`` tokens sorted, as ``width * 8`` bytes (little-endian uint64).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.encode import _kernels, prf
from linkage.encode._columns import UNIT_SEPARATOR, Columns, Factorized, factorize_rows
from linkage.encode.filters import bytes_objects
from linkage.encode.schema import TokenSet

__all__ = ["encode_token", "encode_token_set", "encode_tokens", "token_set_values"]


def _hex(digests: bytes) -> np.ndarray:
    text = digests.hex()
    return np.array([text[i : i + 64] for i in range(0, len(text), 64)], dtype=object)


def _token_messages(cols: Columns, fields: tuple[str, ...]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(present, inverse, buffer, offsets)``: rows where every field is present, each such
    row's distinct message, and the distinct messages (CSR)."""
    facts = [cols.factorized(f) for f in fields]
    for f, fact in zip(fields, facts, strict=True):
        if (fact.buffer == ord(UNIT_SEPARATOR)).any():
            raise ValueError(f"field {f!r} holds a unit separator; normalize it first")
    codes = np.stack([fact.codes for fact in facts])
    present = (codes >= 0).all(axis=0)
    rows = codes[:, present]
    inverse, first = factorize_rows(list(rows))
    width = max(len(f.offsets) for f in facts)
    offsets = np.zeros((len(facts), width), dtype=np.int64)
    base = 0
    for j, fact in enumerate(facts):
        offsets[j, : len(fact.offsets)] = fact.offsets + base
        base += len(fact.buffer)
    buffer, offsets = _kernels.join_rows(np.ascontiguousarray(rows[:, first]),
                                         np.concatenate([f.buffer for f in facts]), offsets,
                                         ord(UNIT_SEPARATOR))
    return present, inverse, buffer, offsets


def encode_tokens(cols: Columns, tokens: dict[str, tuple[str, ...]],
                  keys: dict[str, bytes]) -> dict[str, np.ndarray]:
    """``tok_*`` values (hex str or None) of several tokens, each distinct message hashed once
    (``prf.hmac_sha256_jobs``: on a second core when there are many)."""
    prepared = {name: _token_messages(cols, fields) for name, fields in tokens.items()}
    digests = prf.hmac_sha256_jobs([(keys[name], buffer, offsets)
                                    for name, (_, _, buffer, offsets) in prepared.items()])
    out = {}
    for (name, (present, inverse, _, _)), digest in zip(prepared.items(), digests, strict=True):
        values = np.full(len(present), None, dtype=object)
        if present.any():
            values[present] = _hex(digest)[inverse]
        out[name] = values
    return out


def encode_token(cols: Columns, fields: tuple[str, ...], key: bytes) -> np.ndarray:
    """``tok_*`` values (hex str or None) of one token over ``fields``."""
    return encode_tokens(cols, {"token": fields}, {"token": key})["token"]


def _variants(value: str, kind: str, max_edit_length: int) -> list[str]:
    """The variants a token set holds for one value of a varying field.

    ``deletions``: the value and its single-character deletions within the first
    ``max_edit_length`` characters. ``date_pairs`` (an ISO date): its year-month, year-day and
    month-day, tagged so that they never equal each other.
    """
    if kind == "date_pairs":
        year, month, day = value.split("-", 2)
        return [f"ym:{year}-{month}", f"yd:{year}-{day}", f"md:{month}-{day}"]
    deletions = (value[:i] + value[i + 1 :] for i in range(min(len(value), max_edit_length)))
    return list(dict.fromkeys((value, *deletions)))  # distinct, the value itself first


def _field_prf(fact: Factorized, key: bytes, kind: str | None,
               max_edit_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PRFs (``HMAC(key, v)[:8]``) of a field: per distinct value its own (``uint8[n, 8]``),
    and, as CSR, those of its variants (``kind`` None: the value itself only)."""
    lists = [_variants(v, kind, max_edit_length) if kind else [v] for v in fact.uniques]
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    flat = [*fact.uniques, *(v for x in lists for v in x)]
    codes, distinct = pd.factorize(np.array(flat, dtype=object))
    digests = prf.hmac_sha256_many(key, [v.encode("utf-8") for v in distinct])
    table = np.frombuffer(b"".join(d[:8] for d in digests), dtype=np.uint8).reshape(-1, 8)
    own = table[codes[: len(fact.uniques)]]
    variants = table[codes[len(fact.uniques) :]]
    return own, offsets, variants


def encode_token_set(cols: Columns, spec: TokenSet, subkey) -> np.ndarray:
    """``ts_*`` values (``bytes`` of ``width * 8``, or None when any field is missing).

    ``subkey(purpose)`` is the secret's HKDF (``SecretLike.subkey``).
    """
    facts = [cols.factorized(f) for f in spec.fields]
    codes = np.stack([fact.codes for fact in facts])
    present = (codes >= 0).all(axis=0)
    out = np.full(codes.shape[1], None, dtype=object)
    if not present.any():
        return out
    inverse, first = factorize_rows(list(codes[:, present]))
    units = codes[:, present][:, first]
    n_units = units.shape[1]
    prfs = [_field_prf(fact, subkey(f"tokenset/{spec.name}/{f}"),
                       spec.variants if f in spec.vary else None, spec.max_edit_length)
            for f, fact in zip(spec.fields, facts, strict=True)]
    own = [own_prf[units[j]] for j, (own_prf, _, _) in enumerate(prfs)]  # uint8[n_units, 8]

    # every token of every unit, laid out unit by unit: a unit's tokens from the first varying
    # field, then those of the next (whose first variant, the value itself, would repeat the
    # unit's own token and is skipped); variants are distinct, so tokens are too (but for AES
    # collisions, about 2**-64 per pair)
    blocks, owners, slots = [], [], []
    filled = np.zeros(n_units, dtype=np.int64)
    skip_own = False
    for j, (_, offsets, variants) in enumerate(prfs):
        if spec.fields[j] not in spec.vary:
            continue
        starts = offsets[units[j]] + (1 if skip_own else 0)
        counts = offsets[units[j] + 1] - starts
        owner = np.repeat(np.arange(n_units), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        parts = [own[i][owner] if i != j else variants[np.repeat(starts, counts) + within]
                 for i in range(len(prfs))]
        if len(parts) == 1:
            parts.append(np.zeros((len(owner), 8), dtype=np.uint8))
        blocks.append(np.concatenate(parts, axis=1))
        owners.append(owner)
        slots.append(filled[owner] + within)
        filled += counts
        skip_own = skip_own or spec.variants == "deletions"
    if filled.max(initial=0) > spec.width:
        raise ValueError(f"token set {spec.name!r}: more than {spec.width} tokens for a record")
    tokens = prf.prp_blocks(subkey(f"tokenset/{spec.name}/prp"), np.concatenate(blocks))[:, :8]
    rows = np.empty((n_units, spec.width), dtype="<u8")
    rows[np.concatenate(owners), np.concatenate(slots)] = np.ascontiguousarray(
        tokens).view("<u8").ravel()

    # padding for the empty slots, seeded by the unit's own token (the fields as they are)
    own_parts = [*own] if len(own) > 1 else [own[0], np.zeros((n_units, 8), dtype=np.uint8)]
    own_token = prf.prp_blocks(subkey(f"tokenset/{spec.name}/prp"),
                               np.concatenate(own_parts, axis=1))[:, :8]
    empty = spec.width - filled
    pad_owner = np.repeat(np.arange(n_units), empty)
    pad_slot = np.repeat(filled, empty) + (np.arange(empty.sum())
                                           - np.repeat(np.cumsum(empty) - empty, empty))
    pad_input = np.empty((len(pad_owner), 16), dtype=np.uint8)
    pad_input[:, :8] = own_token[pad_owner]
    pad_input[:, 8:] = pad_slot.astype("<u8").view(np.uint8).reshape(-1, 8)
    pads = prf.prp_blocks(subkey(f"tokenset/{spec.name}/pad"), pad_input)[:, :8]
    rows[pad_owner, pad_slot] = np.ascontiguousarray(pads).view("<u8").ravel()
    rows.sort(axis=1)
    out[present] = bytes_objects(rows.view(np.uint8))[inverse]
    return out


def token_set_values(column) -> tuple[np.ndarray, np.ndarray]:
    """``(uint64[n, width], present bool[n])`` of a ``ts_*`` column (rows sorted)."""
    values = list(column)
    present = np.fromiter((isinstance(v, (bytes, bytearray, memoryview)) for v in values),
                          dtype=bool, count=len(values))
    first = next((v for v, p in zip(values, present, strict=True) if p), None)
    width = len(first) // 8 if first is not None else 1
    zero = bytes(8 * width)
    buf = b"".join(bytes(v) if p else zero for v, p in zip(values, present, strict=True))
    return np.frombuffer(buf, dtype="<u8").reshape(len(values), width).copy(), present
