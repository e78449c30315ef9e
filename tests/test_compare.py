"""Comparison: Dice kernel against a plain-Python reference, gamma levels, recordlinkage use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import recordlinkage
from _linkage_fixtures import bloom, encode, spec

from linkage.compare import (
    ComparisonColumns,
    DiceFeature,
    bloom_words,
    compare_pairs,
    dice_levels,
    dice_similarity,
)


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
