"""Comparison: Dice kernel against a plain-Python reference, gamma levels, recordlinkage use."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import recordlinkage
from _linkage_fixtures import SPEC_DICT, bloom, encode, spec

from linkage.adapters import DiceFeature, compare_pairs
from linkage.compare import (
    ComparisonColumns,
    DiceTable,
    bloom_words,
    dice_levels,
    dice_similarity,
)
from linkage.engine import LinkSpec, usable_spec


def _reference_dice(a: bytes, b: bytes) -> float:
    ones_a = sum(bin(x).count("1") for x in a)
    ones_b = sum(bin(x).count("1") for x in b)
    both = sum(bin(x & y).count("1") for x, y in zip(a, b, strict=True))
    return 2 * both / (ones_a + ones_b) if ones_a + ones_b else 0.0


def test_dice_kernel_matches_reference_on_random_filters():
    rng = np.random.default_rng(1)
    filters = [bytes(rng.integers(0, 256, 128, dtype=np.uint8) & rng.integers(0, 256, 128,
                                                                              dtype=np.uint8))
               for _ in range(50)]
    filters.append(bytes(128))  # an empty filter: Dice 0, no division by zero
    words, counts, present = bloom_words(filters)
    left = rng.integers(0, len(filters), 500)
    right = rng.integers(0, len(filters), 500)
    got = dice_similarity(words, counts, left, right)
    expected = np.array([_reference_dice(filters[a], filters[b])
                         for a, b in zip(left, right, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert present.all()


def test_odd_length_filters_are_padded():
    a = bytes([0b1011, 0, 0, 7, 1])
    b = bytes([0b0011, 0, 0, 7, 0])
    words, counts, _ = bloom_words([a, b])
    assert words.shape == (2, 1)
    assert dice_similarity(words, counts, [0], [1])[0] == np.float32(2 * 5 / (7 + 5))


def test_gamma_levels_thresholds_and_nulls():
    # filters whose Dice with ``ref`` is exactly 1.0, 0.9, 0.8, 0.6 (20 bits set in each)

    def filt(bits):
        arr = np.zeros(1024, dtype=np.uint8)
        arr[list(bits)] = 1
        return np.packbits(arr, bitorder="little").tobytes()

    ref = filt(range(20))
    same = filt(range(20))
    d90 = filt([*list(range(18)), 100, 101])  # 2*18/40 = 0.9
    d80 = filt([*list(range(16)), 100, 101, 102, 103])  # 0.8
    d60 = filt(list(range(12)) + list(range(100, 108)))  # 0.6
    words, counts, present = bloom_words([ref, same, d90, d80, d60, None])
    levels = dice_levels(words, counts, present, [0, 0, 0, 0, 0, 5], [1, 2, 3, 4, 5, 0],
                         [0.95, 0.85, 0.7])
    assert levels.tolist() == [3, 2, 1, 0, -1, -1]
    assert levels.dtype == np.int8


def test_compare_pairs_exact_tokens_and_year_diff():
    encoded = encode([
        {"partner_id": "a", "partner_record_id": "1", "given": "maria", "family": "rivera",
         "dob": "1990-01-02", "ssn": "123456789"},
        {"partner_id": "b", "partner_record_id": "1", "given": "maria", "family": "rivera",
         "dob": "1991-01-02", "ssn": "123456789"},
        {"partner_id": "c", "partner_record_id": "1", "given": "mario", "family": "rivera",
         "dob": "1980-01-02", "ssn": "123456788"},
        {"partner_id": "d", "partner_record_id": "1", "given": "maria", "family": None,
         "dob": None},
    ])
    pairs = pd.MultiIndex.from_tuples([("a:1", "b:1"), ("a:1", "c:1"), ("a:1", "d:1")],
                                      names=["record_key_l", "record_key_r"])
    gammas = compare_pairs(pairs, encoded, spec())
    assert list(gammas.columns) == ["gamma_given_name", "gamma_family_name", "gamma_dob",
                                    "gamma_ssn", "gamma_birth_year"]
    assert gammas["gamma_ssn"].tolist() == [1, 0, -1]
    assert gammas["gamma_birth_year"].tolist() == [1, 0, -1]
    assert gammas["gamma_given_name"].tolist()[0] == 3
    assert gammas["gamma_family_name"].tolist() == [3, 3, -1]
    assert gammas.index.equals(pairs)
    assert (gammas.dtypes == np.int8).all()


def test_missing_column_gives_null_gamma():
    encoded = encode([{"partner_id": "a", "partner_record_id": "1", "given": "al"},
                      {"partner_id": "b", "partner_record_id": "1", "given": "al"}])
    columns = ComparisonColumns.build(encoded.drop(columns=["tok_ssn"]), spec())
    out = columns.compare(np.array([0]), np.array([1]))
    assert out["gamma_ssn"].tolist() == [-1]
    assert "tok_ssn" in columns.missing_columns


def test_dice_feature_in_recordlinkage_compare():
    df_a = pd.DataFrame({"bf": [bloom("jonathan"), bloom("amy"), None]}, index=["a1", "a2", "a3"])
    df_b = pd.DataFrame({"bf": [bloom("jonathon"), bloom("zoe")]}, index=["b1", "b2"])
    pairs = pd.MultiIndex.from_tuples([("a1", "b1"), ("a2", "b2"), ("a3", "b1")])
    comparer = recordlinkage.Compare()
    comparer.add(DiceFeature("bf", "bf", label="name_dice"))
    comparer.add(DiceFeature("bf", "bf", thresholds=[0.95, 0.7], label="name_gamma"))
    features = comparer.compute(pairs, df_a, df_b)
    assert features.loc[("a1", "b1"), "name_dice"] > 0.7
    assert features.loc[("a2", "b2"), "name_dice"] < 0.5
    assert np.isnan(features.loc[("a3", "b1"), "name_dice"])
    assert features["name_gamma"].tolist() == [1, 0, -1]


def test_dice_table_compares_several_fields_in_one_pass():
    rng = np.random.default_rng(2)
    cols = [[bytes(rng.integers(0, 256, width, dtype=np.uint8)) for _ in range(40)]
            for width in (64, 32, 128)]
    cols[1][3] = None
    thresholds = [(0.9, 0.6), (0.95, 0.55), (0.8, 0.6, 0.4)]
    left, right = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    table = DiceTable.from_columns([pd.Series(c, dtype=object) for c in cols], thresholds)
    got = table.levels(left.astype(np.int32), right.astype(np.int32))
    for f, (col, t) in enumerate(zip(cols, thresholds, strict=True)):
        words, counts, present = bloom_words(col)
        np.testing.assert_array_equal(got[:, f], dice_levels(words, counts, present, left,
                                                             right, t))
    assert (got[:, 1][(left == 3) | (right == 3)] == -1).all()


def test_salted_comparison_is_null_when_salts_differ():
    people = [{"partner_id": "a", "partner_record_id": str(i), "given": "maria",
               "family": "rivera", "dob": dob} for i, dob in
              enumerate(["1990-01-02", "1990-01-02", "1990-01-03", None, None])]
    encoded = encode(people)
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"][0]["salt_column"] = "bf_dob"
    columns = ComparisonColumns.build(encoded, LinkSpec.from_dict(data))
    out = columns.compare(np.array([0, 0, 0, 3]), np.array([1, 2, 3, 4]))
    # same dob -> compared; different or one-sided dob -> -1; both missing (empty salt) compared
    assert out["gamma_given_name"].tolist() == [3, -1, -1, 3]
    assert out["gamma_family_name"].tolist() == [3, 3, 3, 3]  # not salted


def test_fallback_comparison_speaks_only_where_the_salt_differs():
    people = [{"partner_id": "a", "partner_record_id": str(i), "given": "maria",
               "family": "rivera", "dob": dob, "ssn": ssn} for i, (dob, ssn) in
              enumerate([("1990-01-02", "123456789"), ("1990-01-02", "123456789"),
                         ("1990-01-03", "123456789"), (None, "123456789"), (None, None)])]
    encoded = encode(people)
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"].append({"name": "ssn_other_dob", "kind": "exact",
                                "column": "tok_ssn", "only_if_differs": "bf_dob"})
    columns = ComparisonColumns.build(encoded, LinkSpec.from_dict(data))
    out = columns.compare(np.array([0, 0, 0, 3]), np.array([1, 2, 3, 4]))
    # same dob -> silent; other or one-sided dob -> compared; both missing -> silent
    assert out["gamma_ssn_other_dob"].tolist() == [-1, 1, 1, -1]


def test_exact_levels_ladder_takes_the_strongest_agreeing_token():
    encoded = pd.DataFrame({
        "record_key": list("abcdef"), "partner_id": "p",
        "tok_strong": ["s1", "s1", "s2", "s3", None, None],
        "tok_weak": ["w1", "w1", "w1", "w9", "w1", None],
        "bf_given_name": [None] * 6,
    })
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"] = [{"name": "names", "kind": "exact_levels", "column": "tok_strong",
                            "weaker_columns": ["tok_weak", "tok_absent"]}]
    link_spec = LinkSpec.from_dict(data)
    assert link_spec.comparisons[0].levels == 4
    out = ComparisonColumns.build(encoded, link_spec).compare(np.array([0, 0, 0, 0, 4]),
                                                              np.array([1, 2, 3, 4, 5]))
    # both agree -> 3; only the weak one -> 2; present, none agree -> 0; nothing on both -> -1
    assert out["gamma_names"].tolist() == [3, 2, 0, 2, -1]
    data["comparisons"][0].pop("weaker_columns")
    with pytest.raises(ValueError, match="weaker_columns"):
        LinkSpec.from_dict(data)


def test_comparison_on_absent_column_is_skipped_with_a_note():
    encoded = encode([{"partner_id": "a", "partner_record_id": "1", "given": "al"}])
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"].append({"name": "full_name", "kind": "dice", "column": "bf_full_name",
                                "thresholds": [0.9]})
    usable, notes = usable_spec(encoded, LinkSpec.from_dict(data))
    assert "full_name" not in [c.name for c in usable.comparisons]
    assert notes and "bf_full_name" in notes[0]


def _token_sets(*sets: set[int] | None) -> list[bytes | None]:
    """``ts_*`` values: sorted little-endian uint64 tokens, padded with unique fillers."""
    out = []
    for i, tokens in enumerate(sets):
        if tokens is None:
            out.append(None)
            continue
        padded = sorted(tokens | {10**12 + 100 * i + j for j in range(4 - len(tokens))})
        out.append(np.array(padded, dtype="<u8").tobytes())
    return out


def test_token_set_comparison_and_ladder_level():
    encoded = pd.DataFrame({
        "record_key": list("abcde"), "partner_id": "p",
        "tok_exact": ["x", "y", "z", "w", None],
        "ts_names": _token_sets({1, 2}, {2, 3}, {4}, None, {1}),
        "bf_given_name": [None] * 5,
    })
    data = copy.deepcopy(SPEC_DICT)
    data["comparisons"] = [
        {"name": "shared", "kind": "token_set", "column": "ts_names"},
        {"name": "ladder", "kind": "exact_levels", "column": "tok_exact",
         "weaker_columns": ["ts_names"]},
    ]
    link_spec = LinkSpec.from_dict(data)
    out = ComparisonColumns.build(encoded, link_spec).compare(np.array([0, 0, 0, 1, 4]),
                                                              np.array([1, 2, 3, 2, 0]))
    # a shared token -> 1; none shared -> 0; a set missing -> -1
    assert out["gamma_shared"].tolist() == [1, 0, -1, 0, 1]
    # the token set is the weaker ladder level: tokens differ but a set token is shared -> 1
    assert out["gamma_ladder"].tolist() == [1, 0, 0, 0, 1]
