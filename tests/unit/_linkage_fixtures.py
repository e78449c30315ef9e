"""Small encoded-record fixtures for the linkage engine tests.

The engine depends only on column formats, so these helpers make them directly: bigram Bloom
filters (1024 bits = 128 bytes, double hashing with hashlib) and HMAC-SHA256 hex tokens under a
fixed test key. Nothing here is a real person.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from linkage.engine import LinkSpec

TEST_KEY = b"pathlink-test-key-not-a-secret!!"
FILTER_BYTES = 128
K = 20


def bloom(value: str | None, n_bytes: int = FILTER_BYTES, k: int = K) -> bytes | None:
    """Bigram Bloom filter of ``value`` (padded with '_'), or None."""
    if not value:
        return None
    bits = bytearray(n_bytes)
    n_bits = 8 * n_bytes
    padded = f"_{value}_"
    for i in range(len(padded) - 1):
        digest = hashlib.sha256(padded[i:i + 2].encode()).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:16], "little") | 1
        for j in range(k):
            pos = (h1 + j * h2) % n_bits
            bits[pos // 8] |= 1 << (pos % 8)
    return bytes(bits)


def token(*parts: str | None) -> str | None:
    """Hex HMAC-SHA256 token of the parts, None if any part is missing."""
    if any(not p for p in parts):
        return None
    message = "\x1f".join(parts).encode()
    return hmac.new(TEST_KEY, message, hashlib.sha256).hexdigest()


def encode(people: list[dict]) -> pd.DataFrame:
    """Encode dicts with partner_id, partner_record_id, given, family, dob (ISO), ssn."""
    rows = []
    for p in people:
        dob = p.get("dob")
        rows.append({
            "record_key": f"{p['partner_id']}:{p['partner_record_id']}",
            "partner_id": p["partner_id"],
            "tok_ssn": token(p.get("ssn")),
            "tok_name_dob": token(p.get("family"), p.get("given"), dob),
            "bf_given_name": bloom(p.get("given")),
            "bf_family_name": bloom(p.get("family")),
            "bf_dob": bloom(dob.replace("-", "") if dob else None, n_bytes=32, k=10),
            "birth_year": int(dob[:4]) if dob else None,
            "sex": p.get("sex"),
        })
    frame = pd.DataFrame(rows)
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    return frame


SPEC_DICT = {
    "version": "pathlink-linkage/1",
    "link_type": "link_and_dedupe",
    "blocking": {
        "token_columns": ["tok_ssn", "tok_name_dob"],
        "lsh": [{"name": "names", "columns": ["bf_given_name", "bf_family_name"], "bands": 30,
                 "bits_per_band": 32, "seed": 7}],
        "max_block_size": 50,
    },
    "comparisons": [
        {"name": "given_name", "kind": "dice", "column": "bf_given_name",
         "thresholds": [0.95, 0.85, 0.7]},
        {"name": "family_name", "kind": "dice", "column": "bf_family_name",
         "thresholds": [0.95, 0.85, 0.7]},
        {"name": "dob", "kind": "dice", "column": "bf_dob", "thresholds": [0.95, 0.7]},
        {"name": "ssn", "kind": "exact", "column": "tok_ssn"},
        {"name": "birth_year", "kind": "year_diff", "column": "birth_year",
         "thresholds": [0, 1]},
    ],
    "fellegi_sunter": {
        "u_sample_size": 2000, "u_seed": 3, "em_max_iterations": 50, "em_tolerance": 1e-6,
        "initial_match_prior": 0.1, "match_weight_threshold": 0.0,
        "possible_weight_threshold": -5.0, "overwhelming_weight": 40.0,
    },
    "clustering": {"ssn_token_column": "tok_ssn", "birth_year_column": "birth_year",
                   "max_birth_year_gap": 1},
}


def spec(**overrides) -> LinkSpec:
    """The test spec, with top-level sections replaced by ``overrides``."""
    import copy

    data = copy.deepcopy(SPEC_DICT)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return LinkSpec.from_dict(data)
