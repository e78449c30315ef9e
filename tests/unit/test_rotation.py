"""Key rotation: the overlap period is encoded under the old and the new key and bridged by
partner record (docs/keys.md, "Rotation"; linkage.rotation)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from keys import KeyRing, SharedSecret
from linkage.encode import encode_participants, load_encoding_schema
from linkage.normalize import normalize_participants
from linkage.rotation import bridge_overlap, carry_over_persons

OLD = SharedSecret("hub-2025a", b"\x31" * 32)
NEW = SharedSecret("hub-2026a", b"\x32" * 32)

# The overlap period's full extracts of two partners; ann and bo are served by both.
EXTRACTS = {
    "youth_dept": pd.DataFrame({
        "partner_record_id": ["Y1", "Y2", "Y3"],
        "first_name": ["Ann", "Bo", "Cy"],
        "last_name": ["Lee", "Wong", "Diaz"],
        "date_of_birth": ["2004-01-02", "2005-03-04", "2003-05-06"],
    }),
    "college": pd.DataFrame({
        "partner_record_id": ["C7", "C8"],
        "first_name": ["Ann", "Bo"],
        "last_name": ["Lee", "Wong"],
        "date_of_birth": ["2004-01-02", "2005-03-04"],
    }),
}


def encode_batch(partner_id: str, secret: SharedSecret) -> pd.DataFrame:
    """What the monthly flow stores for one batch: lineage + encoded columns + fingerprint."""
    raw = EXTRACTS[partner_id]
    encoded = encode_participants(normalize_participants(raw, as_of=date(2026, 1, 31)), secret,
                                  load_encoding_schema())
    encoded.insert(0, "record_key", partner_id + ":" + raw["partner_record_id"])
    encoded.insert(1, "partner_id", partner_id)
    encoded.insert(2, "partner_record_id", raw["partner_record_id"])
    encoded["key_fingerprint"] = encoded.attrs["key_fingerprint"]
    return encoded


def overlap(secret: SharedSecret) -> pd.DataFrame:
    return pd.concat([encode_batch(p, secret) for p in EXTRACTS], ignore_index=True)


def test_overlap_bridges_old_and_new_key_and_persons_carry_over() -> None:
    ring = KeyRing([OLD, NEW])
    assert ring.current == NEW
    old, new = overlap(OLD), overlap(NEW)
    # each batch is routed by its recorded fingerprint
    assert ring.by_fingerprint(old["key_fingerprint"].iloc[0]) == OLD
    assert ring.by_fingerprint(new["key_fingerprint"].iloc[0]) == NEW
    # across keys nothing matches by comparison: no token or filter is shared
    for column in [c for c in old.columns if c.startswith(("tok_", "bf_"))]:
        shared = set(old[column].dropna()) & set(new[column].dropna())
        assert not shared, column

    # under the old key the overlap batch linked as usual: ann and bo each one person
    old_crosswalk = pd.DataFrame({
        "record_key": ["youth_dept:Y1", "college:C7", "youth_dept:Y2", "college:C8",
                       "youth_dept:Y3"],
        "person_id": ["PANN", "PANN", "PBO", "PBO", "PCY"],
    })
    bridge = bridge_overlap(old, new)
    assert bridge.as_dict() == {k: k for k in old["record_key"]}
    assert bridge.old_only == () and bridge.new_only == ()
    carried = carry_over_persons(bridge, old_crosswalk)
    persons = dict(zip(carried["record_key"], carried["person_id"], strict=True))
    assert persons == dict(zip(old_crosswalk["record_key"], old_crosswalk["person_id"],
                               strict=True))
    # the two encodings of each person's records are now the same person under either key
    by_person = carried.groupby("person_id")["record_key"].apply(sorted).to_dict()
    assert by_person["PANN"] == ["college:C7", "youth_dept:Y1"]

    # within the new key, later new-key batches link on tokens as usual
    assert new.loc[0, "tok_t6_swapped"] == new.loc[3, "tok_t6_swapped"]


def test_bridge_with_key_scoped_record_keys_and_partial_overlap() -> None:
    old = overlap(OLD)
    new = overlap(NEW)
    new["record_key"] = "k2/" + new["record_key"]
    new = new[new["partner_record_id"] != "Y3"]  # not re-encoded: cannot carry over
    extra = new.iloc[[0]].assign(partner_record_id="Y9", record_key="k2/youth_dept:Y9")
    new = pd.concat([new, extra], ignore_index=True)
    bridge = bridge_overlap(old, new)
    assert bridge.as_dict()["youth_dept:Y1"] == "k2/youth_dept:Y1"
    assert "youth_dept:Y3" not in bridge.as_dict()
    assert bridge.old_only == ("youth_dept:Y3",)
    assert bridge.new_only == ("k2/youth_dept:Y9",)
    carried = carry_over_persons(bridge, pd.DataFrame({"record_key": ["college:C7"],
                                                       "person_id": ["PANN"]}))
    assert carried.to_dict("records") == [{"record_key": "k2/college:C7", "person_id": "PANN"}]


def test_bridge_refuses_same_key_and_duplicates() -> None:
    old = overlap(OLD)
    with pytest.raises(ValueError, match=r"both encodings"):
        bridge_overlap(old, overlap(OLD))
    doubled = pd.concat([overlap(NEW), overlap(NEW).iloc[[0]]], ignore_index=True)
    doubled.loc[len(doubled) - 1, "record_key"] = "dup"
    with pytest.raises(ValueError, match="more than once"):
        bridge_overlap(old, doubled)
    with pytest.raises(ValueError, match="lacks column"):
        bridge_overlap(old.drop(columns=["partner_record_id"]), overlap(NEW))
