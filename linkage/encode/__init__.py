"""Encode normalized participants into keyed tokens, keyed token sets and keyed Bloom filters.

``encode_participants(normalized, secret, schema)`` turns the output of
``linkage.normalize.normalize_participants`` into a frame with no raw PII:

- ``tok_<name>``: hex HMAC-SHA256 tokens of field combinations (``linkage.encode.tokens``);
- ``ts_<name>``: keyed edit-neighbourhood token sets (``linkage.encode.tokens``);
- ``bf_<field>``: keyed Bloom filters, salted per the schema (``linkage.encode.filters``);
- passthrough ``birth_year`` (Int64), ``sex``, ``zip3``, ``suffix``.

Every keyed primitive comes from the standard library or ``cryptography``
(``linkage.encode.prf``): HMAC-SHA256, and AES-256 (CTR mode for keystreams). The secret is an
argument and the schema (``schemas/encoding/v<version>.json``) never holds one. See
docs/encoding.md.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from linkage.encode._columns import UNIT_SEPARATOR, Columns
from linkage.encode._kernels import dice
from linkage.encode.filters import PAD, encode_bloom
from linkage.encode.schema import (
    CURRENT_ENCODING_VERSION,
    ENCODABLE_VERSIONS,
    BloomField,
    EncodingSchema,
    Hardening,
    RetiredEncodingError,
    TokenSet,
    load_encoding_schema,
    validate_encoding_schema,
)
from linkage.encode.tokens import encode_token_set, encode_tokens, token_set_values

__all__ = [
    "CURRENT_ENCODING_VERSION",
    "ENCODABLE_VERSIONS",
    "PAD",
    "UNIT_SEPARATOR",
    "BloomField",
    "EncodingSchema",
    "Hardening",
    "RetiredEncodingError",
    "SecretLike",
    "TokenSet",
    "dice",
    "encode_participants",
    "load_encoding_schema",
    "token_set_values",
    "validate_encoding_schema",
]


class SecretLike(Protocol):
    """What encoding needs from ``keys.SharedSecret``."""

    @property
    def fingerprint(self) -> str: ...

    def subkey(self, purpose: str) -> bytes: ...


def _birth_year(cols: Columns) -> pd.arrays.IntegerArray:
    return pd.array([None if y is None else int(y) for y in cols["birth_year"]], dtype="Int64")


_PASSTHROUGH: dict[str, Any] = {
    "birth_year": _birth_year,
    "sex": lambda c: c["sex"],
    "zip3": lambda c: c["zip3"],
    "suffix": lambda c: c["suffix"],
}


def encode_participants(
    normalized: pd.DataFrame, secret: SecretLike, schema: EncodingSchema
) -> pd.DataFrame:
    """Encode normalized participants; the result holds no raw PII.

    Args:
        normalized: output of ``normalize_participants`` (missing columns count as empty).
        secret: the shared secret (``keys.SharedSecret`` or anything with ``subkey`` and
            ``fingerprint``).
        schema: a validated ``EncodingSchema`` whose version this code can encode.

    Returns:
        Same index; the schema's columns (``EncodingSchema.columns()``), with
        ``attrs["key_fingerprint"]`` and ``attrs["encoding_schema"]``.

    Raises:
        RetiredEncodingError: the schema is an old version whose primitives are retired.
    """
    if not schema.encodable:
        raise RetiredEncodingError(
            f"encoding schema {schema.id} used keyed primitives that are retired; encode under "
            f"pathlink-encoding/{CURRENT_ENCODING_VERSION} (docs/encoding.md)")
    cols = Columns(normalized)
    data: dict[str, Any] = {}
    keys = {name: secret.subkey(f"token/{name}/v{schema.version}") for name in schema.tokens}
    for name, values in encode_tokens(cols, schema.tokens, keys).items():
        data[f"tok_{name}"] = values
    for spec in schema.token_sets.values():
        data[f"ts_{spec.name}"] = encode_token_set(cols, spec, secret.subkey)
    for spec in schema.bloom.values():
        data[f"bf_{spec.name}"] = encode_bloom(cols, spec, schema.hardening, secret.subkey)
    for name in schema.passthrough:
        data[name] = _PASSTHROUGH[name](cols)
    # copy=False: one block per column instead of copying every object column into one block
    encoded = pd.DataFrame(data, index=normalized.index, copy=False)
    encoded.attrs["key_fingerprint"] = secret.fingerprint
    encoded.attrs["encoding_schema"] = schema.id
    return encoded
