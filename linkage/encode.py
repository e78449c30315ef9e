"""Encode normalized participants into keyed tokens and keyed Bloom filters.

``encode_participants(normalized, secret, schema)`` turns the output of
``linkage.normalize.normalize_participants`` into a frame with no raw PII:

- ``tok_<name>``: hex HMAC-SHA256 under ``secret.subkey("token/<name>/v<version>")`` of the
  canonical byte string ``"<field>=<value>\\x1f<field>=<value>..."`` (UTF-8); None when any
  field of the token is missing.
- ``bf_<field>``: packed Bloom filter bytes, or None when the field is missing. Every element
  (q-gram or date part) is set at ``k`` positions read from
  ``HMAC-SHA256(secret.subkey("bloom/<field>"), element[, salt])`` (random hashing, no double
  hashing); hardening per the schema.
- ``birth_year`` (Int64), ``sex``, ``zip3``: non-PII passthrough.

The schema (``schemas/encoding/v<version>.json``) says what is encoded and how; it never holds a
secret. See docs/encoding.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema
import numpy as np
import pandas as pd

from linkage import bloom
from schemas import load_schema

UNIT_SEPARATOR = "\x1f"
PAD = "\x01"

#: Normalized columns a token or filter may read (docs/architecture.md).
NORMALIZED_FIELDS = (
    "given_name",
    "given_name_canonical",
    "middle_name",
    "middle_initial",
    "family_name",
    "family_name_first",
    "family_name_last",
    "suffix",
    "dob",
    "ssn",
    "sex",
    "phone",
    "email",
    "street",
    "city",
    "state",
    "zip5",
    "zip3",
    "given_name_phonetic",
    "family_name_phonetic",
)

#: Fields computed here from normalized columns.
DERIVED_FIELDS = ("given_name_initial", "name_pair_low", "name_pair_high", "birth_year")

SALTS = ("birth_year", "dob")

META_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "version", "tokens", "bloom", "hardening", "passthrough"],
    "properties": {
        "id": {"type": "string", "pattern": "^pathlink-encoding/[0-9]+$"},
        "version": {"type": "integer", "minimum": 1},
        "description": {"type": "string", "maxLength": 2000},
        "tokens": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,62}$"},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": [*NORMALIZED_FIELDS, *DERIVED_FIELDS]},
            },
        },
        "bloom": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,62}$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["source", "elements", "k", "filter_bits"],
                "properties": {
                    "source": {"enum": list(NORMALIZED_FIELDS)},
                    "elements": {"enum": ["qgrams", "date_parts"]},
                    "q": {"type": "integer", "minimum": 1, "maximum": 4},
                    "k": {"type": "integer", "minimum": 1, "maximum": 64},
                    "filter_bits": {"enum": [64, 128, 256, 512, 1024, 2048, 4096]},
                },
                "if": {"properties": {"elements": {"const": "qgrams"}}},
                "then": {"required": ["q"]},
            },
        },
        "hardening": {
            "type": "object",
            "additionalProperties": False,
            "required": ["applies_to", "salt", "blip_probability", "balance", "xor_fold"],
            "properties": {
                "applies_to": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "salt": {"enum": [None, *SALTS]},
                "blip_probability": {"type": "number", "minimum": 0, "maximum": 0.5},
                "balance": {"type": "boolean"},
                "xor_fold": {"type": "boolean"},
            },
        },
        "passthrough": {
            "type": "array",
            "items": {"enum": ["birth_year", "sex", "zip3"]},
            "uniqueItems": True,
        },
    },
}


class SecretLike(Protocol):
    """What encoding needs from ``keys.SharedSecret``."""

    @property
    def fingerprint(self) -> str: ...

    def subkey(self, purpose: str) -> bytes: ...


@dataclass(frozen=True)
class BloomField:
    """One field-level Bloom filter."""

    name: str
    source: str
    elements: str
    k: int
    filter_bits: int
    q: int = 2


@dataclass(frozen=True)
class Hardening:
    """Hardening applied to the filters of ``applies_to``."""

    applies_to: tuple[str, ...] = ()
    salt: str | None = None
    blip_probability: float = 0.0
    balance: bool = False
    xor_fold: bool = False


@dataclass(frozen=True)
class EncodingSchema:
    """A validated encoding schema (see ``schemas/encoding/v1.json``)."""

    id: str
    version: int
    tokens: dict[str, tuple[str, ...]]
    bloom: dict[str, BloomField]
    hardening: Hardening
    passthrough: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> EncodingSchema:
        """Validate ``spec`` and build the schema.

        Raises:
            jsonschema.ValidationError: ``spec`` does not follow the meta-schema.
            ValueError: ``spec`` is well-formed but inconsistent.
        """
        validate_encoding_schema(spec)
        hard = spec["hardening"]
        return cls(
            id=spec["id"],
            version=spec["version"],
            tokens={name: tuple(fields) for name, fields in spec["tokens"].items()},
            bloom={
                name: BloomField(
                    name=name,
                    source=f["source"],
                    elements=f["elements"],
                    k=f["k"],
                    filter_bits=f["filter_bits"],
                    q=f.get("q", 2),
                )
                for name, f in spec["bloom"].items()
            },
            hardening=Hardening(
                applies_to=tuple(hard["applies_to"]),
                salt=hard["salt"],
                blip_probability=float(hard["blip_probability"]),
                balance=hard["balance"],
                xor_fold=hard["xor_fold"],
            ),
            passthrough=tuple(spec["passthrough"]),
            raw=spec,
        )

    def encoded_bits(self, field_name: str) -> int:
        """Length in bits of ``bf_<field_name>`` after hardening."""
        bits = self.bloom[field_name].filter_bits
        if field_name in self.hardening.applies_to:
            if self.hardening.xor_fold:
                bits //= 2
            if self.hardening.balance:
                bits *= 2
        return bits


def validate_encoding_schema(spec: dict[str, Any]) -> None:
    """Check ``spec`` against the meta-schema and for consistency; raise on the first problem."""
    jsonschema.validate(spec, META_SCHEMA)
    if spec["id"] != f"pathlink-encoding/{spec['version']}":
        raise ValueError(f"schema id {spec['id']!r} does not match version {spec['version']}")
    unknown = set(spec["hardening"]["applies_to"]) - set(spec["bloom"])
    if unknown:
        raise ValueError(f"hardening applies to unknown Bloom fields: {sorted(unknown)}")


def load_encoding_schema(version: int = 1) -> EncodingSchema:
    """Read and validate ``schemas/encoding/v<version>.json``."""
    return EncodingSchema.from_dict(load_schema("encoding", version))


# --------------------------------------------------------------------------- helpers


def _clean(column: pd.Series) -> np.ndarray:
    """Object array of str with None for missing or empty values."""
    values = np.array(column.to_numpy(dtype=object), dtype=object)
    missing = pd.isna(values)
    values[missing] = None
    present = ~missing
    if pd.api.types.infer_dtype(values[present], skipna=True) not in ("string", "empty"):
        values[present] = [str(v) for v in values[present]]
    values[values == ""] = None
    return values


@dataclass(frozen=True)
class _Factorized:
    """A column as codes (-1 = missing) into distinct values, plus their UTF-8 bytes."""

    codes: np.ndarray
    uniques: np.ndarray
    buffer: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> _Factorized:
        codes, uniques = pd.factorize(values, sort=False, use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        joined = "".join(uniques)
        if joined.isascii():
            buffer = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
            lengths = np.fromiter(map(len, uniques), dtype=np.int64, count=len(uniques))
        else:
            encoded = [u.encode("utf-8") for u in uniques]
            buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(uniques) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(codes.astype(np.int64), uniques, buffer, offsets)


class _Columns:
    """Lazily cleaned normalized and derived columns."""

    def __init__(self, normalized: pd.DataFrame) -> None:
        self._frame = normalized
        self._cache: dict[str, np.ndarray] = {}
        self._factorized: dict[str, _Factorized] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    def factorized(self, name: str) -> _Factorized:
        if name not in self._factorized:
            self._factorized[name] = _Factorized.of(self[name])
        return self._factorized[name]

    def _compute(self, name: str) -> np.ndarray:
        n = len(self._frame)
        if name in self._frame.columns:
            return _clean(self._frame[name])
        out = np.full(n, None, dtype=object)
        if name == "given_name_initial":
            given = self["given_name"]
            present = ~pd.isna(given)
            out[present] = [v[0] for v in given[present]]
        elif name in ("name_pair_low", "name_pair_high"):
            given, family = self["given_name"], self["family_name"]
            both = ~pd.isna(given) & ~pd.isna(family)
            g, f = given[both], family[both]
            first = (g <= f) if name == "name_pair_low" else (g > f)
            out[both] = np.where(first, g, f)
        elif name == "birth_year":
            dob = self["dob"]
            present = ~pd.isna(dob)
            out[present] = [d[:4] for d in dob[present]]
        return out


def _hex(digests: np.ndarray) -> list[str]:
    lut = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    ascii_hex = np.empty((len(digests), 64), dtype=np.uint8)
    ascii_hex[:, 0::2] = lut[digests >> 4]
    ascii_hex[:, 1::2] = lut[digests & 15]
    return ascii_hex.view("S64").ravel().astype("U64").tolist()


def _encode_token(cols: _Columns, fields: tuple[str, ...], key: bytes) -> np.ndarray:
    facts = [cols.factorized(f) for f in fields]
    for f, fact in zip(fields, facts, strict=True):
        if (fact.buffer == ord(UNIT_SEPARATOR)).any():
            raise ValueError(f"field {f!r} holds a unit separator; normalize it first")
    codes = np.stack([fact.codes for fact in facts])
    present = (codes >= 0).all(axis=0)
    out = np.full(codes.shape[1], None, dtype=object)
    if not present.any():
        return out
    codes = codes[:, present]
    bases = np.cumsum([0] + [len(fact.buffer) for fact in facts[:-1]])
    starts = np.stack(
        [fact.offsets[c] + base for fact, c, base in zip(facts, codes, bases, strict=True)]
    )
    lengths = np.stack([np.diff(fact.offsets)[c] for fact, c in zip(facts, codes, strict=True)])
    value_buf = np.concatenate([fact.buffer for fact in facts])
    prefixes = [("" if i == 0 else UNIT_SEPARATOR) + f"{f}=" for i, f in enumerate(fields)]
    prefix_buf = np.frombuffer("".join(prefixes).encode("ascii"), dtype=np.uint8)
    prefix_offsets = np.array([0, *np.cumsum([len(p) for p in prefixes])], dtype=np.int64)
    inner, outer = bloom.hmac_pads(key)
    digests = bloom.hmac_sha256_rows(
        inner, outer, prefix_buf, prefix_offsets, value_buf, starts, lengths
    )
    out[present] = _hex(digests)
    return out


def _qgram_elements(fact: _Factorized, q: int) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """Padded byte q-grams of each distinct value as CSR (offsets, element ids) + element bytes."""
    lengths = np.diff(fact.offsets)
    padded_lengths = lengths + 2 * (q - 1)
    padded_starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(padded_lengths[:-1], out=padded_starts[1:])
    data = np.full(int(padded_lengths.sum()), ord(PAD), dtype=np.uint8)
    within = np.arange(len(fact.buffer), dtype=np.int64) - np.repeat(fact.offsets[:-1], lengths)
    data[np.repeat(padded_starts + (q - 1), lengths) + within] = fact.buffer
    counts = np.maximum(padded_lengths - q + 1, 0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    within = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1], counts)
    starts = np.repeat(padded_starts, counts) + within
    codes = np.zeros(total, dtype=np.int64)
    for j in range(q):
        codes = (codes << 8) | data[starts + j]
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


def _date_elements(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """Elements of ISO dates: year, month, day and the whole date, as CSR plus element bytes."""
    element_ids: dict[str, int] = {}
    ids: list[int] = []
    offsets = [0]
    for v in values:
        y, _, rest = v.partition("-")
        m, _, d = rest.partition("-")
        for element in (f"y:{y}", f"m:{m}", f"d:{d}", f"dob:{v}"):
            ids.append(element_ids.setdefault(element, len(element_ids)))
        offsets.append(len(ids))
    grams = [e.encode("utf-8") for e in element_ids]
    return np.array(offsets, dtype=np.int64), np.array(ids, dtype=np.int64), grams


def _length_prefixed(items: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Buffer of ``len(item) (2 bytes) || item`` for each item, and the CSR offsets."""
    framed = [len(item).to_bytes(2, "big") + item for item in items]
    offsets = np.zeros(len(framed) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in framed], out=offsets[1:])
    return np.frombuffer(b"".join(framed), dtype=np.uint8), offsets


def _positions(
    key: bytes, grams: list[bytes], salts: list[str | None], pair_gram: np.ndarray,
    pair_salt: np.ndarray, k: int, n_bits: int,
) -> np.ndarray:
    """``(n_pairs, k)`` keyed positions of each (element, salt) pair.

    The 16-bit big-endian words of ``HMAC(key, len||element[||len||salt]||block)``, mod n_bits.
    """
    blocks = (k + 15) // 16
    gram_buf, gram_off = _length_prefixed(grams)
    salt_items = [b"" if s is None else s.encode("utf-8") for s in salts]
    salt_buf, salt_off = _length_prefixed(salt_items)
    unsalted = np.array([s is None for s in salts])
    block_buf = np.arange(blocks, dtype=np.uint8)
    n_rows = len(pair_gram) * blocks
    gram_rep = np.repeat(pair_gram, blocks)
    salt_rep = np.repeat(pair_salt, blocks)
    block_rep = np.tile(np.arange(blocks, dtype=np.int64), len(pair_gram))
    starts = np.stack([
        gram_off[gram_rep],
        salt_off[salt_rep] + len(gram_buf),
        block_rep + len(gram_buf) + len(salt_buf),
    ])
    lengths = np.stack([
        np.diff(gram_off)[gram_rep],
        np.where(unsalted[salt_rep], 0, np.diff(salt_off)[salt_rep]),
        np.ones(n_rows, dtype=np.int64),
    ])
    inner, outer = bloom.hmac_pads(key)
    digests = bloom.hmac_sha256_rows(
        inner, outer, np.zeros(0, dtype=np.uint8), np.zeros(4, dtype=np.int64),
        np.concatenate([gram_buf, salt_buf, block_buf]), starts, lengths,
    )
    words = digests.reshape(len(pair_gram), blocks * 32).view(">u2")[:, :k].astype(np.int64)
    return words % n_bits


def _unit_seeds(key: bytes, units: list[tuple[str, str | None]]) -> np.ndarray:
    seeds = np.empty(len(units), dtype=np.uint64)
    for i, (value, salt) in enumerate(units):
        message = f"{value}{UNIT_SEPARATOR}{'' if salt is None else salt}".encode()
        seeds[i] = int.from_bytes(hmac.digest(key, message, "sha256")[:8], "big")
    return seeds


def _permutation(key: bytes, n_bits: int) -> np.ndarray:
    rng = np.random.Generator(np.random.Philox(key=int.from_bytes(key[:16], "big")))
    return rng.permutation(n_bits).astype(np.int64)


def _encode_bloom(
    cols: _Columns, spec: BloomField, hardening: Hardening, secret: SecretLike
) -> np.ndarray:
    fact = cols.factorized(spec.source)
    present = fact.codes >= 0
    out = np.full(len(fact.codes), None, dtype=object)
    if not present.any():
        return out
    hardened = spec.name in hardening.applies_to
    value_codes, value_uniques = fact.codes[present], fact.uniques
    salts: list[str | None] = [None]
    if hardened and hardening.salt is not None:
        salt_values = cols[hardening.salt][present]
        salt_values = np.array(["" if s is None else s for s in salt_values], dtype=object)
        salt_codes, salt_uniques = pd.factorize(salt_values, sort=False)
        salts = list(salt_uniques)
        unit_codes, unit_uniques = pd.factorize(
            value_codes.astype(np.int64) * len(salts) + salt_codes, sort=False
        )
        unit_value = (unit_uniques // len(salts)).astype(np.int64)
        unit_salt = (unit_uniques % len(salts)).astype(np.int64)
    else:
        unit_codes = value_codes
        unit_value = np.arange(len(value_uniques), dtype=np.int64)
        unit_salt = np.zeros(len(value_uniques), dtype=np.int64)

    if spec.elements == "qgrams":
        offsets, gram_ids, grams = _qgram_elements(fact, spec.q)
    else:
        offsets, gram_ids, grams = _date_elements(list(value_uniques))
    # every (unit, element) -> a row of the positions table of distinct (element, salt) pairs
    counts = np.diff(offsets)
    unit_counts = counts[unit_value]
    unit_offsets = np.zeros(len(unit_value) + 1, dtype=np.int64)
    np.cumsum(unit_counts, out=unit_offsets[1:])
    within = np.arange(int(unit_offsets[-1]), dtype=np.int64) - np.repeat(
        unit_offsets[:-1], unit_counts
    )
    elem_gram = gram_ids[np.repeat(offsets[unit_value], unit_counts) + within]
    elem_salt = np.repeat(unit_salt, unit_counts)
    pair_codes, rows = np.unique(elem_gram * len(salts) + elem_salt, return_inverse=True)
    key = secret.subkey(f"bloom/{spec.name}")
    positions = _positions(
        key, grams, salts, pair_codes // len(salts), pair_codes % len(salts), spec.k,
        spec.filter_bits,
    )
    filters = bloom.build_filters(
        unit_offsets, rows.astype(np.int64).ravel(), positions, spec.filter_bits // 8
    )
    if hardened:
        if hardening.xor_fold:
            filters = bloom.xor_fold(filters)
        if hardening.balance:
            perm_key = secret.subkey(f"bloom/{spec.name}/balance")
            filters = bloom.balance(filters, _permutation(perm_key, filters.shape[1] * 16))
        if hardening.blip_probability > 0:
            blip_key = secret.subkey(f"bloom/{spec.name}/blip")
            units = [
                (value_uniques[v], salts[s]) for v, s in zip(unit_value, unit_salt, strict=True)
            ]
            filters = bloom.blip(filters, _unit_seeds(blip_key, units), hardening.blip_probability)
    raw = filters.tobytes()
    width = filters.shape[1]
    unit_bytes = np.empty(len(filters), dtype=object)
    unit_bytes[:] = [raw[i * width : (i + 1) * width] for i in range(len(filters))]
    out[present] = unit_bytes[unit_codes]
    return out


_PASSTHROUGH: dict[str, Callable[[_Columns], Any]] = {
    "birth_year": lambda c: pd.array(
        [None if y is None else int(y) for y in c["birth_year"]], dtype="Int64"
    ),
    "sex": lambda c: c["sex"],
    "zip3": lambda c: c["zip3"],
}


def encode_participants(
    normalized: pd.DataFrame, secret: SecretLike, schema: EncodingSchema
) -> pd.DataFrame:
    """Encode normalized participants; the result holds no raw PII.

    Args:
        normalized: output of ``normalize_participants`` (missing columns count as empty).
        secret: the shared secret (``keys.SharedSecret`` or anything with ``subkey`` and
            ``fingerprint``).
        schema: a validated ``EncodingSchema``.

    Returns:
        Same index; ``tok_<name>``, ``bf_<field>`` and the passthrough columns, with
        ``attrs["key_fingerprint"]`` and ``attrs["encoding_schema"]``.
    """
    cols = _Columns(normalized)
    data: dict[str, Any] = {}
    for name, fields in schema.tokens.items():
        key = secret.subkey(f"token/{name}/v{schema.version}")
        data[f"tok_{name}"] = _encode_token(cols, fields, key)
    for spec in schema.bloom.values():
        data[f"bf_{spec.name}"] = _encode_bloom(cols, spec, schema.hardening, secret)
    for name in schema.passthrough:
        data[name] = _PASSTHROUGH[name](cols)
    encoded = pd.DataFrame(data, index=normalized.index)
    encoded.attrs["key_fingerprint"] = secret.fingerprint
    encoded.attrs["encoding_schema"] = schema.id
    return encoded
