"""Event datasets: restricted rows carry no identifiers; published facts are de-identified."""

from __future__ import annotations

import pandas as pd

from pipelines.ingest.events import restricted_rows
from pipelines.warehouse.facts import published_facts, wage_persons


def _wages() -> pd.DataFrame:
    return pd.DataFrame({
        "ssn": ["219-47-8163", "219-47-8163", "301-22-4444"],
        "first_name": ["Qzxwvandorf"] * 3, "last_name": ["Vrbklemtiss"] * 3,
        "date_of_birth": ["1991-03-14"] * 3, "year_quarter": ["2025Q1", "2025Q2", "2025Q2"],
        "employer_id": ["CT-000123", "CT-000123", "CT-000999"],
        "wages": ["5100.00", "5300", "$1,200.50"], "__row": [2, 3, 4],
    })


def test_wage_rows_keep_tokens_not_identities() -> None:
    tokens = pd.DataFrame({"tok_t3_ssn_dob": ["a", "a", "b"], "tok_t4_ssn": ["s1", "s1", "s2"]})
    rows = restricted_rows(_wages(), dataset="wages", partner_id="ct_dol", period="2026-09",
                           sha256_hex="f" * 64, tokens=tokens, employer_hash_key=b"k" * 32)
    text = rows.to_csv()
    for raw in ("219-47-8163", "Qzxwvandorf", "Vrbklemtiss", "1991-03-14", "CT-000123"):
        assert raw not in text
    assert set(rows.columns) >= {"tok_t4_ssn", "employer_key", "year_quarter", "wages"}
    assert rows["employer_key"].iloc[0] == rows["employer_key"].iloc[1]
    assert rows["employer_key"].iloc[0] != rows["employer_key"].iloc[2]
    assert rows["source_row"].tolist() == [2, 3, 4]


def test_wage_person_is_none_when_a_token_is_ambiguous() -> None:
    records = pd.DataFrame({"record_key": ["a:1", "b:1", "c:1"],
                            "tok_t3_ssn_dob": [None, None, None],
                            "tok_t4_ssn": ["s1", "s2", "s2"]})
    crosswalk = pd.DataFrame({"record_key": ["a:1", "b:1", "c:1"],
                              "person_id": ["P1", "P2", "P3"]})
    wages = pd.DataFrame({"tok_t3_ssn_dob": [None, None, None],
                          "tok_t4_ssn": ["s1", "s2", "s9"]})
    assert wage_persons(wages, records, crosswalk).tolist() == ["P1", None, None]


def test_published_facts_are_monthly_and_keyed_by_person() -> None:
    events = {
        "enrollments": pd.DataFrame({
            "partner_id": ["wb", "wb"], "period": ["2026-09", "2026-10"],
            "file_sha256": ["x", "y"], "source_row": [2, 2],
            "record_key": ["wb:1", "wb:1"], "partner_record_id": ["1", "1"],
            "program_id": ["HC1", "HC1"], "funding_stream": ["wioa_adult", "wioa_adult"],
            "sector": ["healthcare", "healthcare"], "entry_date": ["2025-01-15"] * 2,
            "exit_date": [None, "2025-08-30"], "exit_exclusion_reason": [None, None],
        }),
        "services": pd.DataFrame({
            "partner_id": ["wb"], "period": ["2026-09"], "file_sha256": ["x"],
            "source_row": [2], "record_key": ["wb:1"], "partner_record_id": ["1"],
            "program_id": ["HC1"], "service_date": ["03/04/2025"],
            "service_type": ["supportive_service"], "amount": ["$1,250.00"],
        }),
    }
    records = pd.DataFrame({"record_key": ["wb:1"], "period": ["2026-10"], "birth_year": [1990],
                            "race": ["black_african_american;white"], "hispanic_latino": ["no"],
                            "low_income": ["yes"]})
    crosswalk = pd.DataFrame({"record_key": ["wb:1"], "person_id": ["PABC"]})
    facts = published_facts(events, records, crosswalk)
    enrollment = facts["enrollment"]
    assert len(enrollment) == 1  # the October snapshot replaced September's
    row = enrollment.iloc[0]
    assert (row["person_id"], row["entry_month"], row["exit_month"], row["exit_quarter"]) == (
        "PABC", "2025-01", "2025-08", "2025Q3")
    assert row["program_id"] == "wb:HC1"
    service = facts["service"].iloc[0]
    assert (service["service_month"], float(service["amount"])) == ("2025-03", 1250.0)
    profile = facts["person_profile"].iloc[0]
    assert profile["race_category"] == "two_or_more_races"
    assert profile["hispanic_latino"] is False
    assert profile["low_income"] is True
    assert profile["age_band_first_entry"] == "35-44"
    published_text = "".join(f.to_csv() for f in facts.values())
    assert "wb:1" not in published_text and "partner_record_id" not in published_text
