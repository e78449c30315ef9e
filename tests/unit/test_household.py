"""A parent and child of one name at one address stay two persons (linkage specs v3 to v5).

Real stages on seeded synthetic drops: ``normalize_participants`` -> ``encode_participants``
(a fixed test key; both via ``evaluate.encode_labelled``) -> ``link_records`` with the shipped
specs. The household is added by hand; nothing here is a real person.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from keys import SharedSecret
from linkage.engine import LinkSpec, link_records
from linkage.evaluate import encode_labelled
from pipelines.synthetic.participants import generate, read_period

SECRET = SharedSecret("household-test", b"\x5a" * 32)
AS_OF = dt.date(2026, 10, 28)

# father and son: same name, address and home phone, dobs 25 years apart, two valid SSNs
_HOME = {"first_name": "Yadiel", "last_name": "Rosario Rivera", "street_address": "18 Enfield St",
         "city": "Hartford", "state": "CT", "zip": "06105", "sex": "M", "phone": "8605550142"}
HOUSEHOLD = [
    {**_HOME, "partner_id": "workforce_board", "partner_record_id": "HH-F1",
     "date_of_birth": "1976-10-15", "ssn": "093968286"},
    {**_HOME, "partner_id": "community_college", "partner_record_id": "HH-F2",
     "date_of_birth": "1976-10-15", "ssn": "093968286"},
    {**_HOME, "partner_id": "civic_assoc", "partner_record_id": "HH-F3",
     "date_of_birth": "1976-10-15", "ssn": None},
    {**_HOME, "partner_id": "workforce_board", "partner_record_id": "HH-S1",
     "date_of_birth": "2001-04-30", "ssn": "601865311"},
    {**_HOME, "partner_id": "southend_nonprofit", "partner_record_id": "HH-S2",
     "date_of_birth": "2001-04-30", "ssn": None},
    {**_HOME, "partner_id": "civic_assoc", "partner_record_id": "HH-S3",
     "date_of_birth": "2001-04-30", "ssn": "601865311"},
]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> pd.DataFrame:
    """3,000 synthetic persons of one month (more than the shared 500-person drops: EM's m,
    hence the household's weight, depends on how many pairs it sees) plus the household."""
    drops = tmp_path_factory.mktemp("household")
    generate(drops, seed=7, persons=3000, periods=["2026-10"])
    raw = pd.concat([read_period(drops / "landing", "2026-10"), pd.DataFrame(HOUSEHOLD)],
                    ignore_index=True)
    return encode_labelled(raw, SECRET, AS_OF)


def _household_clusters(encoded: pd.DataFrame, spec: LinkSpec) -> dict[str, set[int]]:
    clusters = link_records(encoded, spec, keep_pairs="scored").clusters
    of = dict(zip(clusters["record_key"], clusters["cluster_id"], strict=True))
    keys = {p["partner_record_id"]: f"{p['partner_id']}:{p['partner_record_id']}"
            for p in HOUSEHOLD}
    return {who: {of[keys[f"HH-{who}{i}"]] for i in (1, 2, 3)} for who in ("F", "S")}


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_parent_and_child_of_one_name_and_address_stay_apart(encoded):
    found = _household_clusters(encoded, LinkSpec.load())
    assert len(found["F"]) == 1 and len(found["S"]) == 1  # each is one person
    assert found["F"] != found["S"]  # and they are two


@pytest.mark.slow  # over ~2 s: left out of `make test-fast`
def test_without_the_ssn_guard_and_the_cap_they_would_be_merged(encoded):
    """The test above can fail. The father's and son's records that carry an SSN can never
    share a cluster (two SSNs); the ones without one are kept apart by the birth-year gap and
    the cap on the household's shared name, address and household evidence. Without SSNs and
    without the cap, the ladders count one household fact two or three times and the two are
    one person."""
    without_ssn = encoded.assign(tok_t4_ssn=None)
    current = LinkSpec.load()
    uncapped = current.replace(fellegi_sunter=dataclasses.replace(current.fellegi_sunter,
                                                                  weight_caps=()))
    found = _household_clusters(without_ssn, uncapped)
    assert found["F"] == found["S"]
