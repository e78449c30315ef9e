"""Event rows for the restricted state (enrollments, services, credentials, employment,
assessments, wages, program_costs).

`restricted_rows`: a validated drop becomes rows for the restricted state, keyed by
`record_key` (`partner_id:partner_record_id`). The state wage file carries identity fields;
they are replaced here by keyed tokens (the same match keys as participants) and the employer
id by a keyed hash, so no raw identifier reaches the state. Program datasets
(`data_contracts.PROGRAM_DATASETS`: program_costs) hold no person data and have no record key.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

import pandas as pd

from data_contracts import PROGRAM_DATASETS
from pipelines.records import WAGE_MATCH_TOKENS

WAGE_IDENTITY = ("ssn", "first_name", "last_name", "date_of_birth")


def employer_key(employer_ids: pd.Series, key: bytes) -> pd.Series:
    """Opaque keyed hash of employer ids (never the FEIN or UI account number itself)."""
    cache: dict[str, str] = {}

    def one(value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        text = value.strip().upper()
        if text not in cache:
            cache[text] = hmac.new(key, text.encode(), sha256).hexdigest()[:24]
        return cache[text]

    return employer_ids.map(one)


def restricted_rows(accepted: pd.DataFrame, *, dataset: str, partner_id: str, period: str,
                    sha256_hex: str, tokens: pd.DataFrame | None = None,
                    employer_hash_key: bytes | None = None) -> pd.DataFrame:
    """Rows of one validated drop for the restricted state (no raw identifiers)."""
    rows = accepted.drop(columns=[c for c in accepted.columns
                                  if c.startswith("__") and c != "__row"]).copy()
    rows = rows.rename(columns={"__row": "source_row"})
    if dataset == "wages":
        if tokens is None or employer_hash_key is None:
            raise ValueError("wage rows need identity tokens and an employer hash key")
        rows = rows.drop(columns=[c for c in WAGE_IDENTITY if c in rows.columns])
        for column in WAGE_MATCH_TOKENS:
            rows[column] = tokens[column].to_numpy() if column in tokens else None
        rows["employer_key"] = employer_key(rows.pop("employer_id"), employer_hash_key) \
            if "employer_id" in rows else None
        rows["record_key"] = None
    elif dataset in PROGRAM_DATASETS:
        rows["record_key"] = None
    else:
        rows["record_key"] = partner_id + ":" + rows["partner_record_id"].astype(str)
    rows.insert(0, "partner_id", partner_id)
    rows.insert(1, "period", period)
    rows.insert(2, "file_sha256", sha256_hex)
    return rows.astype({c: object for c in rows.columns if c != "source_row"})
