"""Tests for linkage.encode: keyed tokens, keyed Bloom filters, schema, no raw PII out."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from linkage import bloom
from linkage.encode import (
    EncodingSchema,
    encode_participants,
    load_encoding_schema,
    validate_encoding_schema,
)
from schemas import load_schema

ROOT = Path(__file__).resolve().parents[2]


class StandInSecret:
    """Duck-types keys.SharedSecret: ``subkey(purpose)`` and ``fingerprint``."""

    def __init__(self, material: bytes) -> None:
        self._material = material
        self.fingerprint = hashlib.sha256(b"fp" + material).hexdigest()[:16]

    def subkey(self, purpose: str) -> bytes:
        return hmac.digest(self._material, b"pathlink/" + purpose.encode(), "sha256")


SECRET = StandInSecret(b"\x01" * 32)
OTHER = StandInSecret(b"\x02" * 32)


def person(**overrides: object) -> dict[str, object]:
    base = {
        "given_name": "john",
        "given_name_canonical": "john",
        "family_name": "smith",
        "dob": "1990-04-07",
        "ssn": "123456789",
        "sex": "M",
        "street": "12 MAIN ST",
        "city": "HARTFORD",
        "phone": "+18605551234",
        "email": "john.smith@example.org",
        "zip5": "06103",
        "zip3": "061",
        "given_name_phonetic": "JAN",
        "family_name_phonetic": "SNAT",
    }
    base.update(overrides)
    return base


def frame(*people: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(people), index=[f"r{i}" for i in range(len(people))])


@pytest.fixture(scope="module")
def schema() -> EncodingSchema:
    return load_encoding_schema()  # the current schema


def test_columns_attrs_and_index(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(), person(given_name="maria")), SECRET, schema)
    assert list(encoded.index) == ["r0", "r1"]
    assert {f"tok_{t}" for t in schema.tokens} <= set(encoded.columns)
    assert {f"bf_{f}" for f in schema.bloom} <= set(encoded.columns)
    assert encoded["birth_year"].dtype == "Int64"
    assert encoded["birth_year"].tolist() == [1990, 1990]
    assert encoded.attrs == {"key_fingerprint": SECRET.fingerprint,
                             "encoding_schema": "pathlink-encoding/2"}
    token = encoded.loc["r0", "tok_t4_ssn"]
    assert re.fullmatch(r"[0-9a-f]{64}", token)


def test_token_is_documented_hmac(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person()), SECRET, schema)
    key = SECRET.subkey(f"token/t3_ssn_dob/v{schema.version}")
    message = b"123456789\x1f1990-04-07"
    assert encoded.loc["r0", "tok_t3_ssn_dob"] == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_numba_hmac_matches_stdlib_for_all_lengths() -> None:
    key = b"k" * 32
    inner, outer = bloom.hmac_pads(key)
    messages = [bytes(range(65, 65 + (n % 50))) * (1 + n // 50) for n in range(160)]
    lengths = np.array([len(m) for m in messages], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    digests = bloom.hmac_sha256_rows(
        inner, outer, np.zeros(0, np.uint8), np.zeros(2, np.int64),
        np.frombuffer(b"".join(messages), np.uint8), starts[None, :], lengths[None, :],
    )
    for row, message in zip(digests, messages, strict=True):
        assert bytes(row) == hmac.digest(key, message, "sha256")


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_tokens_stable_across_runs_and_processes(schema: EncodingSchema) -> None:
    records = frame(person(), person(given_name="maria", ssn=None))
    first = encode_participants(records, SECRET, schema)
    second = encode_participants(records.copy(), SECRET, schema)
    pd.testing.assert_frame_equal(first, second)
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])\n"
        "from test_encode import SECRET, frame, person\n"
        "from linkage.encode import encode_participants, load_encoding_schema\n"
        "e = encode_participants(frame(person(), person(given_name='maria', ssn=None)), SECRET,"
        " load_encoding_schema())\n"
        "print(json.dumps({c: [v if v is None or isinstance(v, str) else v.hex() for v in e[c]]"
        " for c in e.columns if c.startswith(('tok_', 'bf_'))}))\n"
    )
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run([sys.executable, "-c", code, str(ROOT), here],
                          capture_output=True, text=True, check=True)
    other = json.loads(done.stdout)
    for column, values in other.items():
        here = [v if v is None or isinstance(v, str) else v.hex() for v in first[column]]
        assert here == values, column


def test_token_none_when_any_field_missing(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(ssn=None), person(sex=None), person(dob=""), person(zip3=None)), SECRET, schema
    )
    assert encoded["tok_t4_ssn"].iloc[0] is None
    assert encoded["tok_t3_ssn_dob"].iloc[0] is None
    assert encoded["tok_t1_last_finit_sex_dob"].iloc[1] is None
    assert encoded["tok_t1_last_finit_sex_dob"].iloc[0] is not None
    assert encoded.loc["r2"].filter(like="dob").isna().all()
    assert pd.isna(encoded.loc["r2", "birth_year"])
    assert encoded["tok_t2_last_first_dob_zip3"].iloc[3] is None
    assert encoded["tok_t4_ssn"].iloc[3] is not None


def test_missing_fields_and_columns_give_none(schema: EncodingSchema) -> None:
    records = pd.DataFrame({"given_name": ["ann"], "family_name": ["lee"], "dob": ["2001-02-03"]})
    encoded = encode_participants(records, SECRET, schema)
    assert encoded.loc[0, "bf_phone"] is None
    assert encoded.loc[0, "bf_email"] is None
    assert encoded.loc[0, "tok_t4_ssn"] is None
    assert encoded.loc[0, "tok_t6_swapped"] is not None


def test_different_key_gives_different_tokens_and_fingerprint(schema: EncodingSchema) -> None:
    a = encode_participants(frame(person()), SECRET, schema)
    b = encode_participants(frame(person()), OTHER, schema)
    assert a.attrs["key_fingerprint"] != b.attrs["key_fingerprint"]
    for column in a.columns:
        if column.startswith(("tok_", "bf_")):
            assert a.loc["r0", column] != b.loc["r0", column], column


def test_bloom_similarity(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(given_name="jon"), person(given_name="john"), person(given_name="maria")),
        SECRET, schema,
    )
    jon, john, maria = encoded["bf_given_name"]
    assert bloom.dice(jon, john) > 0.6
    assert bloom.dice(jon, maria) < 0.3
    assert bloom.dice(jon, jon) == 1.0


def test_filter_lengths_equal_schema(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person()), SECRET, schema)
    for name in schema.bloom:
        assert len(encoded.loc["r0", f"bf_{name}"]) * 8 == schema.encoded_bits(name)


@pytest.mark.parametrize(
    "hardening",
    [{"salt": "birth_year"}, {"balance": True}, {"xor_fold": True}, {"blip_probability": 0.1},
     {"salt": "dob", "blip_probability": 0.05, "balance": True, "xor_fold": True}],
)
def test_hardenings_deterministic_and_sized(hardening: dict) -> None:
    spec = copy.deepcopy(load_schema("encoding", 1))
    spec["hardening"].update(hardening)
    schema = EncodingSchema.from_dict(spec)
    records = frame(person(), person(), person(given_name="jon"))
    encoded = encode_participants(records, SECRET, schema)
    again = encode_participants(records, SECRET, schema)
    assert encoded["bf_given_name"].tolist() == again["bf_given_name"].tolist()
    assert encoded.loc["r0", "bf_given_name"] == encoded.loc["r1", "bf_given_name"]
    assert len(encoded.loc["r0", "bf_given_name"]) * 8 == schema.encoded_bits("given_name")
    assert bloom.dice(encoded.loc["r0", "bf_given_name"], encoded.loc["r2", "bf_given_name"]) > 0.4


def test_salt_changes_filter_when_year_differs() -> None:
    spec = copy.deepcopy(load_schema("encoding", 1))
    spec["hardening"]["salt"] = "birth_year"
    schema = EncodingSchema.from_dict(spec)
    encoded = encode_participants(frame(person(), person(dob="1991-04-07")), SECRET, schema)
    assert bloom.dice(*encoded["bf_given_name"]) < 0.5


def test_salt_by_field_overrides_the_salt_per_filter() -> None:
    spec = copy.deepcopy(load_schema("encoding", 1))
    spec["hardening"]["applies_to"] = ["given_name", "family_name", "full_name"]
    spec["hardening"]["salt_by_field"] = {"full_name": "birth_year"}
    schema = EncodingSchema.from_dict(spec)
    assert [schema.hardening.salt_for(f) for f in ("given_name", "full_name", "dob")] == \
        ["dob", "birth_year", None]
    day_typo = encode_participants(frame(person(), person(dob="1990-04-08")), SECRET, schema)
    assert bloom.dice(*day_typo["bf_given_name"]) < 0.5       # dob salt: other day, unrelated
    assert day_typo["bf_full_name"].iloc[0] == day_typo["bf_full_name"].iloc[1]  # same year
    year = encode_participants(frame(person(), person(dob="1991-04-07")), SECRET, schema)
    assert bloom.dice(*year["bf_full_name"]) < 0.5
    spec["hardening"]["salt_by_field"] = {"street": "dob"}  # not in applies_to
    with pytest.raises(ValueError, match="outside applies_to"):
        EncodingSchema.from_dict(spec)


def test_swapped_names_token_matches(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(given_name="lee", family_name="wong"), person(given_name="wong",
                                                                    family_name="lee")),
        SECRET, schema,
    )
    assert encoded["tok_t6_swapped"].iloc[0] == encoded["tok_t6_swapped"].iloc[1]
    assert encoded["tok_t2_last_first_dob_zip3"].iloc[0] != encoded[
        "tok_t2_last_first_dob_zip3"].iloc[1]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("tokens"),
        lambda s: s["bloom"]["given_name"].update(filter_bits=500),
        lambda s: s["bloom"]["given_name"].update(k=0),
        lambda s: s["tokens"].update(t9=["no_such_field"]),
        lambda s: s["hardening"].update(salt="ssn"),
        lambda s: s.update(secret="c2VjcmV0"),
        lambda s: s.update(id="pathlink-encoding/2"),
        lambda s: s["hardening"].update(applies_to=["nope"]),
    ],
)
def test_schema_validation_rejects_bad_schema(mutate) -> None:
    spec = copy.deepcopy(load_schema("encoding", 1))
    mutate(spec)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_encoding_schema(spec)


def test_schema_has_no_secret_like_fields() -> None:
    text = (ROOT / "schemas" / "encoding" / "v1.json").read_text()
    spec = json.loads(text)
    validate_encoding_schema(spec)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                assert not re.search(r"secret|password|passphrase|material|salt_?value|^key$",
                                     key, re.I), key
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            assert not re.fullmatch(r"[A-Za-z0-9+/=_-]{24,}", node), node

    walk(spec)


def test_encoded_frame_holds_no_raw_pii(schema: EncodingSchema) -> None:
    canaries = {
        "given_name": "zyxwvutsrq",
        "given_name_canonical": "zyxwvutsrq",
        "family_name": "qrstuvwxyzz",
        "phone": "+18609871234",
        "email": "canary.zyxw@example.org",
        "street": "987 ZYXWVUT ST",
        "ssn": "987651234",
        "dob": "1911-11-11",
    }
    records = frame(person(**canaries), person())
    encoded = encode_participants(records, SECRET, schema)
    parquet = io.BytesIO()
    encoded.to_parquet(parquet)
    csv_text = encoded.to_csv()
    blobs = [parquet.getvalue(), csv_text.encode(), repr(encoded.to_dict()).encode()]
    needles = ["Zyxwvutsrq", "zyxwvutsrq", "qrstuvwxyzz", "8609871234", "canary.zyxw",
               "ZYXWVUT", "987651234", "1911-11-11"]
    for needle in needles:
        for blob in blobs:
            assert needle.encode() not in blob
            assert needle.lower().encode() not in blob


def test_unit_separator_in_value_rejected(schema: EncodingSchema) -> None:
    with pytest.raises(ValueError, match="unit separator"):
        encode_participants(frame(person(family_name="a\x1fb")), SECRET, schema)


# --------------------------------------------------------------------------- salted filters


def _xoshiro(state: list[int]):
    mask = (1 << 64) - 1
    s = list(state)

    def rotl(x: int, n: int) -> int:
        return ((x << n) | (x >> (64 - n))) & mask

    while True:
        result = (rotl((s[1] * 5) & mask, 7) * 9) & mask
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        yield result


def reference_salted_filter(secret: StandInSecret, field: str, parts: list[str], salt: str,
                            k: int, n_bits: int) -> bytes:
    """docs/encoding.md's salted construction, written out independently in pure Python."""
    key = secret.subkey(f"bloom/{field}")
    grams = set()
    for part in parts:
        padded = ("\x01" + part + "\x01").encode()
        grams |= {padded[i : i + 2] for i in range(len(padded) - 1)}
    stream = _xoshiro([int.from_bytes(hmac.digest(secret.subkey(f"bloom/{field}/salt"),
                                                  salt.encode(), "sha256")[8 * i : 8 * i + 8],
                                      "big") for i in range(4)])

    def bounded(n: int) -> int:
        return ((next(stream) >> 32) * n) >> 32

    rotations = [bounded(n_bits) for _ in range(k)]
    permutation = list(range(n_bits))
    for i in range(n_bits - 1, 0, -1):
        j = bounded(i + 1)
        permutation[i], permutation[j] = permutation[j], permutation[i]
    bits = [0] * n_bits
    for gram in grams:
        digest = b"".join(hmac.digest(key, len(gram).to_bytes(2, "big") + gram + bytes([b]),
                                      "sha256") for b in range((k + 15) // 16))
        for h in range(k):
            position = int.from_bytes(digest[2 * h : 2 * h + 2], "big") % n_bits
            bits[permutation[(position + rotations[h]) % n_bits]] = 1
    return np.packbits(np.array(bits, dtype=np.uint8)).tobytes()


def test_salted_filters_follow_documented_construction(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(), person(given_name="maria", dob="")), SECRET,
                                  schema)
    assert schema.hardening.salt == "dob"
    assert set(schema.hardening.applies_to) == {"given_name", "family_name", "full_name",
                                                "address"}
    assert schema.hardening.salt_for("full_name") == "birth_year"
    expected = {
        "full_name": reference_salted_filter(SECRET, "full_name", ["john", "smith"], "1990",
                                             10, 512),
        "given_name": reference_salted_filter(SECRET, "given_name", ["john"], "1990-04-07",
                                              20, 512),
        "family_name": reference_salted_filter(SECRET, "family_name", ["smith"], "1990-04-07",
                                               20, 512),
    }
    for field, value in expected.items():
        assert encoded.loc["r0", f"bf_{field}"] == value, field
    # a missing salt counts as the empty salt
    assert encoded.loc["r1", "bf_given_name"] == reference_salted_filter(
        SECRET, "given_name", ["maria"], "", 20, 512)


def test_full_name_filter_is_salted_by_birth_year_not_dob(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(), person(dob="1990-05-08"),
                                        person(dob="1991-04-07")), SECRET, schema)
    full = encoded["bf_full_name"].tolist()
    assert full[0] == full[1]                # a day/month typo keeps the full-name evidence
    assert bloom.dice(full[0], full[2]) < 0.5  # another birth year: unrelated
    assert encoded.loc["r0", "bf_given_name"] != encoded.loc["r1", "bf_given_name"]


def test_v1_schema_still_loads_with_its_unsalted_multi_field_filters() -> None:
    v1 = load_encoding_schema(1)
    assert v1.id == "pathlink-encoding/1"
    assert (v1.hardening.salt_for("full_name"), v1.hardening.salt_for("address")) == (None, None)
    assert "street" in v1.bloom and "street" not in load_encoding_schema().bloom


def test_full_name_filter_survives_swapped_names(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(given_name="lee", family_name="wong"),
              person(given_name="wong", family_name="lee"),
              person(given_name="lee", family_name="wang"),
              person(given_name="lee", family_name=None)),
        SECRET, schema,
    )
    full = encoded["bf_full_name"].tolist()
    assert full[0] == full[1]
    assert encoded["bf_given_name"].iloc[0] != encoded["bf_given_name"].iloc[1]
    assert 0.6 < bloom.dice(full[0], full[2]) < 1.0
    assert full[3] is not None and 0.3 < bloom.dice(full[0], full[3]) < 0.9
    assert len(full[0]) * 8 == schema.encoded_bits("full_name") == 512


def test_address_filter_unions_street_city_and_zip(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(city="HARTFORD"),
              person(city="HARTFORD", street="12 MAIN ST APT 3"),  # line 2 added
              person(city="HARTFORD", zip5="06106"),               # other ZIP, same street
              person(city="NEW BRITAIN", street="40 ELM ST", zip5="06051"),
              person(street=None, city=None, zip5="06103"),
              person(street=None, city=None, zip5=None)),
        SECRET, schema,
    )
    address = encoded["bf_address"].tolist()
    assert len(address[0]) * 8 == schema.encoded_bits("address") == 1024
    assert bloom.dice(address[0], address[1]) > 0.8
    assert bloom.dice(address[0], address[2]) > 0.85
    assert bloom.dice(address[0], address[3]) < 0.5
    assert address[4] is not None and bloom.dice(address[0], address[4]) < 0.5
    assert address[5] is None
    # salted by dob: the same address under another dob is unrelated
    moved = encode_participants(frame(person(city="HARTFORD", dob="1990-04-08")), SECRET, schema)
    assert bloom.dice(address[0], moved["bf_address"].iloc[0]) < 0.5


def test_salt_makes_same_name_unrelated_and_varies_its_weight(schema: EncodingSchema) -> None:
    dobs = [f"19{60 + i % 40:02d}-0{1 + i % 9}-1{i % 10}" for i in range(60)]
    encoded = encode_participants(frame(*[person(dob=d) for d in dobs]), SECRET, schema)
    filters = encoded["bf_family_name"].tolist()
    dice = [bloom.dice(filters[0], f) for f in filters[1:]]
    assert max(dice) < 0.5
    # rotations re-draw collisions between hash functions per salt, so the filter's weight is
    # not a per-name constant an attacker could pool across salt groups
    weights = {int(np.unpackbits(np.frombuffer(f, np.uint8)).sum()) for f in filters}
    assert len(weights) >= 5
    # same dob, similar names: Dice is kept within a salt group
    pair = encode_participants(frame(person(), person(family_name="smyth")), SECRET, schema)
    assert bloom.dice(*pair["bf_family_name"]) > 0.6


def test_salt_transform_is_a_permutation() -> None:
    state = np.array([1, 2, 3, 4], dtype=np.uint64)
    rotations, permutation = bloom.salt_transform(state, 20, 512)
    assert sorted(permutation.tolist()) == list(range(512))
    assert ((rotations >= 0) & (rotations < 512)).all()
    again = bloom.salt_transform(state, 20, 512)
    assert (again[1] == permutation).all()
    assert state.tolist() == [1, 2, 3, 4]


def test_multi_source_bloom_schema_rules() -> None:
    spec = copy.deepcopy(load_schema("encoding", 1))
    spec["bloom"]["dob"]["source"] = ["dob", "ssn"]
    with pytest.raises(ValueError, match="single source"):
        validate_encoding_schema(spec)
    spec = copy.deepcopy(load_schema("encoding", 1))
    spec["bloom"]["full_name"]["source"] = ["given_name"]
    with pytest.raises(jsonschema.ValidationError):
        validate_encoding_schema(spec)


def test_input_cleaning_missing_empty_and_non_string_values(schema: EncodingSchema) -> None:
    records = pd.DataFrame({
        "given_name": ["ann", "", None, float("nan"), "ann"],
        "family_name": ["lee", "lee", "lee", "lee", "lee"],
        "dob": ["2001-02-03", None, None, None, "2001-02-03"],
        "ssn": [123456789, "123456789", None, "", 123456789],
        "sex": ["F", "F", "F", "F", "F"],
    })
    encoded = encode_participants(records, SECRET, schema)
    assert encoded["tok_t4_ssn"].iloc[0] == encoded["tok_t4_ssn"].iloc[1] is not None
    assert encoded["tok_t4_ssn"].iloc[2] is None and encoded["tok_t4_ssn"].iloc[3] is None
    assert encoded["bf_given_name"].iloc[1:4].isna().all()
    assert encoded["tok_t1_last_finit_sex_dob"].iloc[0] == encoded[
        "tok_t1_last_finit_sex_dob"].iloc[4]
    assert encoded["birth_year"].tolist()[0] == 2001 and pd.isna(encoded["birth_year"].iloc[1])
    empty = encode_participants(pd.DataFrame({"given_name": [None, None]}), SECRET, schema)
    assert empty["tok_t1_last_finit_sex_dob"].isna().all() and empty["birth_year"].isna().all()
