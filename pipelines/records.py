"""The layout of restricted records, shared by intake, the state and the warehouse.

Each fact here has one source: the profile columns and the dataset names come from the data
contracts, the lineage columns and the wage match keys are declared once.
"""

from __future__ import annotations

from data_contracts import EVENT_DATASETS, IDENTITY_DATASET, sensitive_columns

#: The columns every stored participant record starts with, in this order.
LINEAGE_COLUMNS: tuple[str, ...] = ("record_key", "partner_id", "partner_record_id", "period",
                                    "file_sha256", "source_row")
#: Reporting attributes stored with each participant record (sensitive, not identifying): the
#: participants contract's `sensitive` properties, in contract order.
PROFILE_COLUMNS: tuple[str, ...] = sensitive_columns(IDENTITY_DATASET)
#: Match keys used to find a wage record's person (SSN-based, as UI wage matching is).
WAGE_MATCH_TOKENS: tuple[str, ...] = ("tok_t3_ssn_dob", "tok_t4_ssn")
#: Datasets the monthly flow links or publishes (`pathlink check` validates every contract).
PROCESSED_DATASETS: tuple[str, ...] = (IDENTITY_DATASET, *EVENT_DATASETS)

__all__ = ["EVENT_DATASETS", "IDENTITY_DATASET", "LINEAGE_COLUMNS", "PROCESSED_DATASETS",
           "PROFILE_COLUMNS", "WAGE_MATCH_TOKENS"]
