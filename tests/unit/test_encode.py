"""Tests for linkage.encode (schema v3): keyed tokens, token sets and Bloom filters from library
primitives, the schema, no raw PII out."""

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
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from linkage.encode import (
    EncodingSchema,
    RetiredEncodingError,
    _kernels,
    dice,
    encode_participants,
    load_encoding_schema,
    prf,
    token_set_values,
    validate_encoding_schema,
)
from schemas import load_meta_schema, load_schema, validate_against_meta_schema

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


def v3_with(**changes: object) -> EncodingSchema:
    """The current schema with top-level sections changed (a test variant, still v3)."""
    spec = copy.deepcopy(load_schema("encoding", 3))
    for key, value in changes.items():
        spec[key] = value
    return EncodingSchema.from_dict(spec)


def test_columns_attrs_and_index(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(), person()), SECRET, schema)
    assert list(encoded.index) == ["r0", "r1"]
    assert tuple(encoded.columns) == schema.columns()
    assert encoded["birth_year"].dtype == "Int64"
    assert encoded["birth_year"].tolist() == [1990, 1990]
    assert encoded.attrs == {"key_fingerprint": SECRET.fingerprint,
                             "encoding_schema": "pathlink-encoding/3"}
    assert re.fullmatch(r"[0-9a-f]{64}", encoded.loc["r0", "tok_t4_ssn"])


def test_token_is_documented_hmac(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person()), SECRET, schema)
    key = SECRET.subkey(f"token/t8_first_last/v{schema.version}")
    message = b"john\x1fsmith"
    assert encoded.loc["r0", "tok_t8_first_last"] == hmac.new(key, message,
                                                              hashlib.sha256).hexdigest()


RFC4231 = [  # (key, data, HMAC-SHA256), RFC 4231 test cases 1, 2, 3, 4, 6, 7
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
     b"block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize(("key", "data", "expected"), RFC4231)
def test_library_hmac_passes_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    assert prf.hmac_sha256(key, data).hex() == expected
    buffer = np.frombuffer(data, dtype=np.uint8)
    assert prf.hmac_sha256_slices(key, buffer, np.array([0, len(data)])).hex() == expected


def test_batched_hmac_matches_stdlib_for_all_lengths() -> None:
    key = b"k" * 32
    messages = [bytes(range(65, 65 + (n % 50))) * (1 + n // 50) for n in range(160)]
    assert prf.hmac_sha256_many(key, messages) == [hmac.digest(key, m, "sha256")
                                                  for m in messages]
    offsets = np.concatenate(([0], np.cumsum([len(m) for m in messages])))
    joined = prf.hmac_sha256_slices(key, np.frombuffer(b"".join(messages), np.uint8), offsets)
    assert joined == b"".join(hmac.digest(key, m, "sha256") for m in messages)


def test_keystreams_are_aes_ctr_of_the_library() -> None:
    key = bytes(range(32))
    nonces = np.frombuffer(hashlib.sha256(b"n").digest()[:12] * 3, np.uint8).reshape(3, 12).copy()
    nonces[1, 0] ^= 1
    words = prf.ctr_keystreams(key, nonces, 100, chunk_bytes=64)  # several chunks
    for row, nonce in zip(words, nonces, strict=True):
        encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(nonce) + bytes(4))).encryptor()
        assert row.tobytes() == encryptor.update(bytes(200))


def test_no_hand_written_hash_or_statistical_generator_in_keyed_code() -> None:
    """Issue 21: every keyed primitive comes from an audited library."""
    banned = re.compile(r"xoshiro|splitmix|0x428A2F98|_compress_lanes|hmac_pads|Philox|"
                        r"default_rng|random\.Random|np\.random", re.I)
    keyed = [*(ROOT / "linkage" / "encode").rglob("*.py"), *(ROOT / "keys").rglob("*.py")]
    assert len(keyed) >= 8
    for path in keyed:
        found = banned.search(path.read_text())
        assert not found, f"{path}: {found and found.group(0)}"
    assert not (ROOT / "linkage" / "bloom.py").exists()


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
        " for c in e.columns if c.startswith(('tok_', 'bf_', 'ts_'))}))\n"
    )
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run([sys.executable, "-c", code, str(ROOT), here],
                          capture_output=True, text=True, check=True)
    other = json.loads(done.stdout)
    for column, values in other.items():
        here = [v if v is None or isinstance(v, str) else v.hex() for v in first[column]]
        assert here == values, column


def test_token_none_when_any_field_missing(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(ssn=None), person(dob=None)), SECRET, schema)
    assert encoded.loc["r0", "tok_t4_ssn"] is None
    assert encoded.loc["r1", "tok_t14_dob"] is None
    assert encoded.loc["r1", "tok_t8_first_last"] is not None  # no dob in it


def test_missing_fields_and_columns_give_none(schema: EncodingSchema) -> None:
    encoded = encode_participants(pd.DataFrame({"given_name": ["ann"]}), SECRET, schema)
    assert encoded.loc[0, "bf_given_name"] is not None
    assert encoded.loc[0, "tok_t8_first_last"] is None
    assert encoded.loc[0, "ts_names_edit"] is None
    assert encoded.loc[0, "bf_address"] is None


def test_different_key_gives_different_tokens_and_fingerprint(schema: EncodingSchema) -> None:
    a = encode_participants(frame(person()), SECRET, schema)
    b = encode_participants(frame(person()), OTHER, schema)
    assert a.attrs["key_fingerprint"] != b.attrs["key_fingerprint"]
    for column in a.columns:
        if column.startswith(("tok_", "bf_", "ts_")):
            assert a.loc["r0", column] != b.loc["r0", column], column


def test_bloom_similarity(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(given_name="jon"), person(given_name="john"), person(given_name="maria")),
        SECRET, schema,
    )
    jon, john, maria = encoded["bf_given_name"]
    assert dice(jon, john) > 0.6
    assert dice(jon, maria) < 0.3
    assert dice(jon, jon) == 1.0


def test_filter_lengths_equal_schema(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person()), SECRET, schema)
    for name in schema.bloom:
        assert len(encoded.loc["r0", f"bf_{name}"]) * 8 == schema.encoded_bits(name)
    for name in schema.token_sets:
        assert len(encoded.loc["r0", f"ts_{name}"]) == schema.token_set_bytes(name)


@pytest.mark.parametrize(
    "hardening",
    [{"salt": "birth_year"}, {"balance": True}, {"xor_fold": True}, {"blip_probability": 0.1},
     {"salt": "dob", "blip_probability": 0.05, "balance": True, "xor_fold": True}],
)
def test_hardenings_deterministic_and_sized(hardening: dict) -> None:
    base = copy.deepcopy(load_schema("encoding", 3)["hardening"])
    base.update({"applies_to": ["given_name"], "salt_by_field": {}, **hardening})
    if "salt" not in hardening:
        base["salt"] = None
    schema = v3_with(hardening=base)
    records = frame(person(), person(), person(given_name="jon"))
    encoded = encode_participants(records, SECRET, schema)
    again = encode_participants(records, SECRET, schema)
    assert encoded["bf_given_name"].tolist() == again["bf_given_name"].tolist()
    assert encoded.loc["r0", "bf_given_name"] == encoded.loc["r1", "bf_given_name"]
    assert len(encoded.loc["r0", "bf_given_name"]) * 8 == schema.encoded_bits("given_name")
    assert dice(encoded.loc["r0", "bf_given_name"], encoded.loc["r2", "bf_given_name"]) > 0.4


def test_blip_flips_about_its_probability() -> None:
    base = copy.deepcopy(load_schema("encoding", 3)["hardening"])
    plain = v3_with(hardening={**base, "applies_to": [], "salt_by_field": {}})
    noisy = v3_with(hardening={**base, "applies_to": ["address"], "salt": None,
                               "salt_by_field": {}, "blip_probability": 0.1})
    records = frame(*[person(street=f"{n} MAIN ST") for n in range(40)])
    a = np.unpackbits(np.frombuffer(b"".join(encode_participants(records, SECRET, plain)[
        "bf_address"]), np.uint8))
    b = np.unpackbits(np.frombuffer(b"".join(encode_participants(records, SECRET, noisy)[
        "bf_address"]), np.uint8))
    assert 0.08 < float((a != b).mean()) < 0.12


def test_salt_by_field_overrides_the_salt_per_filter(schema: EncodingSchema) -> None:
    assert [schema.hardening.salt_for(f) for f in ("given_name", "full_name", "address")] == \
        [("dob",), ("birth_year",), ("dob",)]
    day_typo = encode_participants(frame(person(), person(dob="1990-04-08")), SECRET, schema)
    assert dice(*day_typo["bf_given_name"]) < 0.5       # dob salt: other day, unrelated
    assert day_typo["bf_full_name"].iloc[0] == day_typo["bf_full_name"].iloc[1]  # same year
    year = encode_participants(frame(person(), person(dob="1991-04-07")), SECRET, schema)
    assert dice(*year["bf_full_name"]) < 0.5
    spec = copy.deepcopy(load_schema("encoding", 3))
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
    assert encoded["tok_t11_names_sorted"].iloc[0] == encoded["tok_t11_names_sorted"].iloc[1]
    assert encoded["tok_t8_first_last"].iloc[0] != encoded["tok_t8_first_last"].iloc[1]


def test_dob_tokens_give_partial_agreement(schema: EncodingSchema) -> None:
    encoded = encode_participants(
        frame(person(), person(dob="1990-07-04"), person(dob="1991-04-07"),
              person(dob="1991-04-07", given_name="maria"), person(dob="1985-01-01")),
        SECRET, schema)
    assert encoded["tok_t15_dob_unordered"].iloc[0] == encoded["tok_t15_dob_unordered"].iloc[1]
    assert encoded["tok_t14_dob"].iloc[0] != encoded["tok_t14_dob"].iloc[1]
    parts, present = token_set_values(encoded["ts_names_dob_parts"])
    assert present.all() and parts.shape[1] == 3
    shared = [len(set(parts[0]) & set(parts[i])) for i in range(5)]
    # a year typo keeps month-day with the same names; other names or dobs share nothing
    assert shared == [3, 0, 1, 0, 0]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("tokens"),
        lambda s: s["bloom"]["given_name"].update(filter_bits=500),
        lambda s: s["bloom"]["given_name"].update(k=0),
        lambda s: s["tokens"].update(t99=["no_such_field"]),
        lambda s: s["hardening"].update(salt="no_such_field"),
        lambda s: s.update(secret="c2VjcmV0"),
        lambda s: s.update(id="pathlink-encoding/2"),
        lambda s: s["hardening"].update(applies_to=["nope"]),
        lambda s: s["token_sets"]["names_edit"].update(width=8),
        lambda s: s["token_sets"]["names_edit"].update(vary=["dob"]),
        lambda s: s["passthrough"].append("ssn"),
    ],
)
def test_schema_validation_rejects_bad_schema(mutate) -> None:
    spec = copy.deepcopy(load_schema("encoding", 3))
    mutate(spec)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_encoding_schema(spec)


def test_meta_schema_validator_built_once_raises_what_jsonschema_validate_raises() -> None:
    """The compiled validator (meta-schema checked once a process) finds the same first error,
    with the same path and message, as `jsonschema.validate`, which re-checks it every call."""
    for kind, version, mutate in (
            ("encoding", 3, lambda s: s["bloom"]["given_name"].update(k=0)),
            ("encoding", 3, lambda s: s.update(secret="c2VjcmV0")),
            ("linkage", 5, lambda s: s["blocking"].update(max_block_size="big")),
            ("linkage", 5, lambda s: s.update(version="pathlink-linkage/99"))):
        spec = copy.deepcopy(load_schema(kind, version))
        validate_against_meta_schema(kind, spec)  # the shipped version is valid
        mutate(spec)
        with pytest.raises(jsonschema.ValidationError) as ours:
            validate_against_meta_schema(kind, spec)
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(spec, load_meta_schema(kind))
        assert (ours.value.message, list(ours.value.absolute_path)) == (
            theirs.value.message, list(theirs.value.absolute_path))


@pytest.mark.parametrize("version", [1, 2, 3])
def test_schema_has_no_secret_like_fields(version: int) -> None:
    spec = load_schema("encoding", version)
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


def test_old_schemas_load_but_cannot_be_encoded() -> None:
    for version in (1, 2):
        old = load_encoding_schema(version)
        assert old.id == f"pathlink-encoding/{version}" and not old.encodable
        with pytest.raises(RetiredEncodingError, match="pathlink-encoding/3"):
            encode_participants(frame(person()), SECRET, old)


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
               "ZYXWVUT", "987651234", "1911-11-11", "11-11"]
    for needle in needles:
        for blob in blobs:
            assert needle.encode() not in blob
            assert needle.lower().encode() not in blob


def test_unit_separator_in_value_rejected(schema: EncodingSchema) -> None:
    with pytest.raises(ValueError, match="unit separator"):
        encode_participants(frame(person(family_name="a\x1fb")), SECRET, schema)


# --------------------------------------------------------------------------- token sets


def _deletions(value: str, limit: int = 15) -> set[str]:
    return {value} | {value[:i] + value[i + 1:] for i in range(min(len(value), limit))}


def _variant_pairs(name: tuple[str, str]) -> set[tuple[str, str]]:
    """The token set's plaintext, brute force: the names with either one changed by at most
    one deletion."""
    given, family = name
    return {(g, family) for g in _deletions(given)} | {(given, f) for f in _deletions(family)}


def _within_one_edit(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return bool(_variant_pairs(a) & _variant_pairs(b))


def test_names_token_set_shares_a_token_exactly_within_one_edit(schema: EncodingSchema) -> None:
    rng = np.random.default_rng(3)
    names = [("jon", "smith"), ("john", "smith"), ("jonh", "smith"), ("jon", "smyth"),
             ("jno", "smith"), ("maria", "smith"), ("jon", "smithe"), ("jo", "smit"),
             ("john", "smithe")]
    letters = list("abcdeno")
    for _ in range(40):
        names.append(("".join(rng.choice(letters, 4)), "".join(rng.choice(letters, 3))))
    records = frame(*[person(given_name=g, family_name=f) for g, f in names])
    encoded = encode_participants(records, SECRET, schema)
    tokens, present = token_set_values(encoded["ts_names_edit"])
    assert present.all() and tokens.shape[1] == schema.token_sets["names_edit"].width
    assert (np.diff(tokens.astype(np.float64), axis=1) >= 0).all()  # rows sorted
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            shared = bool(set(tokens[i]) & set(tokens[j]))
            assert shared == _within_one_edit(names[i], names[j]), (names[i], names[j])
    # one edit in one name (substitution, insertion, deletion, adjacent transposition), the
    # other equal, always shares; an unrelated name never does
    assert _within_one_edit(("jon", "smith"), ("jno", "smith"))
    assert _within_one_edit(("jon", "smith"), ("jon", "smyth"))
    assert not _within_one_edit(("jon", "smith"), ("maria", "smith"))


def test_token_set_size_does_not_tell_the_name_length(schema: EncodingSchema) -> None:
    encoded = encode_participants(frame(person(given_name="al", family_name="wu"),
                                        person(given_name="maximiliano",
                                               family_name="rodriguezgarcia")), SECRET, schema)
    tokens, _ = token_set_values(encoded["ts_names_edit"])
    assert all(len(set(row)) == tokens.shape[1] for row in tokens)  # padded, no repeats


# --------------------------------------------------------------------------- salted filters


def _uniform_below(words, n: int) -> int:
    """Lemire with rejection, as docs/encoding.md states it (16-bit words)."""
    while True:
        m = next(words) * n
        if (m & 0xFFFF) >= (0x10000 - n) % n:
            return m >> 16


def reference_salted_filter(secret: StandInSecret, field: str, parts: list[str], salt: str,
                            k: int, n_bits: int) -> bytes:
    """docs/encoding.md's salted construction, written out independently in pure Python
    (HMAC from hmac, AES-CTR from cryptography's CTR mode)."""
    key = secret.subkey(f"bloom/{field}")
    grams = set()
    for part in parts:
        padded = ("\x01" + part + "\x01").encode()
        grams |= {padded[i : i + 2] for i in range(len(padded) - 1)}
    nonce = hmac.digest(secret.subkey(f"bloom/{field}/salt"), salt.encode(), "sha256")[:12]
    stream = Cipher(algorithms.AES(secret.subkey(f"bloom/{field}/salt/stream")),
                    modes.CTR(nonce + bytes(4))).encryptor().update(bytes(2 * (n_bits + 4096)))
    words = iter(int.from_bytes(stream[i : i + 2], "little") for i in range(0, len(stream), 2))
    rotations = [_uniform_below(words, n_bits) for _ in range(k)]
    permutation = list(range(n_bits))
    for i in range(n_bits - 1, 0, -1):
        j = _uniform_below(words, i + 1)
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
    assert schema.hardening.salt == ("dob",)
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
    assert 0.6 < dice(full[0], full[2]) < 1.0
    assert full[3] is not None and 0.3 < dice(full[0], full[3]) < 0.9
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
    assert dice(address[0], address[1]) > 0.8
    assert dice(address[0], address[2]) > 0.85
    assert dice(address[0], address[3]) < 0.5
    assert address[4] is not None and dice(address[0], address[4]) < 0.5
    assert address[5] is None
    # salted by dob: the same address under another dob is unrelated
    moved = encode_participants(frame(person(city="HARTFORD", dob="1990-04-08")), SECRET, schema)
    assert dice(address[0], moved["bf_address"].iloc[0]) < 0.5


def test_salt_makes_same_name_unrelated_and_varies_its_weight(schema: EncodingSchema) -> None:
    dobs = [f"19{60 + i % 40:02d}-0{1 + i % 9}-1{i % 10}" for i in range(60)]
    encoded = encode_participants(frame(*[person(dob=d) for d in dobs]), SECRET, schema)
    filters = encoded["bf_family_name"].tolist()
    assert max(dice(filters[0], f) for f in filters[1:]) < 0.5
    # rotations re-draw collisions between hash functions per salt, so the filter's weight is
    # not a per-name constant an attacker could pool across salt groups
    weights = {int(np.unpackbits(np.frombuffer(f, np.uint8)).sum()) for f in filters}
    assert len(weights) >= 5
    pair = encode_participants(frame(person(), person(family_name="smyth")), SECRET, schema)
    assert dice(*pair["bf_family_name"]) > 0.6


def test_salt_transform_is_a_permutation() -> None:
    words = np.frombuffer(hashlib.sha256(b"w").digest() * 200, dtype="<u2").copy()
    rotations, permutation = _kernels.salt_transform(words, 20, 512)
    assert sorted(permutation.tolist()) == list(range(512))
    assert ((rotations >= 0) & (rotations < 512)).all()
    assert (_kernels.salt_transform(words, 20, 512)[1] == permutation).all()


def test_multi_source_bloom_schema_rules() -> None:
    spec = copy.deepcopy(load_schema("encoding", 3))
    spec["bloom"]["given_name"].update(source=["dob", "ssn"], elements="date_parts")
    with pytest.raises(ValueError, match="single source"):
        validate_encoding_schema(spec)
    spec = copy.deepcopy(load_schema("encoding", 3))
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
    assert encoded["tok_t8_first_last"].iloc[0] == encoded["tok_t8_first_last"].iloc[4]
    assert encoded["birth_year"].tolist()[0] == 2001 and pd.isna(encoded["birth_year"].iloc[1])
    empty = encode_participants(pd.DataFrame({"given_name": [None, None]}), SECRET, schema)
    assert empty["tok_t8_first_last"].isna().all() and empty["birth_year"].isna().all()


def test_tokens_from_a_second_process_are_identical(schema: EncodingSchema, monkeypatch) -> None:
    """The helper process (a fresh standard-library interpreter) gives the same tokens; a key
    longer than a block and an empty message take the same path."""
    key = b"k" * 100
    buffer = np.frombuffer(b"abc" + b"x" * 300, dtype=np.uint8)
    offsets = np.array([0, 0, 3, 303])
    monkeypatch.setattr(prf, "POOL_MIN_MESSAGES", 1)
    monkeypatch.setattr(prf, "_helper_wanted", lambda: True)
    assert prf.hmac_sha256_jobs([(key, buffer, offsets)] * 2) == [
        hmac.digest(key, b"", "sha256") + hmac.digest(key, b"abc", "sha256")
        + hmac.digest(key, b"x" * 300, "sha256")] * 2
    records = frame(*[person(given_name=f"name{i}", ssn=f"{100000000 + i}") for i in range(40)])
    here = encode_participants(records, SECRET, schema)
    monkeypatch.setattr(prf, "POOL_MIN_MESSAGES", 10)
    monkeypatch.setattr(prf, "_helper_wanted", lambda: True)
    pooled = encode_participants(records, SECRET, schema)
    pd.testing.assert_frame_equal(here, pooled)
