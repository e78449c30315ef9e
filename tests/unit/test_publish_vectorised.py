"""The vectorised per-person aggregations equal the per-person Python they replaced.

`_publish_reference` keeps the pre-issue-20 implementations verbatim. The data here fill every
profile and barrier column (and leave some empty), give persons several records per period, and
force ties: a birth year or sex seen as often as another (the first seen wins), the same period
twice (crosswalk order decides the last known value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _publish_reference import person_profile as reference_profile
from _publish_reference import person_table as reference_table

from pipelines.records import PROFILE_COLUMNS
from pipelines.warehouse.aggregate import any_equal, last_known, mode_first_seen, smallest
from pipelines.warehouse.facts import person_profile
from pipelines.warehouse.measures import BARRIER_FLAGS
from pipelines.warehouse.publish import person_table

PERIODS = ["2026-08", "2026-09", "2026-10", "2026-11"]


def _pick(rng: np.random.Generator, values: list, n: int, empty: float) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [values[i] for i in rng.integers(0, len(values), n)]
    out[rng.random(n) < empty] = None
    return out


def records_and_crosswalk(seed: int, persons: int = 400, no_birth_year: float = 0.15
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Records as `StateStore.latest_records` gives them (birth_year Int32), a shuffled
    crosswalk and enrollments for half the persons."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 7, persons)
    person = np.repeat([f"P{i:05d}" for i in range(persons)], counts)
    n = len(person)
    keys = [f"p{rng.integers(0, 4)}:{i:06d}" for i in range(n)]
    base_year = np.repeat(rng.integers(1950, 2010, persons), counts)
    records = pd.DataFrame({
        "record_key": keys,
        "period": _pick(rng, PERIODS[:2], n, 0.0),  # many records share a period
        # one of two nearby years, or none: frequent ties between two years
        "birth_year": pd.array(np.where(rng.random(n) < no_birth_year, None,
                                        base_year + rng.integers(0, 2, n)), dtype="Int32"),
        "sex": _pick(rng, ["F", "M", "X"], n, 0.2),
        "zip3": _pick(rng, ["061", "060", "067"], n, 0.3),
        "hispanic_latino": _pick(rng, ["yes", "no", "declined"], n, 0.3),
        "race": _pick(rng, ["asian", "white", "black_african_american;white", "declined",
                            "white;asian"], n, 0.3),
    })
    for column in PROFILE_COLUMNS:
        if column not in records:
            records[column] = _pick(rng, ["yes", "no", "declined"] if column in (
                "disability", "veteran") else ["yes", "no"], n, 0.35)
    records.loc[rng.random(n) < 0.3, "period"] = PERIODS[2]
    crosswalk = pd.DataFrame({"record_key": keys, "person_id": person,
                              "partner_id": [k.split(":")[0] for k in keys]})
    crosswalk = crosswalk.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    enrolled = rng.random(persons) < 0.5
    enrollment = pd.DataFrame({
        "person_id": [f"P{i:05d}" for i in np.flatnonzero(enrolled)],
        "entry_month": _pick(rng, ["2019-03", "2021-07", "2025-01"], int(enrolled.sum()), 0.0),
    })
    return records.sample(frac=1.0, random_state=seed + 1), crosswalk, enrollment


@pytest.mark.parametrize("seed", [1, 2])
def test_person_table_equals_the_per_person_reference(seed: int) -> None:
    records, crosswalk, _ = records_and_crosswalk(seed)
    expected = reference_table(crosswalk, records)
    got = person_table(crosswalk, records)
    pd.testing.assert_frame_equal(got, expected)
    # the data exercise ties and empties
    assert got["birth_year"].isna().any() and got["zip3"].isna().any()


@pytest.mark.parametrize("seed", [1, 2])
def test_person_profile_equals_the_per_person_reference(seed: int) -> None:
    # every record has a birth year (dob is required; the reference fails on a missing one)
    records, crosswalk, enrollment = records_and_crosswalk(seed, no_birth_year=0.0)
    for enrolled in (enrollment, None):
        expected = reference_profile(records, crosswalk, enrolled)
        got = person_profile(records, crosswalk, enrolled)
        pd.testing.assert_frame_equal(got, expected)
    for barrier in BARRIER_FLAGS:  # every barrier takes all three answers
        assert {True, False, None} <= set(got[barrier])
    assert got["race_category"].nunique() >= 3 and got["age_band_first_entry"].notna().any()


def test_missing_profile_columns_and_empty_inputs() -> None:
    records, crosswalk, enrollment = records_and_crosswalk(4, persons=200, no_birth_year=0.0)
    thin = records.drop(columns=["race", *BARRIER_FLAGS[:3]])
    pd.testing.assert_frame_equal(person_profile(thin, crosswalk, enrollment),
                                  reference_profile(thin, crosswalk, enrollment))
    empty = crosswalk.iloc[0:0]
    assert list(person_profile(records, empty, None).columns) == list(
        reference_profile(records, empty, None).columns)
    assert list(person_table(empty, records).columns) == list(
        reference_table(empty, records).columns)


def test_mode_ties_go_to_the_first_seen_and_last_known_skips_nulls() -> None:
    frame = pd.DataFrame({"g": ["a", "a", "a", "a", "b", "b", "c"],
                          "v": [None, "y", "x", "x", "z", None, None]})
    frame.loc[1, "v"] = "x"
    frame.loc[2, "v"] = "y"  # a: x, y, x -> x; order matters only on ties
    tie = pd.DataFrame({"g": ["a", "a", "a", "a"], "v": ["y", "x", "x", "y"]})
    assert mode_first_seen(tie, "g", "v").to_dict() == {"a": "y"}
    assert mode_first_seen(frame, "g", "v").to_dict() == {"a": "x", "b": "z"}
    assert last_known(frame, "g", "v").to_dict() == {"a": "x", "b": "z"}


@pytest.mark.parametrize("seed", [0, 1])
def test_smallest_and_any_equal_equal_pandas_groupby(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2_000
    frame = pd.DataFrame({"g": _pick(rng, [f"P{i:03d}" for i in range(300)], n, 0.0),
                          "period": _pick(rng, PERIODS, n, 0.0),
                          "flag": _pick(rng, ["yes", "no", "declined"], n, 0.3)})
    expected = frame.groupby("g")["period"].min()  # the groupby over strings it replaces
    pd.testing.assert_series_equal(smallest(frame, "g", "period"), expected, check_names=False)
    groups = pd.Index(sorted(frame["g"].unique()))
    for value in ("yes", "no"):
        by_groupby = frame["flag"].eq(value).groupby(frame["g"]).any().reindex(groups)
        assert (any_equal(frame, groups, "g", "flag", value) == by_groupby.to_numpy()).all()
    # a missing value is skipped; a group with none is absent (pandas' groupby min over
    # object values fails on a None)
    gaps = pd.DataFrame({"g": ["a", "a", "b"], "period": [None, "2026-02", None]})
    assert smallest(gaps, "g", "period").to_dict() == {"a": "2026-02"}


def test_a_person_without_a_birth_year_has_no_age_band() -> None:
    records, crosswalk, enrollment = records_and_crosswalk(5, persons=300, no_birth_year=0.6)
    profile = person_profile(records, crosswalk, enrollment).set_index("person_id")
    joined = crosswalk.merge(records, on="record_key")
    unknown = joined.groupby("person_id")["birth_year"].count() == 0
    assert unknown.any()
    assert profile.loc[unknown[unknown].index, "age_band_first_entry"].isna().all()
    assert profile.loc[unknown[~unknown].index, "age_band_first_entry"].notna().any()


def _participation_by_strings(crosswalk: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """The groupby over the period strings that `participation_table` replaced."""
    joined = crosswalk[["record_key", "person_id"]].merge(periods, on="record_key")
    return (joined.groupby(["person_id", "partner_id"], sort=True)
            .agg(first_period=("first_period", "min"), last_period=("last_period", "max"),
                 records=("record_key", "count")).reset_index())


@pytest.mark.parametrize("seed", [0, 1])
def test_participation_equals_the_groupby_over_period_strings(seed: int) -> None:
    from pipelines.warehouse.publish import participation_table

    rng = np.random.default_rng(seed)
    n = 3_000
    first = rng.integers(0, len(PERIODS), n)
    periods = pd.DataFrame({
        "record_key": [f"r{i}" for i in range(n)],
        "partner_id": _pick(rng, ["wb", "yd", "cc"], n, 0.0),
        "first_period": np.array(PERIODS, dtype=object)[first],
        "last_period": np.array(PERIODS, dtype=object)[
            np.minimum(first + rng.integers(0, 3, n), len(PERIODS) - 1)],
    })
    crosswalk = pd.DataFrame({"record_key": periods["record_key"].sample(frac=1, random_state=seed),
                              "person_id": [f"P{i:04d}" for i in rng.integers(0, 700, n)]})
    pd.testing.assert_frame_equal(participation_table(crosswalk, periods),
                                  _participation_by_strings(crosswalk, periods))


def test_participation_with_a_missing_period_keeps_the_others() -> None:
    from pipelines.warehouse.publish import participation_table

    crosswalk = pd.DataFrame({"record_key": list("abcd"), "person_id": ["p1", "p1", "p2", "p2"]})
    periods = pd.DataFrame({"record_key": list("abcd"), "partner_id": ["x", "x", "x", "y"],
                            "first_period": ["2026-03", None, "2026-01", None],
                            "last_period": [None, "2026-02", "2026-01", None]})
    table = participation_table(crosswalk, periods)
    assert table.to_dict("records") == [
        {"person_id": "p1", "partner_id": "x", "first_period": "2026-03",
         "last_period": "2026-02", "records": 2},
        {"person_id": "p2", "partner_id": "x", "first_period": "2026-01",
         "last_period": "2026-01", "records": 1},
        {"person_id": "p2", "partner_id": "y", "first_period": None, "last_period": None,
         "records": 1},
    ]
