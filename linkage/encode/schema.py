"""The encoding schema: what is encoded and how, validated against its JSON meta-schema.

A schema (``schemas/encoding/v<version>.json``) never holds a secret. Its meta-schema is
``schemas/encoding/spec.schema.json``. Versions 1 and 2 still load (a hub names them when it
refuses an old drop), but only versions in :data:`ENCODABLE_VERSIONS` can be encoded: v1 and v2
drew their keyed positions and permutations from primitives that are retired (a hand-written
SHA-256 and statistical generators, docs/encoding.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from schemas import load_meta_schema, load_schema, validate_against_meta_schema

__all__ = [
    "CURRENT_ENCODING_VERSION",
    "ENCODABLE_VERSIONS",
    "BloomField",
    "EncodingSchema",
    "Hardening",
    "RetiredEncodingError",
    "TokenSet",
    "load_encoding_schema",
    "validate_encoding_schema",
]

#: The encoding schema version new data is encoded under (``schemas/encoding/v<N>.json``).
CURRENT_ENCODING_VERSION = 3
#: Versions whose keyed primitives this code implements.
ENCODABLE_VERSIONS = frozenset({3})

#: Fields computed from normalized columns (``linkage.encode._columns``).
DERIVED_FIELDS = ("given_name_initial", "name_pair_low", "name_pair_high", "name_pair",
                  "birth_year",
                  "dob_year_month", "dob_year_day", "dob_month_day", "dob_unordered")


class RetiredEncodingError(ValueError):
    """The schema loads, but its keyed primitives are retired: it can no longer be encoded."""


@cache
def meta_schema() -> dict[str, Any]:
    """The JSON meta-schema every encoding schema follows."""
    return load_meta_schema("encoding")


Salt = tuple[str, ...] | None


def _salt(value: Any) -> Salt:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class BloomField:
    """One Bloom filter over one source field, or over the union of several fields' q-grams."""

    name: str
    sources: tuple[str, ...]
    elements: str
    k: int
    filter_bits: int
    q: int = 2

    @property
    def source(self) -> str:
        """The first (for a single-field filter, the only) source field."""
        return self.sources[0]


@dataclass(frozen=True)
class TokenSet:
    """Keyed tokens of variants of one or two fields (``linkage.encode.tokens``).

    ``variants="deletions"``: a token for the fields as they are and one for every
    single-character deletion (within the first ``max_edit_length`` characters) of each field
    in ``vary``, the other fields unchanged; two records share a token when one field is within
    one edit and the others are equal (``linkage.encode.tokens`` states it exactly).
    ``variants="date_pairs"``: a token for each two of the three parts of a date in ``vary``,
    the other fields unchanged. Padded to ``width`` tokens.
    """

    name: str
    fields: tuple[str, ...]
    vary: tuple[str, ...]
    max_edit_length: int
    width: int
    variants: str = "deletions"


@dataclass(frozen=True)
class Hardening:
    """Hardening applied to the filters of ``applies_to``.

    ``salt`` salts every filter of ``applies_to``; ``salt_by_field`` overrides it per filter. A
    salt is one field or several (their values joined by ``\\x1f``).
    """

    applies_to: tuple[str, ...] = ()
    salt: Salt = None
    blip_probability: float = 0.0
    balance: bool = False
    xor_fold: bool = False
    salt_by_field: tuple[tuple[str, Salt], ...] = ()

    def salt_for(self, field_name: str) -> Salt:
        """The salt fields of ``bf_<field_name>``, or None when it is not salted."""
        if field_name not in self.applies_to:
            return None
        return dict(self.salt_by_field).get(field_name, self.salt)


@dataclass(frozen=True)
class EncodingSchema:
    """A validated encoding schema (see ``schemas/encoding/v3.json``)."""

    id: str
    version: int
    tokens: dict[str, tuple[str, ...]]
    bloom: dict[str, BloomField]
    hardening: Hardening
    passthrough: tuple[str, ...]
    token_sets: dict[str, TokenSet] = field(default_factory=dict)
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
                    sources=(f["source"],) if isinstance(f["source"], str)
                    else tuple(f["source"]),
                    elements=f["elements"],
                    k=f["k"],
                    filter_bits=f["filter_bits"],
                    q=f.get("q", 2),
                )
                for name, f in spec["bloom"].items()
            },
            hardening=Hardening(
                applies_to=tuple(hard["applies_to"]),
                salt=_salt(hard["salt"]),
                blip_probability=float(hard["blip_probability"]),
                balance=hard["balance"],
                xor_fold=hard["xor_fold"],
                salt_by_field=tuple(sorted((k, _salt(v))
                                           for k, v in hard.get("salt_by_field", {}).items())),
            ),
            passthrough=tuple(spec["passthrough"]),
            token_sets={name: TokenSet(name=name, fields=tuple(t["fields"]),
                                       vary=tuple(t["vary"]),
                                       max_edit_length=t.get("max_edit_length", 15),
                                       width=t["width"],
                                       variants=t.get("variants", "deletions"))
                        for name, t in spec.get("token_sets", {}).items()},
            raw=spec,
        )

    @property
    def encodable(self) -> bool:
        """Whether this code can encode under the schema (see :data:`ENCODABLE_VERSIONS`)."""
        return self.version in ENCODABLE_VERSIONS

    def encoded_bits(self, field_name: str) -> int:
        """Length in bits of ``bf_<field_name>`` after hardening."""
        bits = self.bloom[field_name].filter_bits
        if field_name in self.hardening.applies_to:
            if self.hardening.xor_fold:
                bits //= 2
            if self.hardening.balance:
                bits *= 2
        return bits

    def token_set_bytes(self, name: str) -> int:
        """Length in bytes of ``ts_<name>`` (8 bytes per token)."""
        return 8 * self.token_sets[name].width

    def columns(self) -> tuple[str, ...]:
        """The encoded columns this schema produces, in output order."""
        return (*(f"tok_{t}" for t in self.tokens), *(f"ts_{t}" for t in self.token_sets),
                *(f"bf_{b}" for b in self.bloom), *self.passthrough)


def validate_encoding_schema(spec: dict[str, Any]) -> None:
    """Check ``spec`` against the meta-schema and for consistency; raise on the first problem."""
    validate_against_meta_schema("encoding", spec)
    if spec["id"] != f"pathlink-encoding/{spec['version']}":
        raise ValueError(f"schema id {spec['id']!r} does not match version {spec['version']}")
    unknown = set(spec["hardening"]["applies_to"]) - set(spec["bloom"])
    if unknown:
        raise ValueError(f"hardening applies to unknown Bloom fields: {sorted(unknown)}")
    stray = set(spec["hardening"].get("salt_by_field", {})) - set(spec["hardening"]["applies_to"])
    if stray:
        raise ValueError(f"salt_by_field names fields outside applies_to: {sorted(stray)}")
    for name, f in spec["bloom"].items():
        if f["elements"] == "date_parts" and not isinstance(f["source"], str):
            raise ValueError(f"Bloom field {name!r}: date_parts take a single source field")
    for name, t in spec.get("token_sets", {}).items():
        if not set(t["vary"]) <= set(t["fields"]):
            raise ValueError(f"token set {name!r}: vary must be a subset of fields")
        per_field = (3 if t.get("variants") == "date_pairs"
                     else t.get("max_edit_length", 15))
        needed = len(t["vary"]) * per_field + (t.get("variants") != "date_pairs")
        if t["width"] < needed:
            raise ValueError(f"token set {name!r}: width {t['width']} cannot hold "
                             f"{needed} tokens")
    clash = {f"tok_{t}" for t in spec["tokens"]} & {f"tok_{t}" for t in spec.get("token_sets", {})}
    if clash:
        raise ValueError(f"token and token-set names overlap: {sorted(clash)}")


def load_encoding_schema(version: int = CURRENT_ENCODING_VERSION) -> EncodingSchema:
    """Read and validate ``schemas/encoding/v<version>.json`` (default: the current one)."""
    return EncodingSchema.from_dict(load_schema("encoding", version))
