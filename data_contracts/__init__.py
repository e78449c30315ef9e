"""Pathlink data contracts: one ODCS-style YAML per dataset, the single source of truth.

The model and loader live in `data_contracts.model` (re-exported here); the Great Expectations
compiler in `data_contracts.compiler`. Importing this package does not import Great
Expectations.
"""

from __future__ import annotations

from typing import Any

from data_contracts.model import (
    CLASSIFICATIONS,
    CONTRACT_DIR,
    DATASETS,
    EVENT_DATASETS,
    IDENTITY_DATASET,
    PII_CLASSIFICATIONS,
    PROGRAM_DATASETS,
    RULE_KINDS,
    SEVERITIES,
    Contract,
    ContractError,
    Property,
    Rule,
    contract_version,
    header_key,
    load_contract,
    parse_contract,
    pii_columns,
    sensitive_columns,
)
from data_contracts.reasons import Reason, fix, reason, reasons


def compile_suite(contract: Contract, *, age_range: tuple[int, int] | None = None) -> Any:
    """Build the Great Expectations suite for `contract` (see `data_contracts.compiler`)."""
    from data_contracts.compiler import compile_suite as _compile

    return _compile(contract, age_range=age_range)


__all__ = [
    "CLASSIFICATIONS",
    "CONTRACT_DIR",
    "DATASETS",
    "EVENT_DATASETS",
    "IDENTITY_DATASET",
    "PII_CLASSIFICATIONS",
    "PROGRAM_DATASETS",
    "RULE_KINDS",
    "SEVERITIES",
    "Contract",
    "ContractError",
    "Property",
    "Reason",
    "Rule",
    "compile_suite",
    "contract_version",
    "fix",
    "header_key",
    "load_contract",
    "parse_contract",
    "pii_columns",
    "reason",
    "reasons",
    "sensitive_columns",
]
