"""Stable person IDs: carry, merge, split, create, and the history events."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd

from linkage.persons import assign_person_ids, new_person_ids

ID_RE = re.compile(r"^P[A-Z2-7]{12}$")


def _clusters(groups):
    return pd.DataFrame([{"record_key": k, "cluster_id": cid}
                         for cid, keys in enumerate(groups) for k in keys])


def _prev(mapping):
    return pd.DataFrame([{"record_key": k, "person_id": pid}
                         for pid, keys in mapping.items() for k in keys])


def _ids(crosswalk):
    return dict(zip(crosswalk["record_key"], crosswalk["person_id"], strict=True))


def test_first_run_creates_random_ids():
    clusters = _clusters([["a", "b"], ["c"]])
    crosswalk, history = assign_person_ids(clusters, pd.DataFrame(), np.random.default_rng(1))
    ids = _ids(crosswalk)
    assert ids["a"] == ids["b"] != ids["c"]
    assert all(ID_RE.match(v) for v in ids.values())
    assert sorted(history["event"]) == ["created", "created"]
    assert sorted(history["record_count"]) == [1, 2]
    again, _ = assign_person_ids(clusters, None, np.random.default_rng(1))
    assert _ids(again) == ids  # seeded rng: reproducible


def test_carry_merge_split_and_new():
    previous = _prev({"PAAAAAAAAAAAA": ["a", "b"], "PBBBBBBBBBBBB": ["c"],
                      "PCCCCCCCCCCCC": ["d", "e", "f"], "PDDDDDDDDDDDD": ["g"]})
    clusters = _clusters([
        ["a", "b", "c"],   # merge A (2 records) and B (1) -> keeps A
        ["d", "e"],        # main part of C -> keeps C
        ["f"],             # split off C -> new id, split_from C
        ["g"],             # carried, no event
        ["h", "i"],        # new person
    ])
    crosswalk, history = assign_person_ids(clusters, previous, random.Random(3))
    ids = _ids(crosswalk)
    assert ids["a"] == ids["b"] == ids["c"] == "PAAAAAAAAAAAA"
    assert ids["d"] == ids["e"] == "PCCCCCCCCCCCC"
    assert ids["g"] == "PDDDDDDDDDDDD"
    assert ID_RE.match(ids["f"]) and ids["f"] not in previous["person_id"].to_numpy()
    assert ID_RE.match(ids["h"]) and ids["h"] == ids["i"] != ids["f"]
    events = {(r.person_id, r.event): r for r in history.itertuples()}
    assert set(history["event"]) == {"merged_into", "split_from", "created"}
    merged = events[("PBBBBBBBBBBBB", "merged_into")]
    assert merged.related_person_id == "PAAAAAAAAAAAA" and merged.record_count == 1
    split = events[(ids["f"], "split_from")]
    assert split.related_person_id == "PCCCCCCCCCCCC" and split.record_count == 1
    created = events[(ids["h"], "created")]
    assert created.record_count == 2 and pd.isna(created.related_person_id)
    assert "PDDDDDDDDDDDD" not in set(history["person_id"])  # carried: no event
    assert list(history.columns) == ["person_id", "event", "related_person_id",
                                     "record_count", "reason"]


def test_merge_tie_keeps_the_person_with_the_smallest_record_key():
    # Not the smallest (random) ID: the survivor must not depend on which IDs were drawn.
    previous = _prev({"PZZZZZZZZZZZZ": ["a"], "PMMMMMMMMMMMM": ["b"]})
    crosswalk, history = assign_person_ids(_clusters([["a", "b"]]), previous,
                                           np.random.default_rng(0))
    assert set(crosswalk["person_id"]) == {"PZZZZZZZZZZZZ"}
    assert history.loc[0, "person_id"] == "PMMMMMMMMMMMM"
    assert history.loc[0, "event"] == "merged_into"


def test_merge_tie_compares_each_persons_smallest_key_not_its_first_listed():
    # PZ's keys are listed "d" first (PM's "c"), but its smallest is "a" (PM's "b"): PZ survives
    previous = _prev({"PZZZZZZZZZZZZ": ["d", "a"], "PMMMMMMMMMMMM": ["c", "b"]})
    crosswalk, history = assign_person_ids(_clusters([["d", "c", "b", "a"]]), previous,
                                           np.random.default_rng(0))
    assert set(crosswalk["person_id"]) == {"PZZZZZZZZZZZZ"}
    assert history[["person_id", "event"]].values.tolist() == [
        ["PMMMMMMMMMMMM", "merged_into"]]


def test_split_largest_part_keeps_id_and_records_may_disappear():
    previous = _prev({"PAAAAAAAAAAAA": ["a", "b", "c", "gone"]})
    crosswalk, history = assign_person_ids(_clusters([["a"], ["b", "c"]]), previous,
                                           np.random.default_rng(0))
    ids = _ids(crosswalk)
    assert ids["b"] == ids["c"] == "PAAAAAAAAAAAA"
    assert ids["a"] != "PAAAAAAAAAAAA"
    assert history["event"].tolist() == ["split_from"]
    assert "gone" not in ids


def test_new_ids_never_reuse_and_accept_any_rng():
    used = {"PAAAAAAAAAAAA"}
    ids = new_person_ids(50, np.random.default_rng(9), used)
    ids += new_person_ids(5, random.Random(1), used)
    ids += new_person_ids(5, None, used)
    assert len(set(ids)) == 60 and all(ID_RE.match(i) for i in ids)
    assert "PAAAAAAAAAAAA" not in ids
