"""The de-identified fact tables of `schemas/warehouse_facts.sql`, from restricted rows.

`published_facts`: the current rows of every event dataset (stored by
`pipelines.ingest.events.restricted_rows`) become fact tables keyed by person, with dates at
month precision; `person_profile` summarizes each person's reporting attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from linkage.normalize import parse_date
from pipelines.records import PROFILE_COLUMNS, WAGE_MATCH_TOKENS
from pipelines.warehouse.aggregate import any_equal, last_known, smallest
from pipelines.warehouse.measures import (
    BARRIER_FLAGS,
    age_band,
    month_of,
    quarter_of,
    race_category,
)

# The rows that identify one event across monthly drops (a later drop's row replaces it).
EVENT_KEYS: dict[str, tuple[str, ...]] = {
    "enrollments": ("record_key", "program_id", "entry_date"),
    "services": ("record_key", "program_id", "service_date", "service_type", "amount"),
    "credentials": ("record_key", "credential_type", "date_attained"),
    "employment": ("record_key", "employer_name", "start_date"),
    "assessments": ("record_key", "competency", "assessment_date"),
    "wages": ("wage_person_key", "year_quarter", "employer_key"),
    "program_costs": ("partner_id", "program_id", "cost_period", "funding_stream",
                      "cost_category"),
}


def current_events(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The latest version of each event across monthly drops."""
    if rows.empty:
        return rows
    keys = [k for k in EVENT_KEYS[dataset] if k in rows.columns]
    ordered = rows.sort_values(["period", "source_row"])
    return ordered.drop_duplicates(keys, keep="last")


def _month(text: object) -> str | None:
    parsed = parse_date(text) if isinstance(text, str) else None
    return month_of(parsed) if parsed else None


def _number(series: pd.Series) -> pd.Series:
    cleaned = series.astype("string").str.replace(r"[$,]", "", regex=True)
    return pd.to_numeric(cleaned, errors="coerce")


def _year_quarter(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    compact = text.strip().upper().replace("-", "").replace(" ", "")
    if len(compact) == 6 and compact[:4].isdigit() and compact[4] == "Q" and compact[5] in "1234":
        return compact
    return None


def _with_person(frame: pd.DataFrame, persons: pd.DataFrame) -> pd.DataFrame:
    return frame.merge(persons, on="record_key", how="inner")


def wage_persons(wages: pd.DataFrame, records: pd.DataFrame,
                 crosswalk: pd.DataFrame) -> pd.Series:
    """Person of each wage row by SSN match keys; None when absent or ambiguous."""
    person_of_record = crosswalk.set_index("record_key")["person_id"]
    result = pd.Series([None] * len(wages), index=wages.index, dtype=object)
    for column in WAGE_MATCH_TOKENS:
        if column not in wages or column not in records:
            continue
        owners = records[["record_key", column]].dropna()
        owners = owners.assign(person_id=owners["record_key"].map(person_of_record)).dropna()
        unique = owners.groupby(column)["person_id"].nunique()
        lookup = owners[owners[column].isin(unique[unique == 1].index)] \
            .drop_duplicates(column).set_index(column)["person_id"]
        missing = result.isna()
        result[missing] = wages.loc[missing, column].map(lookup)
    return result.astype(object).where(result.notna(), None)


def published_facts(events: Mapping[str, pd.DataFrame], records: pd.DataFrame,
                    crosswalk: pd.DataFrame, *,
                    match_records: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """De-identified fact tables for the warehouse from the restricted event rows.

    Args:
        events: dataset -> restricted rows (all periods) as stored by `restricted_rows`.
        records: the latest participant records (record_key, birth_year, profile columns).
        crosswalk: record_key -> person_id.
        match_records: record_key + wage-match tokens, one row per record and key (after a
            key rotation); default `records`.
    """
    persons = crosswalk[["record_key", "person_id"]]
    facts: dict[str, pd.DataFrame] = {}

    enrollments = current_events(events.get("enrollments", pd.DataFrame()), "enrollments")
    if len(enrollments):
        e = _with_person(enrollments, persons)
        exit_month = e["exit_date"].map(_month) if "exit_date" in e else None
        facts["enrollment"] = pd.DataFrame({
            "person_id": e["person_id"], "partner_id": e["partner_id"],
            "program_id": e["partner_id"] + ":" + e["program_id"].astype(str),
            "funding_stream": e["funding_stream"], "sector": e.get("sector"),
            "entry_month": e["entry_date"].map(_month),
            "exit_month": exit_month,
            "exit_quarter": exit_month.map(quarter_of) if exit_month is not None else None,
            "exit_exclusion_reason": e.get("exit_exclusion_reason"),
            "in_education_or_training": False,
        }).dropna(subset=["entry_month"])
        program = facts["enrollment"].sort_values("entry_month").drop_duplicates(
            "program_id", keep="last")
        facts["program"] = pd.DataFrame({
            "program_id": program["program_id"], "partner_id": program["partner_id"],
            "program_name": program["program_id"].str.split(":", n=1).str[1],
            "funding_stream": program["funding_stream"], "sector": program["sector"],
        })

    services = current_events(events.get("services", pd.DataFrame()), "services")
    if len(services):
        s = _with_person(services, persons)
        facts["service"] = pd.DataFrame({
            "person_id": s["person_id"], "partner_id": s["partner_id"],
            "service_month": s["service_date"].map(_month), "service_type": s["service_type"],
            "amount": _number(s["amount"]) if "amount" in s else None,
        }).dropna(subset=["service_month"])

    credentials = current_events(events.get("credentials", pd.DataFrame()), "credentials")
    if len(credentials):
        c = _with_person(credentials, persons)
        facts["credential"] = pd.DataFrame({
            "person_id": c["person_id"], "partner_id": c["partner_id"],
            "credential_type": c["credential_type"],
            "attained_month": c["date_attained"].map(_month),
        }).dropna(subset=["attained_month"])

    employment = current_events(events.get("employment", pd.DataFrame()), "employment")
    if len(employment):
        m = _with_person(employment, persons)
        facts["employment"] = pd.DataFrame({
            "person_id": m["person_id"], "partner_id": m["partner_id"],
            "naics_sector": m["naics_sector"].astype("string").str[:2]
            if "naics_sector" in m else None,
            "start_month": m["start_date"].map(_month),
            "end_month": m["end_date"].map(_month) if "end_date" in m else None,
            "hourly_wage": _number(m["hourly_wage"]) if "hourly_wage" in m else None,
            "weekly_hours": _number(m["weekly_hours"]) if "weekly_hours" in m else None,
        }).dropna(subset=["start_month"])

    assessments = current_events(events.get("assessments", pd.DataFrame()), "assessments")
    if len(assessments):
        a = _with_person(assessments, persons)
        facts["assessment"] = pd.DataFrame({
            "person_id": a["person_id"], "partner_id": a["partner_id"],
            "competency": a["competency"],
            "score": pd.to_numeric(a["score"], errors="coerce").astype("Int64"),
            "assessment_month": a["assessment_date"].map(_month),
        }).dropna(subset=["assessment_month", "score"])

    wages = events.get("wages", pd.DataFrame())
    if len(wages):
        w = wages.assign(person_id=wage_persons(
            wages, records if match_records is None else match_records, crosswalk))
        w = w.dropna(subset=["person_id"])
        w = w.assign(wage_person_key=w["person_id"])
        w = current_events(w, "wages")
        facts["wage"] = pd.DataFrame({
            "person_id": w["person_id"], "year_quarter": w["year_quarter"].map(_year_quarter),
            "employer_key": w["employer_key"].fillna("unknown"),
            "wages": _number(w["wages"]),
        }).dropna(subset=["year_quarter", "wages"])

    costs = current_events(events.get("program_costs", pd.DataFrame()), "program_costs")
    if len(costs):
        facts["program_cost"] = program_cost(costs)

    facts["person_profile"] = person_profile(records, crosswalk, facts.get("enrollment"))
    return facts


def program_cost(costs: pd.DataFrame) -> pd.DataFrame:
    """The `program_cost` fact from the current program_costs rows: program ids as
    `<partner>:<code>`, the period as sent plus its quarter, amounts in dollars."""
    period = costs["cost_period"].astype("string").str.strip().str.upper()
    quarter = period.where(period.str.contains("Q", regex=False),
                           period.map(lambda p: quarter_of(p) if isinstance(p, str) else None))
    frame = pd.DataFrame({
        "partner_id": costs["partner_id"],
        "program_id": costs["partner_id"] + ":" + costs["program_id"].astype(str),
        "cost_period": period.astype(object),
        "cost_quarter": quarter.astype(object),
        "funding_stream": costs["funding_stream"],
        "cost_category": costs["cost_category"],
        "amount": _number(costs["cost_amount"]),
    })
    return frame.dropna(subset=["cost_period", "cost_quarter", "amount"]).reset_index(drop=True)


def person_profile(records: pd.DataFrame, crosswalk: pd.DataFrame,
                   enrollment: pd.DataFrame | None) -> pd.DataFrame:
    """Reporting attributes per person from the latest participant records.

    Records are ordered by period (ties: crosswalk order). Hispanic/Latino, race and birth
    year: the last known value; a barrier flag: True if any record says yes, else False if
    any says no; age band: at the first enrollment entry (else the first period seen).
    Vectorised: one groupby per attribute, no Python call per person.
    """
    columns = ["person_id", "hispanic_latino", "race_category", *BARRIER_FLAGS,
               "age_band_first_entry"]
    if crosswalk.empty or "record_key" not in records:
        return pd.DataFrame(columns=columns)
    joined = crosswalk[["record_key", "person_id"]].merge(records, on="record_key")
    if joined.empty:
        return pd.DataFrame(columns=columns)
    joined = joined.sort_values(["person_id", "period"], kind="stable")
    for column in PROFILE_COLUMNS:
        if column not in joined:
            joined[column] = None
    persons = pd.Index(joined["person_id"].drop_duplicates().sort_values(kind="stable"),
                       name="person_id")

    def last(column: str) -> pd.Series:
        return last_known(joined, "person_id", column).reindex(persons)

    profile = pd.DataFrame(index=persons)
    profile["hispanic_latino"] = last("hispanic_latino").map(_YES_NO)
    profile["race_category"] = _per_value(last("race"), race_category)
    for barrier in BARRIER_FLAGS:
        said_yes = any_equal(joined, persons, "person_id", barrier, "yes")
        said_no = any_equal(joined, persons, "person_id", barrier, "no")
        profile[barrier] = np.where(said_yes, True, np.where(said_no, False, None))
    birth_year = pd.to_numeric(last("birth_year").astype(object), errors="coerce")
    first_year = pd.to_numeric(smallest(joined, "person_id", "period").reindex(persons)
                               .str[:4], errors="coerce")
    if enrollment is not None and len(enrollment):
        first_entry = pd.to_numeric(smallest(enrollment, "person_id", "entry_month")
                                    .str[:4], errors="coerce")
        first_year = first_entry.reindex(first_year.index).fillna(first_year)
    # float: a person whose every record lost its date of birth has NaN here, not pd.NA
    ages = (first_year - birth_year).astype("float64")
    profile["age_band_first_entry"] = _per_value(ages, age_band)
    return profile.reset_index().astype(object).where(lambda f: f.notna(), None)


_YES_NO = {"yes": True, "no": False}


def _per_value(series: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """`func` once per distinct non-null value (None for nulls), as an object Series."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.array([func(v) for v in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=series.index, dtype=object)
