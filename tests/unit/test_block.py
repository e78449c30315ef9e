"""Blocking: token equality + Bloom-filter LSH, block-size cap, recordlinkage adapter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import recordlinkage
from _linkage_fixtures import encode, spec

from linkage.adapters import BloomLSHIndex, candidate_pairs, candidate_pairs_with_stats
from linkage.block import candidate_positions


def _people():
    return [
        {"partner_id": "a", "partner_record_id": "1", "given": "katherine", "family": "johnson",
         "dob": "1990-04-12", "ssn": "123456789"},
        {"partner_id": "b", "partner_record_id": "9", "given": "katherine", "family": "jonhson",
         "dob": "1990-04-12"},
        {"partner_id": "a", "partner_record_id": "2", "given": "xavier", "family": "okafor",
         "dob": "1971-11-02", "ssn": "987654321"},
        {"partner_id": "b", "partner_record_id": "3", "given": "lucinda", "family": "abernathy",
         "dob": "1985-07-30"},
        {"partner_id": "c", "partner_record_id": "5", "given": "zed", "family": "quimby",
         "dob": "2001-01-01", "ssn": "987654321"},
    ]


def test_typo_pair_found_and_random_pairs_not():
    encoded = encode(_people())
    pairs = candidate_pairs(encoded, spec(blocking={"token_columns": []}))
    found = set(pairs)
    assert ("a:1", "b:9") in found  # one transposed letter in the family name
    assert ("a:2", "b:3") not in found
    assert ("a:1", "a:2") not in found
    assert all(left < right for left, right in found)
    assert list(pairs.names) == ["record_key_l", "record_key_r"]


def test_token_blocking_skips_none_and_finds_equal_tokens():
    encoded = encode(_people())
    pairs, stats = candidate_pairs_with_stats(encoded, spec(blocking={"lsh": []}))
    assert set(pairs) == {("a:2", "c:5")}  # shared SSN token; None SSNs never block together
    assert stats.pairs_by_rule["token:tok_ssn"] == 1
    assert stats.pair_count == 1


def test_oversize_block_is_skipped_and_counted():
    people = [{"partner_id": "p", "partner_record_id": str(i), "given": f"name{i}",
               "family": f"fam{i}", "ssn": "111223333"} for i in range(60)]
    people += [{"partner_id": "p", "partner_record_id": "x1", "given": "ann", "family": "lee",
                "ssn": "222334444"},
               {"partner_id": "p", "partner_record_id": "x2", "given": "bo", "family": "ng",
                "ssn": "222334444"}]
    encoded = encode(people)
    pairs, stats = candidate_pairs_with_stats(encoded, spec(blocking={"lsh": [],
                                                                      "max_block_size": 50}))
    assert stats.skipped_blocks["token:tok_ssn"] == 1
    assert stats.skipped_block_records["token:tok_ssn"] == 60
    assert set(pairs) == {("p:x1", "p:x2")}


def test_exact_key_rule_blocks_on_joint_equality_and_skips_missing():
    people = [
        *_people(),
        {"partner_id": "c", "partner_record_id": "7", "given": "zora", "family": "vance",
         "dob": "1971-11-02"},
        {"partner_id": "c", "partner_record_id": "8", "given": "amos", "family": "reed"},
        {"partner_id": "d", "partner_record_id": "1", "given": "ida", "family": "bell"},
    ]
    encoded = encode(people)
    encoded["sex"] = ["F", "F", "M", "F", "M", "F", None, None]
    pairs, stats = candidate_pairs_with_stats(
        encoded, spec(blocking={"lsh": [], "token_columns": [],
                                "exact": [{"name": "dob", "columns": ["bf_dob"]}]}))
    # same dob filter bytes: katherine twice, xavier and zora; missing dobs never pair
    assert set(pairs) == {("a:1", "b:9"), ("a:2", "c:7")}
    assert stats.pairs_by_rule["exact:dob"] == 2
    joint, _ = candidate_pairs_with_stats(
        encoded, spec(blocking={"lsh": [], "token_columns": [],
                                "exact": [{"name": "dob_sex", "columns": ["bf_dob", "sex"]}]}))
    assert set(joint) == {("a:1", "b:9")}  # xavier (M) and zora (F) differ in sex
    # a rule whose column the frame lacks is skipped, not an error
    none, stats = candidate_pairs_with_stats(
        encoded, spec(blocking={"lsh": [], "token_columns": [],
                                "exact": [{"name": "zip", "columns": ["bf_dob", "zip5"]}]}))
    assert len(none) == 0 and "exact:zip" not in stats.pairs_by_rule


def test_lsh_key_columns_confine_bands_to_records_agreeing_on_them():
    people = [{"partner_id": "p", "partner_record_id": str(i), "given": "katherine",
               "family": "johnson", "dob": f"{1990 + i % 2}-0{1 + i}-12"} for i in range(4)]
    people.append({"partner_id": "p", "partner_record_id": "x", "given": "katherine",
                   "family": "johnson"})  # no dob, so no birth_year
    encoded = encode(people)
    lsh = {"name": "names", "columns": ["bf_given_name", "bf_family_name"], "bands": 30,
           "bits_per_band": 32, "seed": 7}
    free = set(candidate_pairs(encoded, spec(blocking={"token_columns": [], "lsh": [lsh]})))
    assert len(free) == 10  # identical names: every pair of the five
    keyed, stats = candidate_pairs_with_stats(
        encoded, spec(blocking={"token_columns": [],
                                "lsh": [{**lsh, "key_columns": ["birth_year"]}]}))
    # only same-birth-year records pair (1990: 0 and 2; 1991: 1 and 3); no year, no pairs
    assert set(keyed) == {("p:0", "p:2"), ("p:1", "p:3")}
    assert stats.pairs_by_rule["lsh:names"] == 2


def test_link_only_drops_within_partner_pairs():
    people = [*_people(), {"partner_id": "a", "partner_record_id": "7", "given": "katherine",
                           "family": "johnson", "dob": "1990-04-12"}]
    encoded = encode(people)
    pairs = candidate_pairs(encoded, spec(link_type="link_only"))
    keys = set(pairs)
    assert ("a:1", "b:9") in keys
    assert ("a:1", "a:7") not in keys
    both = candidate_pairs(encoded, spec())
    assert ("a:1", "a:7") in set(both)


def test_dedupes_pairs_across_rules_and_scales_vectorised():
    rng = np.random.default_rng(0)
    n = 4000
    filters = rng.integers(0, 256, size=(n, 64), dtype=np.uint8)
    filters[1::2] = filters[0::2]  # every odd record duplicates the previous one
    encoded = pd.DataFrame({
        "record_key": [f"r{i:05d}" for i in range(n)],
        "partner_id": "p",
        "bf_given_name": [row.tobytes() for row in filters],
        "bf_family_name": [row.tobytes() for row in filters],
    })
    pairs, stats = candidate_pairs_with_stats(encoded, spec(blocking={"token_columns": []}))
    assert pairs.is_unique
    found = set(pairs)
    assert all((f"r{i:05d}", f"r{i + 1:05d}") in found for i in range(0, n, 2))
    assert stats.pair_count < 3 * n  # random 50%-density filters rarely collide


def test_pair_accumulator_merges_geometrically_and_keeps_every_distinct_code(monkeypatch):
    from linkage import block

    monkeypatch.setattr(block, "_DEDUPE_EVERY", 100)
    sorts = []
    real = block._sorted_unique
    monkeypatch.setattr(block, "_sorted_unique",
                        lambda c, **kw: sorts.append(len(c)) or real(c, **kw))
    acc = block._PairAccumulator()
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 50_000, 60) for _ in range(400)]
    for part in parts:
        acc.add(part)
    assert acc.result().tolist() == sorted(set(np.concatenate(parts).tolist()))
    # merging only when pending outgrows the merged codes re-sorts each code O(log n) times
    assert sum(sorts) < 8 * 400 * 60


def test_bloom_lsh_index_in_recordlinkage():
    people = _people()
    encoded = encode(people).set_index("record_key")
    df_a = encoded[encoded["partner_id"] == "a"]
    df_b = encoded[encoded["partner_id"] == "b"]
    indexer = recordlinkage.Index()
    indexer.add(BloomLSHIndex(["bf_given_name", "bf_family_name"], bands=30, bits_per_band=32,
                              seed=7))
    pairs = indexer.index(df_a, df_b)
    assert ("a:1", "b:9") in set(pairs)
    dedup = BloomLSHIndex(["bf_given_name", "bf_family_name"], bands=30, bits_per_band=32,
                          seed=7).index(encoded)
    assert len(dedup) >= 1


def test_token_set_blocks_records_sharing_any_token_and_keeps_rule_pairs():
    from test_compare import _token_sets

    encoded = pd.DataFrame({
        "record_key": list("abcd"), "partner_id": "p",
        "ts_names": _token_sets({1, 2}, {2, 3}, {4}, {3}),
    })
    link_spec = spec(blocking={"token_columns": ["ts_names"], "lsh": []})
    found = candidate_positions(encoded, link_spec, keep_rules=["token:ts_names"])
    pairs = {tuple(sorted(p)) for p in zip(found.left.tolist(), found.right.tolist(),
                                            strict=True)}
    assert pairs == {(0, 1), (1, 3)}  # a-b share 2, b-d share 3; c shares nothing
    assert found.stats.pairs_by_rule["token:ts_names"] == 2
    assert sorted(found.rule_pairs["token:ts_names"].tolist()) == [0, 1]


def _many_blocks(seed: int = 4):
    """Records sharing SSNs in blocks of 1 to 40 (one of 60 records), other fields unique."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 41, 45)
    sizes[0] = 60
    people, i = [], 0
    for block, size in enumerate(sizes):
        for _ in range(int(size)):
            people.append({"partner_id": "p", "partner_record_id": str(i), "given": f"g{i}",
                           "family": f"f{i}", "ssn": f"{100000000 + block}"})
            i += 1
    return encode(people)


def test_a_rule_makes_its_pairs_in_groups_of_blocks_with_the_same_result(monkeypatch):
    import linkage.block as block

    encoded = _many_blocks()
    rules = spec(blocking={"lsh": [], "max_block_size": 50})
    whole = candidate_positions(encoded, rules)
    monkeypatch.setattr(block, "_PAIRS_PER_CHUNK", 300)  # groups of a few blocks each
    grouped = candidate_positions(encoded, rules)
    assert len(whole.left) > 2_000 and whole.stats.skipped_blocks["token:tok_ssn"] == 1
    assert (grouped.left == whole.left).all() and (grouped.right == whole.right).all()
    assert grouped.stats == whole.stats


def test_a_rule_over_its_pair_budget_skips_its_largest_blocks_as_the_cap_does(monkeypatch):
    import linkage.block as block

    encoded = _many_blocks()
    generous = candidate_positions(encoded, spec(blocking={"lsh": [], "max_block_size": 50}))
    monkeypatch.setattr(block, "MAX_RULE_PAIRS", len(generous.left) // 2)
    capped = candidate_positions(encoded, spec(blocking={"lsh": [], "max_block_size": 50}))
    largest = capped.stats.largest_block["token:tok_ssn"]
    assert len(capped.left) <= len(generous.left) // 2 and largest < 40
    assert capped.stats.skipped_blocks["token:tok_ssn"] > 1  # the 60 and the largest kept
    monkeypatch.setattr(block, "MAX_RULE_PAIRS", 10**9)
    by_cap = candidate_positions(encoded, spec(blocking={"lsh": [], "max_block_size": largest}))
    assert (capped.left == by_cap.left).all() and (capped.right == by_cap.right).all()
    assert capped.stats == by_cap.stats


def test_rule_positions_makes_one_rules_pairs_and_samples_them_by_seed():
    from linkage.block import candidate_index, rule_positions

    rng = np.random.default_rng(3)
    people = [{"partner_id": "p", "partner_record_id": f"r{i:03d}", "given": f"g{i}",
               "family": f"f{i}", "ssn": f"{int(rng.integers(0, 6)):09d}"} for i in range(90)]
    encoded = encode(people)
    only_ssn = spec(blocking={"lsh": []})
    everything = candidate_positions(encoded, only_ssn)
    left, right, total = rule_positions(encoded, only_ssn, "token:tok_ssn", 10**6, seed=1)
    assert total == len(everything) == len(left)
    assert set(zip(left, right, strict=True)) == set(
        zip(everything.left, everything.right, strict=True))
    # a sample: that many distinct pairs of the rule, the same for the same seed
    some = rule_positions(encoded, only_ssn, "token:tok_ssn", 50, seed=1)
    assert len(some[0]) == 50 and some[2] == total
    assert set(zip(some[0], some[1], strict=True)) < set(zip(left, right, strict=True))
    again = rule_positions(encoded, only_ssn, "token:tok_ssn", 50, seed=1)
    assert np.array_equal(some[0], again[0]) and np.array_equal(some[1], again[1])
    # a token column the spec does not block on is a rule too; an unknown name is an error
    names = spec(blocking={"lsh": [], "token_columns": []})
    assert rule_positions(encoded, names, "token:tok_ssn", 10**6, seed=1)[2] == total
    assert rule_positions(encoded, names, "token:tok_absent", 10**6, seed=1) is None
    with pytest.raises(ValueError, match="not a rule"):
        rule_positions(encoded, names, "lsh:absent", 10**6, seed=1)
    # where the rule's pairs are among the candidates of another spec, in either orientation
    half = candidate_positions(encoded, only_ssn)
    keep = np.arange(len(half)) % 2 == 0
    half.left, half.right = half.left[keep], half.right[keep]
    at = candidate_index(encoded, half, right, left, chunk=7)
    index = {pair: i for i, pair in enumerate(zip(half.left, half.right, strict=True))}
    assert at.tolist() == [index.get((a, b), -1) for a, b in zip(left, right, strict=True)]
    assert (at < 0).sum() == len(left) - keep.sum()
