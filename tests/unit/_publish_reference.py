"""The per-person Python implementations of `person_table` and `person_profile` as they were
before issue 20 (one Python call per person), kept verbatim as the reference the vectorised
versions must equal (tests/unit/test_publish_vectorised.py)."""

from __future__ import annotations

import pandas as pd

from pipelines.records import PROFILE_COLUMNS
from pipelines.warehouse.measures import BARRIER_FLAGS, age_band, race_category


def _yes(value: object) -> bool | None:
    if value == "yes":
        return True
    if value == "no":
        return False
    return None


def _mode(values: pd.Series) -> object:
    values = values.dropna()
    if values.empty:
        return None
    counts = values.value_counts()
    return counts.index[0]


def person_table(crosswalk: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """One row per person: birth year and sex by majority, ZIP3 from the latest record."""
    columns = ["record_key", "birth_year", "sex", "zip3", "period"]
    joined = crosswalk[["record_key", "person_id"]].merge(
        records.reindex(columns=columns).astype({"record_key": object}), on="record_key"
    )
    joined = joined.sort_values(["person_id", "period", "record_key"])
    grouped = joined.groupby("person_id", sort=True)
    persons = pd.DataFrame(
        {
            "birth_year": grouped["birth_year"].agg(_mode),
            "sex": grouped["sex"].agg(_mode),
            "zip3": grouped["zip3"].agg(lambda s: s.dropna().iloc[-1] if s.notna().any()
                                        else None),
        }
    ).reset_index()
    persons["birth_year"] = pd.to_numeric(persons["birth_year"]).astype("Int64")
    if persons.empty:
        persons = pd.DataFrame(columns=["person_id", "birth_year", "sex", "zip3"])
    return persons


def person_profile(records: pd.DataFrame, crosswalk: pd.DataFrame,
                   enrollment: pd.DataFrame | None) -> pd.DataFrame:
    """Reporting attributes per person from the latest participant records."""
    if crosswalk.empty or "record_key" not in records:
        return pd.DataFrame(columns=["person_id", "hispanic_latino", "race_category",
                                     *BARRIER_FLAGS, "age_band_first_entry"])
    joined = crosswalk[["record_key", "person_id"]].merge(records, on="record_key")
    joined = joined.sort_values(["person_id", "period"])
    for column in PROFILE_COLUMNS:
        if column not in joined:
            joined[column] = None

    def last_known(series: pd.Series) -> object:
        known = series.dropna()
        return known.iloc[-1] if len(known) else None

    grouped = joined.groupby("person_id", sort=True)
    profile = pd.DataFrame({"hispanic_latino": grouped["hispanic_latino"].agg(last_known)
                            .map(_yes),
                            "race_category": grouped["race"].agg(last_known).map(race_category)})
    for barrier in BARRIER_FLAGS:
        profile[barrier] = grouped[barrier].agg(
            lambda s: True if (s == "yes").any() else (False if (s == "no").any() else None))
    birth_year = pd.to_numeric(grouped["birth_year"].agg(last_known), errors="coerce")
    first_year = pd.to_numeric(grouped["period"].min().str[:4], errors="coerce")
    if enrollment is not None and len(enrollment):
        first_entry = pd.to_numeric(enrollment.groupby("person_id")["entry_month"].min()
                                    .str[:4], errors="coerce")
        first_year = first_entry.reindex(first_year.index).fillna(first_year)
    ages = first_year - birth_year
    profile["age_band_first_entry"] = [age_band(a) if a == a else None for a in ages]
    return profile.reset_index().astype(object).where(lambda f: f.notna(), None)
